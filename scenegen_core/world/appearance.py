"""Appearance of the synthetic world: procedural solid textures, the room around the table, the lamp.

Textures are *solid* (3D) patterns: the albedo is a function of a point in the textured body's
own frame (an object's object frame; the world frame for the table and the room), so they need
no UV mapping, look the same from every camera and move with the object. Patterns:

* ``flat``: ``color`` everywhere;
* ``stripes``: bands ``period`` metres wide across ``direction``, alternating color / color2;
* ``checker``: cubes of side ``period`` metres, alternating color / color2;
  (bands and cubes are centred on the texture frame's origin planes);
* ``noise``: smooth value noise with features ~``period`` metres, blending color into color2.

Room: a floor ``floor_depth`` metres below the table top and four walls, all thin closed boxes in
the world frame (z up, origin at the centre of the table top, see scene.py); no ceiling, so a lamp
above the table lights the scene. Renders label the room as background (BACKGROUND_ID).
"""

from __future__ import annotations

import colorsys
import dataclasses
from dataclasses import dataclass

import numpy as np

from scenegen_core.types import Mesh, Pose
from scenegen_core.world.render import PointLight
from scenegen_core.world.shapes import BoxSpec, merge_meshes

PATTERNS = ("flat", "stripes", "checker", "noise")
_NOISE_LATTICE = 16  # value-noise lattice edge (the pattern repeats every 16 periods)

Color = tuple[float, float, float]


@dataclass(frozen=True)
class Texture:
    """A procedural solid texture (module docstring); colours RGB in [0, 1], period in metres.

    direction: [3] vector across the stripes (stripes only; its length does not matter); seed: the noise lattice's seed
    (noise only).
    """

    pattern: str
    color: Color
    color2: Color = (0.0, 0.0, 0.0)
    period: float = 0.02
    direction: tuple[float, float, float] = (1.0, 0.0, 0.0)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.pattern not in PATTERNS:
            raise ValueError(f"unknown texture pattern {self.pattern!r}; known: {PATTERNS}")
        if not (np.isfinite(self.period) and self.period > 0):
            raise ValueError(f"texture period must be a positive length in metres, got {self.period}")
        direction = np.asarray(self.direction, dtype=np.float64)
        if direction.shape != (3,) or not np.linalg.norm(direction) > 0:
            raise ValueError(f"texture direction must be a non-zero 3-vector, got {self.direction}")
        for name in ("color", "color2", "direction"):
            object.__setattr__(self, name, tuple(float(c) for c in getattr(self, name)))
        object.__setattr__(self, "seed", int(self.seed))

    def albedo(self, points: np.ndarray) -> np.ndarray:
        """[N, 3] float64 RGB in [0, 1] at [N, 3] points of the texture's frame (metres)."""
        points = np.asarray(points, dtype=np.float64) / self.period
        # Cells and bands are centred on the frame's origin planes (the + 0.5): the table top, a
        # box's bottom, ... would otherwise lie exactly on a cell boundary and flicker between cells.
        if self.pattern == "flat":
            weight = np.zeros(len(points))
        elif self.pattern == "stripes":
            direction = np.asarray(self.direction)
            weight = np.floor(points @ (direction / np.linalg.norm(direction)) + 0.5) % 2
        elif self.pattern == "checker":
            weight = np.floor(points + 0.5).sum(axis=1) % 2
        else:
            weight = _value_noise(points, self.seed)
        color, color2 = np.asarray(self.color), np.asarray(self.color2)
        return (1 - weight)[:, None] * color + weight[:, None] * color2


def _value_noise(points: np.ndarray, seed: int) -> np.ndarray:
    """[N] smooth value noise in [0, 1] at [N, 3] points (lattice spacing 1): trilinear interpolation,
    with smoothstep weights, of uniform random values on a periodic 16^3 lattice."""
    lattice = np.random.default_rng(seed).random((_NOISE_LATTICE,) * 3)
    base = np.floor(points)
    frac = points - base
    frac = frac * frac * (3 - 2 * frac)  # smoothstep: no creases at lattice planes
    base = base.astype(np.int64)
    out = np.zeros(len(points))
    for corner in np.ndindex(2, 2, 2):
        index = (base + corner) % _NOISE_LATTICE
        weight = np.prod(np.where(np.array(corner, dtype=bool), frac, 1 - frac), axis=1)
        out += weight * lattice[index[:, 0], index[:, 1], index[:, 2]]
    return out


def texture_to_dict(texture: Texture | None) -> dict | None:
    return None if texture is None else dataclasses.asdict(texture)


def texture_from_dict(data: dict | None) -> Texture | None:
    return None if data is None else Texture(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def world_albedo(texture: Texture, world_from_texture: Pose | None = None):
    """AlbedoFunction (render.py) of world-frame points for a texture attached to a rigid frame
    (None: the texture lives in the world frame)."""
    if world_from_texture is None:
        return texture.albedo
    rotation, translation = world_from_texture.rotation_matrix, world_from_texture.translation
    return lambda points: texture.albedo((np.asarray(points, dtype=np.float64) - translation) @ rotation)


@dataclass(frozen=True)
class Room:
    """Floor and four walls around the table (module docstring); metres, world frame.

    floor_depth: floor below the table top (> table thickness); half_x / half_y: distance of the
    walls' inner faces from the origin; wall_height: wall top above the table top.
    """

    floor_depth: float
    half_x: float
    half_y: float
    wall_height: float
    floor_texture: Texture
    wall_texture: Texture
    thickness: float = 0.05

    def meshes(self) -> tuple[Mesh, Mesh]:
        """(floor, walls): closed meshes in the world frame; walls is the union of four disjoint boxes."""
        t, hx, hy = self.thickness, self.half_x, self.half_y
        floor = BoxSpec(2 * (hx + t), 2 * (hy + t), t).mesh().transformed(Pose(translation=[0.0, 0.0, -self.floor_depth - t]))
        height = self.wall_height + self.floor_depth
        walls = []
        # Walls along x (at y = +-half_y) span the full width; walls along y fit between them, so the
        # four boxes touch only along edges and never overlap.
        for sign in (-1.0, 1.0):
            walls.append(BoxSpec(2 * (hx + t), t, height).mesh().transformed(Pose(translation=[0.0, sign * (hy + t / 2), -self.floor_depth])))
            walls.append(BoxSpec(t, 2 * hy - 1e-4, height).mesh().transformed(Pose(translation=[sign * (hx + t / 2), 0.0, -self.floor_depth])))
        return floor, merge_meshes(walls)


def random_color(rng: np.random.Generator, saturation=(0.45, 0.9), value=(0.55, 0.95), hue=(0.0, 1.0)) -> Color:
    """A random RGB colour from uniform HSV ranges."""
    rgb = colorsys.hsv_to_rgb(rng.uniform(*hue), rng.uniform(*saturation), rng.uniform(*value))
    return tuple(float(c) for c in rgb)


def _random_direction(rng: np.random.Generator) -> tuple[float, float, float]:
    v = rng.normal(size=3)
    return tuple(float(c) for c in v / np.linalg.norm(v))


def _shade(color: Color, factor: float) -> Color:
    return tuple(float(np.clip(c * factor, 0.0, 1.0)) for c in color)


def sample_object_texture(rng: np.random.Generator, color: Color, probability: float) -> Texture | None:
    """None (flat ``color``) with 1 - probability, else stripes / checker / noise over ``color`` and a
    second random colour, features 5 mm to 4 cm."""
    if rng.random() >= probability:
        return None
    pattern = PATTERNS[1 + int(rng.integers(3))]
    color2 = random_color(rng) if rng.random() < 0.6 else _shade(color, rng.uniform(0.35, 0.7))
    return Texture(pattern, color, color2, float(rng.uniform(0.005, 0.04)), _random_direction(rng), int(rng.integers(2**31)))


def sample_table_texture(rng: np.random.Generator, color: Color, probability: float) -> Texture | None:
    """Wood grain (fine stripes along x or y in two close browns), a checked tablecloth or a stained
    (noisy) top with ``probability``; None (flat ``color``) otherwise."""
    if rng.random() >= probability:
        return None
    choice = int(rng.integers(3))
    if choice == 0:
        direction = (0.0, 1.0, 0.0) if rng.random() < 0.5 else (1.0, 0.0, 0.0)
        return Texture("stripes", color, _shade(color, rng.uniform(0.75, 0.9)), float(rng.uniform(0.004, 0.015)), direction)
    if choice == 1:
        return Texture("checker", color, random_color(rng, (0.1, 0.6), (0.75, 1.0)), float(rng.uniform(0.03, 0.08)))
    return Texture("noise", color, _shade(color, rng.uniform(0.6, 0.85)), float(rng.uniform(0.02, 0.1)), seed=int(rng.integers(2**31)))


def sample_room(rng: np.random.Generator, table_half: np.ndarray) -> Room:
    """A room whose walls stand 1.8-3 m beyond the table's edges (outside the cameras' reach)."""
    floor_color = random_color(rng, (0.1, 0.5), (0.35, 0.8), (0.02, 0.14))
    floor = (
        Texture("checker", floor_color, _shade(floor_color, rng.uniform(0.6, 0.85)), float(rng.uniform(0.25, 0.5)))
        if rng.random() < 0.5
        else Texture("stripes", floor_color, _shade(floor_color, rng.uniform(0.7, 0.9)), float(rng.uniform(0.08, 0.2)), (1.0, 0.0, 0.0))
    )
    wall_color = random_color(rng, (0.0, 0.3), (0.6, 0.95))
    wall = Texture("noise", wall_color, _shade(wall_color, rng.uniform(0.85, 0.97)), float(rng.uniform(0.1, 0.4)), seed=int(rng.integers(2**31)))
    return Room(
        floor_depth=float(rng.uniform(0.7, 0.78)),
        half_x=float(table_half[0] + rng.uniform(1.8, 3.0)),
        half_y=float(table_half[1] + rng.uniform(1.8, 3.0)),
        wall_height=float(rng.uniform(2.2, 2.8)),
        floor_texture=floor,
        wall_texture=wall,
    )


def sample_lamp(rng: np.random.Generator, target: np.ndarray) -> PointLight:
    """A lamp 0.8-1.6 m above the table top, up to 1 m sideways of ``target`` (world, metres)."""
    angle = rng.uniform(0, 2 * np.pi)
    offset = rng.uniform(0.0, 1.0) * np.array([np.cos(angle), np.sin(angle)])
    position = (float(target[0] + offset[0]), float(target[1] + offset[1]), float(rng.uniform(0.8, 1.6)))
    return PointLight(position, share=float(rng.uniform(0.55, 0.8)))


def room_to_dict(room: Room | None) -> dict | None:
    if room is None:
        return None
    data = dataclasses.asdict(room)
    data["floor_texture"], data["wall_texture"] = texture_to_dict(room.floor_texture), texture_to_dict(room.wall_texture)
    return data


def room_from_dict(data: dict | None) -> Room | None:
    if data is None:
        return None
    data = dict(data)
    for key in ("floor_texture", "wall_texture"):
        data[key] = texture_from_dict(data[key])
    return Room(**data)


def light_to_dict(light: PointLight | None) -> dict | None:
    return None if light is None else {"position": list(light.position), "share": light.share}


def light_from_dict(data: dict | None) -> PointLight | None:
    return None if data is None else PointLight(tuple(data["position"]), float(data["share"]))


__all__ = [
    "PATTERNS",
    "Texture",
    "Room",
    "world_albedo",
    "random_color",
    "sample_object_texture",
    "sample_table_texture",
    "sample_room",
    "sample_lamp",
    "texture_to_dict",
    "texture_from_dict",
    "room_to_dict",
    "room_from_dict",
    "light_to_dict",
    "light_from_dict",
]
