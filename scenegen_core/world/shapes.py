"""Watertight shapes for the synthetic tabletop world, in four families.

Every shape is a frozen dataclass holding its dimensions in metres with a ``mesh()`` method, a
``kind`` (its category label) and a ``family``:

* ``primitive``: box, cylinder, sphere, cone;
* ``superquadric``: superellipsoids, from boxy to round to pinched (two exponents, three radii);
* ``lathe``: solids of revolution: bowl, bottle, and random smooth profiles (vase and cup,
  hollow and open-topped; flask, solid);
* ``compound``: unions of 2-3 closed parts: mug (body + handle), hammer (head + handle),
  screwdriver (handle + shaft), lidded box (body + lid), dumbbell (bar + two weights).

Object frame (all shapes): metres, z up, origin at the centre of the bottom of the shape's
axis-aligned bounding box (the object stands on the plane z = 0 when placed upright); x and y
are horizontal. Exception: the mug's origin is its body's axis, and its handle points along +x.
The tools (hammer, screwdriver, dumbbell) are built lying on the plane, their length along x.

Every mesh returned is *closed and outward-oriented*: each edge is shared by exactly two faces
with opposite directions, and the signed volume is positive. A compound shape is the union of
disjoint closed parts separated by a small gap (``MugSpec.handle_gap``, the others' ``gap``:
1 mm), so inside / outside stays well defined for parity-based occupancy (overlapping parts
would cancel out).

Rotationally symmetric shapes are built from a 2D profile revolved about the z axis
(``revolve_profile``); the profile starts and ends on the axis, so the surface is a closed
sphere-like surface with a pole at each end.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar, Union

import numpy as np
from scipy.interpolate import PchipInterpolator

from scenegen_core.types import Mesh
from scenegen_core.world.transforms import rotation_about

DEFAULT_SEGMENTS = 48


def _check_positive(spec, *names: str) -> None:
    for name in names:
        value = getattr(spec, name)
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"{type(spec).__name__}.{name} must be a positive length in metres, got {value}")


def signed_volume(mesh: Mesh) -> float:
    """Signed volume of a closed triangle mesh (divergence theorem), cubic units of the vertices."""
    v = mesh.vertices.astype(np.float64)
    a, b, c = v[mesh.faces[:, 0]], v[mesh.faces[:, 1]], v[mesh.faces[:, 2]]
    return float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum() / 6.0)


def volume_centroid(mesh: Mesh) -> np.ndarray:
    """[3] float64 centre of mass of the solid bounded by a closed mesh (uniform density), vertex units."""
    v = mesh.vertices.astype(np.float64)
    a, b, c = v[mesh.faces[:, 0]], v[mesh.faces[:, 1]], v[mesh.faces[:, 2]]
    volumes = np.einsum("ij,ij->i", a, np.cross(b, c)) / 6.0  # tetrahedra (origin, a, b, c)
    return (volumes[:, None] * (a + b + c) / 4.0).sum(0) / volumes.sum()


def is_closed(mesh: Mesh) -> bool:
    """True when every directed edge has exactly one opposite partner (closed, consistently wound)."""
    f = mesh.faces.astype(np.int64)
    directed = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    n = np.int64(len(mesh.vertices))
    forward = directed[:, 0] * n + directed[:, 1]
    backward = directed[:, 1] * n + directed[:, 0]
    if len(np.unique(forward)) != len(forward):
        return False  # an edge used twice in the same direction: non-manifold or flipped face
    return bool(np.array_equal(np.sort(forward), np.sort(backward)))


def _oriented(vertices: np.ndarray, faces: np.ndarray) -> Mesh:
    """Mesh with faces flipped if needed so that the enclosed volume is positive (normals outward)."""
    mesh = Mesh(vertices, faces)
    if signed_volume(mesh) < 0:
        mesh = Mesh(vertices, faces[:, ::-1])
    return mesh


def merge_meshes(meshes: list[Mesh]) -> Mesh:
    """Concatenate meshes into one (no welding); vertex colours are dropped."""
    offsets = np.cumsum([0] + [len(m.vertices) for m in meshes[:-1]])
    vertices = np.concatenate([m.vertices for m in meshes])
    faces = np.concatenate([m.faces + o for m, o in zip(meshes, offsets)])
    return Mesh(vertices, faces)


def revolve_profile(profile_rz: np.ndarray, segments: int = DEFAULT_SEGMENTS) -> Mesh:
    """Closed surface of revolution about the z axis.

    profile_rz: [P, 2] float (radius, z) in metres, P >= 3; the first and last points must lie
    on the axis (radius 0), the others strictly off it; consecutive points must differ.
    Returns a closed, outward-oriented mesh with 2 + (P - 2) * segments vertices.
    """
    profile = np.asarray(profile_rz, dtype=np.float64)
    if profile.ndim != 2 or profile.shape[1] != 2 or len(profile) < 3:
        raise ValueError(f"profile must be [P>=3, 2] (radius, z), got {profile.shape}")
    if profile[0, 0] != 0 or profile[-1, 0] != 0 or np.any(profile[1:-1, 0] <= 0):
        raise ValueError("profile must start and end on the axis (r = 0) and stay off it in between")
    if np.any(np.linalg.norm(np.diff(profile, axis=0), axis=1) == 0):
        raise ValueError("profile has repeated consecutive points")
    if segments < 3:
        raise ValueError(f"segments must be >= 3, got {segments}")
    ring = profile[1:-1]
    angles = 2 * np.pi * np.arange(segments) / segments
    rings = np.stack(
        [
            ring[:, None, 0] * np.cos(angles)[None, :],
            ring[:, None, 0] * np.sin(angles)[None, :],
            np.repeat(ring[:, None, 1], segments, axis=1),
        ],
        axis=-1,
    )
    return capped_tube(rings, np.array([0.0, 0.0, profile[0, 1]]), np.array([0.0, 0.0, profile[-1, 1]]))


def capped_tube(rings: np.ndarray, start_cap: np.ndarray, end_cap: np.ndarray) -> Mesh:
    """Closed mesh from a sequence of closed vertex loops, each end closed by a fan to a cap point.

    rings: [R, S, 3] float (R >= 1 loops of S >= 3 points, consecutive loops stitched with quads);
    start_cap / end_cap: [3] points joined to the first / last loop. Returns an outward mesh.
    """
    rings = np.asarray(rings, dtype=np.float64)
    count, size = rings.shape[:2]
    vertices = np.concatenate([rings.reshape(-1, 3), [start_cap, end_cap]])
    start, end = count * size, count * size + 1

    def vid(ring_index: int, k: np.ndarray) -> np.ndarray:
        return ring_index * size + k % size

    k = np.arange(size)
    faces = [np.stack([np.full(size, start), vid(0, k + 1), vid(0, k)], axis=1)]
    for j in range(count - 1):
        a, b, c, d = vid(j, k), vid(j, k + 1), vid(j + 1, k), vid(j + 1, k + 1)
        faces += [np.stack([a, b, d], axis=1), np.stack([a, d, c], axis=1)]
    faces.append(np.stack([np.full(size, end), vid(count - 1, k), vid(count - 1, k + 1)], axis=1))
    return _oriented(vertices, np.concatenate(faces))


@dataclass(frozen=True)
class BoxSpec:
    """Axis-aligned box, sides size_x, size_y, size_z metres."""

    kind: ClassVar[str] = "box"
    family: ClassVar[str] = "primitive"
    size_x: float
    size_y: float
    size_z: float

    def __post_init__(self) -> None:
        _check_positive(self, "size_x", "size_y", "size_z")

    def mesh(self, segments: int = DEFAULT_SEGMENTS) -> Mesh:
        del segments  # a box needs no tessellation
        hx, hy = self.size_x / 2, self.size_y / 2
        corners = np.array(
            [[x, y, z] for z in (0.0, self.size_z) for y in (-hy, hy) for x in (-hx, hx)], dtype=np.float64
        )
        # vertex index = 4*z + 2*y + x (bits), quads listed counter-clockwise seen from outside
        quads = [(0, 2, 3, 1), (4, 5, 7, 6), (0, 1, 5, 4), (2, 6, 7, 3), (0, 4, 6, 2), (1, 3, 7, 5)]
        faces = np.array([t for a, b, c, d in quads for t in ((a, b, c), (a, c, d))])
        return _oriented(corners, faces)


@dataclass(frozen=True)
class CylinderSpec:
    """Solid upright cylinder (a can): radius, height metres."""

    kind: ClassVar[str] = "cylinder"
    family: ClassVar[str] = "primitive"
    radius: float
    height: float

    def __post_init__(self) -> None:
        _check_positive(self, "radius", "height")

    def mesh(self, segments: int = DEFAULT_SEGMENTS) -> Mesh:
        r, h = self.radius, self.height
        return revolve_profile(np.array([[0, 0], [r, 0], [r, h], [0, h]]), segments)


@dataclass(frozen=True)
class SphereSpec:
    """Sphere of the given radius (metres), resting on z = 0 (centre at z = radius)."""

    kind: ClassVar[str] = "sphere"
    family: ClassVar[str] = "primitive"
    radius: float

    def __post_init__(self) -> None:
        _check_positive(self, "radius")

    def mesh(self, segments: int = DEFAULT_SEGMENTS) -> Mesh:
        theta = np.linspace(0.0, np.pi, max(segments // 2, 2) + 1)
        profile = np.stack([self.radius * np.sin(theta), self.radius * (1 - np.cos(theta))], axis=1)
        profile[0, 0] = profile[-1, 0] = 0.0  # exact poles (sin(pi) is 1e-16, not 0)
        return revolve_profile(profile, segments)


@dataclass(frozen=True)
class ConeSpec:
    """Upright solid cone: base radius, height metres, apex on top."""

    kind: ClassVar[str] = "cone"
    family: ClassVar[str] = "primitive"
    radius: float
    height: float

    def __post_init__(self) -> None:
        _check_positive(self, "radius", "height")

    def mesh(self, segments: int = DEFAULT_SEGMENTS) -> Mesh:
        return revolve_profile(np.array([[0, 0], [self.radius, 0], [0, self.height]]), segments)


@dataclass(frozen=True)
class BowlSpec:
    """Open-topped thick-walled bowl: rim radius, height, wall and bottom thickness, metres.

    The outer wall widens from a foot of radius ``foot_fraction * radius`` to the rim as
    r(z) = r_foot + (radius - r_foot) * (z / height) ** 0.6; the inner wall is the outer wall
    moved in by ``wall``; the flat inner bottom is at z = ``bottom``.
    """

    kind: ClassVar[str] = "bowl"
    family: ClassVar[str] = "lathe"
    radius: float
    height: float
    wall: float
    bottom: float
    foot_fraction: float = 0.5

    def __post_init__(self) -> None:
        _check_positive(self, "radius", "height", "wall", "bottom")
        if self.bottom >= self.height:
            raise ValueError(f"bowl bottom {self.bottom} must be below its height {self.height}")
        if self._outer(self.bottom) - self.wall <= 0:
            raise ValueError("bowl wall too thick for its foot: the inner wall would cross the axis")

    def _outer(self, z: np.ndarray | float) -> np.ndarray | float:
        foot = self.foot_fraction * self.radius
        return foot + (self.radius - foot) * (np.asarray(z) / self.height) ** 0.6

    def mesh(self, segments: int = DEFAULT_SEGMENTS) -> Mesh:
        samples = max(segments // 4, 4)
        z_out = np.linspace(0.0, self.height, samples + 1)
        z_in = np.linspace(self.height, self.bottom, samples + 1)
        outer = np.stack([self._outer(z_out), z_out], axis=1)
        inner = np.stack([self._outer(z_in) - self.wall, z_in], axis=1)
        profile = np.concatenate([[[0.0, 0.0]], outer, inner, [[0.0, self.bottom]]])
        return revolve_profile(profile, segments)


@dataclass(frozen=True)
class MugSpec:
    """Cylindrical mug with a thick wall, open top and a torus-arc handle along +x, metres.

    Body: outer radius ``radius``, height ``height``, wall ``wall``, bottom ``bottom``.
    Handle: a tube of radius ``handle_tube`` bent along a circular arc of radius
    ``handle_radius`` in the x-z plane, centred at height / 2; its capped ends stop
    ``handle_gap`` metres short of the body so the two closed parts never intersect.
    """

    kind: ClassVar[str] = "mug"
    family: ClassVar[str] = "compound"
    radius: float
    height: float
    wall: float
    bottom: float
    handle_radius: float
    handle_tube: float
    handle_gap: float = 0.001

    def __post_init__(self) -> None:
        _check_positive(self, "radius", "height", "wall", "bottom", "handle_radius", "handle_tube", "handle_gap")
        if self.wall >= self.radius or self.bottom >= self.height:
            raise ValueError("mug wall/bottom thicker than the mug itself")
        if self.handle_tube >= self.handle_radius:
            raise ValueError("mug handle tube radius must be smaller than its bend radius")
        if self.handle_radius + self.handle_tube > self.height / 2:
            raise ValueError("mug handle does not fit within the body height")

    @property
    def handle_centre_x(self) -> float:
        """x of the handle arc's centre: the arc reaches 0.6 * handle_radius beyond the body."""
        return self.radius + self.handle_gap + self.handle_tube - 0.4 * self.handle_radius

    def _handle_end_angle(self) -> float:
        # The tube cross-section at arc angle phi reaches down to x = cx + R_t cos(phi) - r_t |cos(phi)|,
        # which decreases with |phi|; the ends sit where that equals radius + gap, so every handle
        # point keeps at least handle_gap from the (cylindrical) body.
        target = self.radius + self.handle_gap - self.handle_centre_x
        bend = self.handle_radius - self.handle_tube if target >= 0 else self.handle_radius + self.handle_tube
        return float(np.arccos(np.clip(target / bend, -1.0, 1.0)))

    def mesh(self, segments: int = DEFAULT_SEGMENTS) -> Mesh:
        r, h, w, b = self.radius, self.height, self.wall, self.bottom
        body = revolve_profile(np.array([[0, 0], [r, 0], [r, h], [r - w, h], [r - w, b], [0, b]]), segments)
        return merge_meshes([body, self._handle(segments)])

    def _handle(self, segments: int) -> Mesh:
        phi_end = self._handle_end_angle()
        arc_steps = max(segments // 2, 6)
        tube_steps = max(segments // 4, 6)
        phi = np.linspace(-phi_end, phi_end, arc_steps + 1)
        alpha = 2 * np.pi * np.arange(tube_steps) / tube_steps
        radial = np.stack([np.cos(phi), np.zeros_like(phi), np.sin(phi)], axis=1)  # [A, 3]
        centre = np.array([self.handle_centre_x, 0.0, self.height / 2]) + self.handle_radius * radial
        y_axis = np.array([0.0, 1.0, 0.0])
        offsets = self.handle_tube * (
            np.cos(alpha)[None, :, None] * radial[:, None, :] + np.sin(alpha)[None, :, None] * y_axis
        )
        return capped_tube(centre[:, None, :] + offsets, centre[0], centre[-1])


@dataclass(frozen=True)
class BottleSpec:
    """Solid bottle: body radius, total height, neck radius (metres); shoulder between 60% and 80% of height."""

    kind: ClassVar[str] = "bottle"
    family: ClassVar[str] = "lathe"
    radius: float
    height: float
    neck_radius: float

    def __post_init__(self) -> None:
        _check_positive(self, "radius", "height", "neck_radius")
        if self.neck_radius >= self.radius:
            raise ValueError("bottle neck must be narrower than its body")

    def mesh(self, segments: int = DEFAULT_SEGMENTS) -> Mesh:
        r, h, rn = self.radius, self.height, self.neck_radius
        # Smooth shoulder: cosine blend from body radius to neck radius between 0.6 h and 0.8 h.
        t = np.linspace(0.0, 1.0, max(segments // 6, 4) + 1)
        shoulder = np.stack([rn + (r - rn) * 0.5 * (1 + np.cos(np.pi * t)), h * (0.6 + 0.2 * t)], axis=1)
        profile = np.concatenate([[[0, 0], [r, 0]], shoulder, [[rn, h], [0, h]]])
        return revolve_profile(profile, segments)


def _lying_along_x(mesh: Mesh) -> Mesh:
    """The mesh turned +90 deg about y, so a shape revolved about z lies along +x (x' = z, z' = -x)."""
    return Mesh(mesh.vertices.astype(np.float64) @ rotation_about("y", 90).T, mesh.faces)


def _translated(mesh: Mesh, offset: np.ndarray | tuple[float, float, float]) -> Mesh:
    return Mesh(mesh.vertices.astype(np.float64) + np.asarray(offset, dtype=np.float64), mesh.faces)


def _bottom_centred(mesh: Mesh) -> Mesh:
    """The mesh moved so its bounding box is centred in x, y and starts at z = 0 (the object frame)."""
    lo, hi = mesh.bounds()
    return _translated(mesh, [-(lo[0] + hi[0]) / 2, -(lo[1] + hi[1]) / 2, -lo[2]])


@dataclass(frozen=True)
class SuperquadricSpec:
    """Superellipsoid with semi-axes radius_x, radius_y, radius_z (metres) and shape exponents.

    Surface: (|x/a|^(2/e2) + |y/b|^(2/e2))^(e2/e1) + |z/c|^(2/e1) = 1 with a, b, c the radii,
    e1 = ``exponent_z`` (profile along z: < 1 flat top and bottom, 1 round, > 1 pinched) and
    e2 = ``exponent_xy`` (horizontal cross-section: < 1 boxy, 1 elliptic, > 1 diamond). Both
    exponents lie in (0, 2], where the solid is star-shaped about its centre, so the mesh is the
    unit sphere's latitude/longitude grid pushed radially onto the surface: r(d) = F(d)^(-e1/2)
    for a direction d (F is homogeneous of degree 2/e1). Sampling directions rather than the
    usual angle parameters keeps the vertices spread out on boxy shapes, whose edges the angle
    parametrisation leaves with almost no vertices. Centre at z = radius_z in the object frame.
    """

    kind: ClassVar[str] = "superquadric"
    family: ClassVar[str] = "superquadric"
    radius_x: float
    radius_y: float
    radius_z: float
    exponent_z: float
    exponent_xy: float

    def __post_init__(self) -> None:
        _check_positive(self, "radius_x", "radius_y", "radius_z", "exponent_z", "exponent_xy")
        if self.exponent_z > 2 or self.exponent_xy > 2:
            raise ValueError(f"superquadric exponents must lie in (0, 2] (star-shaped), got {self.exponent_z}, {self.exponent_xy}")

    def mesh(self, segments: int = DEFAULT_SEGMENTS) -> Mesh:
        latitude = np.linspace(-np.pi / 2, np.pi / 2, max(segments // 2, 2) + 1)[1:-1]
        azimuth = 2 * np.pi * np.arange(segments) / segments
        d = np.stack(
            [
                np.cos(latitude)[:, None] * np.cos(azimuth)[None, :],
                np.cos(latitude)[:, None] * np.sin(azimuth)[None, :],
                np.repeat(np.sin(latitude)[:, None], segments, axis=1),
            ],
            axis=-1,
        )  # [L, S, 3] unit directions
        e1, e2 = self.exponent_z, self.exponent_xy
        f = (np.abs(d[..., 0]) ** (2 / e2) + np.abs(d[..., 1]) ** (2 / e2)) ** (e2 / e1) + np.abs(d[..., 2]) ** (2 / e1)
        radii = np.array([self.radius_x, self.radius_y, self.radius_z])
        rings = d * f[..., None] ** (-e1 / 2) * radii + np.array([0.0, 0.0, self.radius_z])
        return capped_tube(rings, np.zeros(3), np.array([0.0, 0.0, 2 * self.radius_z]))


@dataclass(frozen=True)
class LatheSpec:
    """Random solid of revolution: a smooth outer radius profile, optionally hollow with an open top.

    radii: outer radius (metres) at len(radii) >= 2 heights evenly spaced from z = 0 to
    ``height``; the profile between them is their monotone cubic (PCHIP) interpolation, which
    never leaves the range of its neighbouring radii, so min(radii) bounds the whole profile.
    wall = 0: solid with a flat top (a bottle, a flask); wall > 0: open-topped with the inner
    wall ``wall`` metres inside the outer one (horizontally) and a flat inner bottom at z =
    ``bottom`` (a vase, a cup). Subclasses only rename the kind.
    """

    kind: ClassVar[str] = "lathe"
    family: ClassVar[str] = "lathe"
    height: float
    radii: tuple[float, ...]
    wall: float = 0.0
    bottom: float = 0.0

    def __post_init__(self) -> None:
        _check_positive(self, "height")
        object.__setattr__(self, "radii", tuple(float(r) for r in self.radii))
        if len(self.radii) < 2 or not all(np.isfinite(r) and r > 0 for r in self.radii):
            raise ValueError(f"{type(self).__name__}.radii must be >= 2 positive radii in metres, got {self.radii}")
        if self.wall < 0 or self.bottom < 0:
            raise ValueError(f"{type(self).__name__} wall / bottom must be >= 0, got {self.wall}, {self.bottom}")
        if self.wall > 0 and not (0 < self.bottom < self.height and self.wall < min(self.radii)):
            raise ValueError(f"{type(self).__name__}: a hollow lathe needs 0 < bottom < height and wall < min(radii)")

    def _outer(self, z: np.ndarray) -> np.ndarray:
        heights = np.linspace(0.0, self.height, len(self.radii))
        return PchipInterpolator(heights, np.asarray(self.radii))(z)

    def mesh(self, segments: int = DEFAULT_SEGMENTS) -> Mesh:
        samples = max(segments // 2, 8)
        z_out = np.linspace(0.0, self.height, samples + 1)
        outer = np.stack([self._outer(z_out), z_out], axis=1)
        if self.wall == 0:
            profile = np.concatenate([[[0.0, 0.0]], outer, [[0.0, self.height]]])
        else:
            z_in = np.linspace(self.height, self.bottom, samples + 1)
            inner = np.stack([self._outer(z_in) - self.wall, z_in], axis=1)
            profile = np.concatenate([[[0.0, 0.0]], outer, inner, [[0.0, self.bottom]]])
        return revolve_profile(profile, segments)


@dataclass(frozen=True)
class VaseSpec(LatheSpec):
    """Hollow, open-topped vase: belly, neck and flared lip (a LatheSpec)."""

    kind: ClassVar[str] = "vase"


@dataclass(frozen=True)
class CupSpec(LatheSpec):
    """Hollow, open-topped cup or tumbler without a handle (a LatheSpec)."""

    kind: ClassVar[str] = "cup"


@dataclass(frozen=True)
class FlaskSpec(LatheSpec):
    """Solid bottle-like flask: body, shoulder and neck of a random profile (a LatheSpec, wall = 0)."""

    kind: ClassVar[str] = "flask"


@dataclass(frozen=True)
class HammerSpec:
    """Hammer lying flat: a box head and a cylindrical handle, two disjoint closed parts, metres.

    Head: head_length along y, head_width along x, head_height along z, standing on z = 0.
    Handle: radius handle_radius, length handle_length along +x, its axis at half the head's
    height, starting ``gap`` metres beyond the head (disjoint parts, see the module docstring).
    """

    kind: ClassVar[str] = "hammer"
    family: ClassVar[str] = "compound"
    handle_length: float
    handle_radius: float
    head_length: float
    head_width: float
    head_height: float
    gap: float = 0.001

    def __post_init__(self) -> None:
        _check_positive(self, "handle_length", "handle_radius", "head_length", "head_width", "head_height", "gap")
        if 2 * self.handle_radius > self.head_height:
            raise ValueError("hammer handle thicker than the head is tall")

    def mesh(self, segments: int = DEFAULT_SEGMENTS) -> Mesh:
        head = BoxSpec(self.head_width, self.head_length, self.head_height).mesh()
        handle = _lying_along_x(CylinderSpec(self.handle_radius, self.handle_length).mesh(segments))
        handle = _translated(handle, [self.head_width / 2 + self.gap, 0.0, self.head_height / 2])
        return _bottom_centred(merge_meshes([head, handle]))


@dataclass(frozen=True)
class ScrewdriverSpec:
    """Screwdriver lying flat along +x: a chamfered handle and a thin shaft with a flat tip, metres.

    Two disjoint coaxial closed parts (``gap`` metres apart along x); the common axis is at
    z = handle_radius, so the handle rests on z = 0 and the shaft is held up by it.
    """

    kind: ClassVar[str] = "screwdriver"
    family: ClassVar[str] = "compound"
    handle_length: float
    handle_radius: float
    shaft_length: float
    shaft_radius: float
    gap: float = 0.001

    def __post_init__(self) -> None:
        _check_positive(self, "handle_length", "handle_radius", "shaft_length", "shaft_radius", "gap")
        if self.shaft_radius >= self.handle_radius:
            raise ValueError("screwdriver shaft must be thinner than its handle")

    def mesh(self, segments: int = DEFAULT_SEGMENTS) -> Mesh:
        big, length = self.handle_radius, self.handle_length
        handle = revolve_profile(
            np.array([[0, 0], [0.8 * big, 0], [big, 0.1 * length], [big, 0.85 * length], [0.75 * big, length], [0, length]]),
            segments,
        )
        small, reach = self.shaft_radius, self.shaft_length
        shaft = revolve_profile(np.array([[0, 0], [small, 0], [small, 0.9 * reach], [0.4 * small, reach], [0, reach]]), segments)
        handle = _translated(_lying_along_x(handle), [0.0, 0.0, big])
        shaft = _translated(_lying_along_x(shaft), [length + self.gap, 0.0, big])
        return _bottom_centred(merge_meshes([handle, shaft]))


@dataclass(frozen=True)
class LiddedBoxSpec:
    """Box with a lid: a body size_x * size_y * body_height and a lid ``lid_overhang`` wider on each
    side and lid_height thick, ``gap`` metres above the body (two disjoint closed parts), metres."""

    kind: ClassVar[str] = "lidded_box"
    family: ClassVar[str] = "compound"
    size_x: float
    size_y: float
    body_height: float
    lid_height: float
    lid_overhang: float
    gap: float = 0.001

    def __post_init__(self) -> None:
        _check_positive(self, "size_x", "size_y", "body_height", "lid_height", "lid_overhang", "gap")

    def mesh(self, segments: int = DEFAULT_SEGMENTS) -> Mesh:
        del segments  # boxes need no tessellation
        body = BoxSpec(self.size_x, self.size_y, self.body_height).mesh()
        rim = 2 * self.lid_overhang
        lid = BoxSpec(self.size_x + rim, self.size_y + rim, self.lid_height).mesh()
        return merge_meshes([body, _translated(lid, [0.0, 0.0, self.body_height + self.gap])])


@dataclass(frozen=True)
class DumbbellSpec:
    """Dumbbell lying flat along x: a bar and two disc weights, three disjoint closed parts, metres.

    Bar: radius bar_radius, length bar_length, centred; weights: discs of radius weight_radius
    and thickness weight_width, ``gap`` metres beyond each bar end. The common axis is at
    z = weight_radius, so the discs stand on z = 0.
    """

    kind: ClassVar[str] = "dumbbell"
    family: ClassVar[str] = "compound"
    bar_length: float
    bar_radius: float
    weight_radius: float
    weight_width: float
    gap: float = 0.001

    def __post_init__(self) -> None:
        _check_positive(self, "bar_length", "bar_radius", "weight_radius", "weight_width", "gap")
        if self.bar_radius >= self.weight_radius:
            raise ValueError("dumbbell bar must be thinner than its weights")

    def mesh(self, segments: int = DEFAULT_SEGMENTS) -> Mesh:
        axis_z, half = self.weight_radius, self.bar_length / 2
        bar = _translated(_lying_along_x(CylinderSpec(self.bar_radius, self.bar_length).mesh(segments)), [-half, 0.0, axis_z])
        disc = _lying_along_x(CylinderSpec(self.weight_radius, self.weight_width).mesh(segments))
        left = _translated(disc, [-half - self.gap - self.weight_width, 0.0, axis_z])
        right = _translated(disc, [half + self.gap, 0.0, axis_z])
        return _bottom_centred(merge_meshes([bar, left, right]))


ShapeSpec = Union[
    BoxSpec, CylinderSpec, SphereSpec, ConeSpec, BowlSpec, MugSpec, BottleSpec, SuperquadricSpec,
    VaseSpec, CupSpec, FlaskSpec, HammerSpec, ScrewdriverSpec, LiddedBoxSpec, DumbbellSpec,
]
_SHAPE_CLASSES = (
    BoxSpec, CylinderSpec, SphereSpec, ConeSpec, BowlSpec, MugSpec, BottleSpec, SuperquadricSpec,
    VaseSpec, CupSpec, FlaskSpec, HammerSpec, ScrewdriverSpec, LiddedBoxSpec, DumbbellSpec,
)
SHAPE_TYPES: dict[str, type] = {cls.kind: cls for cls in _SHAPE_CLASSES}
SHAPE_KINDS: tuple[str, ...] = tuple(SHAPE_TYPES)
# The seven kinds of the first world, in its order (WorldConfig.idealised() draws from exactly these).
LEGACY_SHAPE_KINDS: tuple[str, ...] = ("box", "cylinder", "sphere", "cone", "bowl", "mug", "bottle")
FAMILY_OF_KIND: dict[str, str] = {cls.kind: cls.family for cls in _SHAPE_CLASSES}
# Shape families (every kind belongs to one): primitive solids, superquadrics, solids of revolution
# (lathe profiles) and unions of disjoint closed parts (compound).
SHAPE_FAMILIES: dict[str, tuple[str, ...]] = {
    family: tuple(kind for kind in SHAPE_KINDS if FAMILY_OF_KIND[kind] == family)
    for family in ("primitive", "superquadric", "lathe", "compound")
}
# Open-topped kinds whose cavity can hold another object (placement "inside", scene.py).
CONTAINER_KINDS: tuple[str, ...] = ("bowl", "mug", "vase", "cup")

# Plausible largest bounding-box extent per kind (metres): a mug 8-14 cm (handle included), a
# bowl 10-22 cm across, a hammer 22-35 cm long, ... Used by WorldConfig.size_ranges.
CATEGORY_SIZE_RANGES: tuple[tuple[str, float, float], ...] = (
    ("box", 0.05, 0.30),
    ("cylinder", 0.06, 0.20),
    ("sphere", 0.04, 0.22),
    ("cone", 0.05, 0.25),
    ("bowl", 0.10, 0.22),
    ("mug", 0.08, 0.14),
    ("bottle", 0.15, 0.32),
    ("superquadric", 0.05, 0.25),
    ("vase", 0.12, 0.35),
    ("cup", 0.07, 0.14),
    ("flask", 0.12, 0.30),
    ("hammer", 0.22, 0.35),
    ("screwdriver", 0.12, 0.28),
    ("lidded_box", 0.08, 0.30),
    ("dumbbell", 0.15, 0.35),
)


def shape_to_dict(spec: ShapeSpec) -> dict:
    """JSON-ready {"kind": ..., <dimension>: metres, ...} (a lathe's radii as a list)."""
    return {"kind": spec.kind, **dataclasses.asdict(spec)}


def shape_from_dict(data: dict) -> ShapeSpec:
    """Inverse of ``shape_to_dict``; raises ValueError for an unknown kind or wrong fields."""
    data = dict(data)
    kind = data.pop("kind", None)
    if kind not in SHAPE_TYPES:
        raise ValueError(f"unknown shape kind {kind!r}; known: {SHAPE_KINDS}")
    try:
        values = {k: tuple(float(x) for x in v) if isinstance(v, (list, tuple)) else float(v) for k, v in data.items()}
        return SHAPE_TYPES[kind](**values)
    except TypeError as error:
        raise ValueError(f"bad fields for shape {kind!r}: {error}") from None


def sample_shape(rng: np.random.Generator, kind: str, size_range: tuple[float, float]) -> ShapeSpec:
    """Random shape of the given kind whose largest bounding-box extent lies in size_range (metres).

    The recipes of the seven legacy kinds draw exactly what they drew in the first world (same
    numbers in the same order), which WorldConfig.idealised() relies on.
    """
    if kind not in SHAPE_TYPES:
        raise ValueError(f"unknown shape kind {kind!r}; known: {SHAPE_KINDS}")
    lo, hi = size_range
    if not 0 < lo <= hi:
        raise ValueError(f"size_range must satisfy 0 < lo <= hi, got {size_range}")
    size = float(rng.uniform(lo, hi))
    u = lambda a, b: float(rng.uniform(a, b))  # noqa: E731 - keeps the per-kind recipes readable
    if kind == "box":
        return BoxSpec(size, size * u(0.3, 1.0), size * u(0.3, 1.0))
    if kind == "cylinder":
        if rng.random() < 0.5:  # tall can: height is the largest extent
            return CylinderSpec(radius=size * u(0.15, 0.5), height=size)
        return CylinderSpec(radius=size / 2, height=size * u(0.2, 1.0))
    if kind == "sphere":
        return SphereSpec(radius=size / 2)
    if kind == "cone":
        if rng.random() < 0.5:  # tall cone
            return ConeSpec(radius=size / 2 * u(0.4, 1.0), height=size)
        return ConeSpec(radius=size / 2, height=size * u(0.5, 1.0))
    if kind == "bowl":
        radius = size / 2
        return BowlSpec(radius, height=size * u(0.25, 0.5), wall=radius * u(0.06, 0.12), bottom=size * u(0.04, 0.08))
    if kind == "mug":
        # Proportions for height 1, then scaled so the larger of width (body + handle) and height is `size`.
        radius, handle_radius = u(0.25, 0.4), u(0.2, 0.3)
        tube = handle_radius * u(0.2, 0.3)
        scale = size / max(1.0, 2 * radius + 0.6 * handle_radius + 2 * tube)
        return MugSpec(
            radius=radius * scale,
            height=scale,
            wall=radius * scale * u(0.08, 0.15),
            bottom=scale * u(0.05, 0.1),
            handle_radius=handle_radius * scale,
            handle_tube=tube * scale,
        )
    if kind == "bottle":
        return BottleSpec(radius=size * u(0.12, 0.22), height=size, neck_radius=size * u(0.04, 0.06))
    return _sample_new_kind(kind, size, u)


def _sample_new_kind(kind: str, size: float, u) -> ShapeSpec:
    """Recipes of the kinds added after the first world: proportions for a unit size, then scaled
    so that the largest bounding-box extent is ``size`` metres. u(a, b) draws a uniform float."""
    if kind == "superquadric":
        half = [size / 2, size / 2 * u(0.4, 1.0), size / 2 * u(0.3, 1.0)]
        order = [int(i) for i in np.argsort([u(0, 1) for _ in range(3)])]  # which axis is the longest
        radii = [half[i] for i in order]
        return SuperquadricSpec(*radii, exponent_z=u(0.2, 1.4), exponent_xy=u(0.2, 1.4))
    if kind in ("vase", "cup", "flask"):
        if kind == "vase":  # foot, belly, waist, neck, flared lip
            radii = [u(0.12, 0.2), u(0.18, 0.32), u(0.14, 0.3), u(0.07, 0.14), u(0.1, 0.2)]
            height, wall, bottom = 1.0, u(0.015, 0.03), u(0.04, 0.08)
        elif kind == "cup":  # a tumbler that widens (or bulges) towards the rim
            radii = [u(0.25, 0.36), u(0.28, 0.42), u(0.32, 0.48)]
            height, wall, bottom = 1.0, u(0.03, 0.05), u(0.05, 0.1)
        else:  # flask: body, shoulder, neck (solid)
            body = u(0.14, 0.26)
            radii = [body * u(0.9, 1.0), body, body * u(0.9, 1.05), body * u(0.5, 0.8), u(0.05, 0.08), u(0.05, 0.08)]
            height, wall, bottom = 1.0, 0.0, 0.0
        scale = size / max(height, 2 * max(radii))
        spec_type = SHAPE_TYPES[kind]
        return spec_type(height * scale, tuple(r * scale for r in radii), wall * scale, bottom * scale)
    # Compound kinds: the parts' lengths along x plus the gaps between them add up to `size`.
    gap = 0.001
    if kind == "hammer":
        head_width = u(0.08, 0.14)
        radius = u(0.025, 0.04)
        return HammerSpec(
            handle_length=size * (1 - head_width) - gap,
            handle_radius=size * radius,
            head_length=size * u(0.3, 0.45),
            head_width=size * head_width,
            head_height=size * 2 * radius * u(1.0, 1.4),
            gap=gap,
        )
    if kind == "screwdriver":
        handle = u(0.35, 0.5)
        return ScrewdriverSpec(
            handle_length=size * handle,
            handle_radius=size * u(0.06, 0.09),
            shaft_length=size * (1 - handle) - gap,
            shaft_radius=size * u(0.012, 0.025),
            gap=gap,
        )
    if kind == "lidded_box":
        overhang = u(0.01, 0.03)
        size_x = 1 - 2 * overhang  # the lid is the widest part: its x extent is the box's size
        body_height = u(0.25, 0.8)
        return LiddedBoxSpec(
            size_x=size * size_x,
            size_y=size * size_x * u(0.4, 1.0),
            body_height=size * body_height,
            lid_height=size * u(0.04, 0.1),
            lid_overhang=size * overhang,
            gap=gap,
        )
    # dumbbell
    weight_width = u(0.08, 0.15)
    return DumbbellSpec(
        bar_length=size * (1 - 2 * weight_width) - 2 * gap,
        bar_radius=size * u(0.03, 0.05),
        weight_radius=size * u(0.12, 0.22),
        weight_width=size * weight_width,
        gap=gap,
    )


def shape_extent(spec: ShapeSpec, segments: int = DEFAULT_SEGMENTS) -> np.ndarray:
    """[3] float64 bounding-box size of the shape's mesh in its object frame, metres."""
    lo, hi = spec.mesh(segments).bounds()
    return hi - lo


__all__ = [
    "BoxSpec",
    "CylinderSpec",
    "SphereSpec",
    "ConeSpec",
    "BowlSpec",
    "MugSpec",
    "BottleSpec",
    "SuperquadricSpec",
    "LatheSpec",
    "VaseSpec",
    "CupSpec",
    "FlaskSpec",
    "HammerSpec",
    "ScrewdriverSpec",
    "LiddedBoxSpec",
    "DumbbellSpec",
    "ShapeSpec",
    "SHAPE_KINDS",
    "LEGACY_SHAPE_KINDS",
    "SHAPE_FAMILIES",
    "FAMILY_OF_KIND",
    "CONTAINER_KINDS",
    "CATEGORY_SIZE_RANGES",
    "revolve_profile",
    "capped_tube",
    "merge_meshes",
    "signed_volume",
    "volume_centroid",
    "is_closed",
    "sample_shape",
    "shape_to_dict",
    "shape_from_dict",
    "shape_extent",
    "DEFAULT_SEGMENTS",
]
