"""Watertight primitive shapes for the synthetic tabletop world.

Every shape is a frozen dataclass holding its dimensions in metres with a ``mesh()`` method.

Object frame (all shapes): metres, z up, origin at the centre of the bottom of the shape's
axis-aligned bounding box (the object stands on the plane z = 0 when placed upright); x and y
are horizontal. The mug's handle points along +x.

Every mesh returned is *closed and outward-oriented*: each edge is shared by exactly two faces
with opposite directions, and the signed volume is positive. The mug is the union of two disjoint
closed parts (body and handle) separated by a small gap (``MugSpec.handle_gap``), so inside /
outside stays well defined for parity-based occupancy (overlapping parts would cancel out).

Rotationally symmetric shapes are built from a 2D profile revolved about the z axis
(``revolve_profile``); the profile starts and ends on the axis, so the surface is a closed
sphere-like surface with a pole at each end.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar, Union

import numpy as np

from scenegen_core.types import Mesh

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


ShapeSpec = Union[BoxSpec, CylinderSpec, SphereSpec, ConeSpec, BowlSpec, MugSpec, BottleSpec]
SHAPE_TYPES: dict[str, type] = {
    cls.kind: cls for cls in (BoxSpec, CylinderSpec, SphereSpec, ConeSpec, BowlSpec, MugSpec, BottleSpec)
}
SHAPE_KINDS: tuple[str, ...] = tuple(SHAPE_TYPES)


def shape_to_dict(spec: ShapeSpec) -> dict:
    """JSON-ready {"kind": ..., <dimension>: metres, ...}."""
    return {"kind": spec.kind, **dataclasses.asdict(spec)}


def shape_from_dict(data: dict) -> ShapeSpec:
    """Inverse of ``shape_to_dict``; raises ValueError for an unknown kind or wrong fields."""
    data = dict(data)
    kind = data.pop("kind", None)
    if kind not in SHAPE_TYPES:
        raise ValueError(f"unknown shape kind {kind!r}; known: {SHAPE_KINDS}")
    try:
        return SHAPE_TYPES[kind](**{k: float(v) for k, v in data.items()})
    except TypeError as error:
        raise ValueError(f"bad fields for shape {kind!r}: {error}") from None


def sample_shape(rng: np.random.Generator, kind: str, size_range: tuple[float, float]) -> ShapeSpec:
    """Random shape of the given kind whose largest bounding-box extent lies in size_range (metres)."""
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
    return BottleSpec(radius=size * u(0.12, 0.22), height=size, neck_radius=size * u(0.04, 0.06))


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
    "ShapeSpec",
    "SHAPE_KINDS",
    "revolve_profile",
    "capped_tube",
    "merge_meshes",
    "signed_volume",
    "is_closed",
    "sample_shape",
    "shape_to_dict",
    "shape_from_dict",
    "shape_extent",
    "DEFAULT_SEGMENTS",
]
