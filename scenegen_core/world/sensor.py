"""Depth sensor model of the synthetic world: what an active-stereo / structured-light camera
(a RealSense D435, say) would measure where the renderer gives the exact z-depth.

The renders of a scene stay exact; this module turns an exact render into a sensor depth image.
``SyntheticScene.views()`` applies it when ``WorldConfig.depth_noise`` is set (off by default, so
exact tests and the pinned world fingerprints are untouched), deterministically from the scene
seed and the camera index: the same stored scene gives the same noisy depth every time it is
loaded, and one stored dataset can be evaluated with and without noise (``evaluate
--depth-noise``).

Camera model: the depth camera is the render's camera (same intrinsics, same pixels; its depth is
"aligned to colour"); the second stereo viewpoint (the right imager, or the projector of a
structured-light sensor) sits ``baseline_m`` to its right (+x of the optical frame). Per camera,
in this order (numbers refer to ``simulate_depth``'s steps):

1. Missing pixels (depth 0), each cause with its own random stream:
   * stereo shadow: surfaces the second viewpoint cannot see (a band on the left of every
     foreground edge, ``f * b * (1/z_front - 1/z_back)`` pixels wide);
   * depth discontinuities: pixels within ``edge_width_px`` of a jump larger than
     ``edge_jump`` x depth between 4-neighbours (or between a hit and no hit) drop out with
     probability ``edge_dropout`` (block matching fails across the edge);
   * dark surfaces: the rendered luminance Y (Rec. 709, [0, 1]) below ``dark_luminance`` drops
     out with probability ``dark_dropout * (1 - Y / dark_luminance)`` (little returned light,
     weak texture);
   * specular surfaces: the world has no materials, so each surface (object, table, room; the
     render's instance ids) is glossy with probability ``glossy_probability``, drawn once per
     scene so all cameras agree; a glossy surface loses the pixels whose normal is within
     ``specular_cone_deg`` of the viewing ray (the mirror reflection of the projector, which sits
     beside the camera, saturates the imagers);
   * random dropouts (``random_dropout``) and readings outside ``depth_range_m``.
2. Noise: ``sigma(z) = sigma_at_1m * z**2`` (metres; stereo depth error grows with z^2 since
   z = f b / disparity), a Gaussian field smoothed over ``correlation_px`` pixels (the matching
   window correlates neighbours) and rescaled to unit variance.
3. Flying pixels: a share ``flying_pixel_probability`` of the discontinuity pixels that kept a
   reading get a depth drawn uniformly between the nearest and farthest depth of their 3 x 3
   neighbourhood (mixed foreground/background).
4. Quantisation to ``quantisation_m`` (1 mm: the 16-bit depth unit of the D435).
5. RGB-depth misalignment: the finished depth image is shifted by ``depth_shift_px`` = (dx, dy)
   whole pixels against the RGB image (and the masks, which belong to the RGB camera); pixels
   shifted in from outside read 0.

Time offset. For a static scene and a static camera, a time offset between the RGB and the depth
image changes no pixel, so it is modelled through the motion it exposes: with ``time_offset_s``
and ``camera_velocity_m_s`` (optical frame of the RGB camera, constant during the capture) the
exact depth is rendered from the camera moved by ``velocity * offset`` before steps 1-5
(``SyntheticScene`` does this; it needs the scene's geometry). The hole masks of step 1 then use
the RGB image's luminance and instance ids as they are, a small approximation for small motions.

Presets: ``DEPTH_NOISE_PRESETS`` ("d435": ``DepthNoiseConfig()``, whose defaults resemble a
RealSense D435 at 1 m - 1.5 m: about 3 mm RMS at 1 m, a 50 mm baseline, 1 mm units, no
misalignment or motion); "off" means no sensor model (``WorldConfig.depth_noise = None``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
from scipy import ndimage

from scenegen_core.geometry import backproject_depth, depth_discontinuities
from scenegen_core.types import CameraIntrinsics

# Random streams: np.random.default_rng([scene seed, _NOISE_STREAM, ...]); the world itself uses
# [seed] (geometry) and [seed, 1] (appearance), so the sensor draws change no scene.
_NOISE_STREAM = 2
_GLOSS_STREAM = 0  # per scene (all cameras agree which surfaces are glossy)
_VIEW_STREAM = 1  # per camera: [seed, _NOISE_STREAM, _VIEW_STREAM, camera, cause]
_CAUSES = ("noise", "edge", "dark", "specular", "random", "flying", "flying_depth")
_LUMA = np.array([0.2126, 0.7152, 0.0722])  # Rec. 709 luminance weights
_SHADOW_SUPERSAMPLING = 4  # z-buffer cells per pixel of the second viewpoint's image rows
_SHADOW_TOLERANCE = 0.01  # relative depth margin before a nearer surface counts as hiding a pixel


@dataclass(frozen=True)
class DepthNoiseConfig:
    """Parameters of the depth sensor model (module docstring); lengths in metres.

    The defaults are the "d435" preset. ``DepthNoiseConfig.exact(**on)`` turns every effect off
    except the given ones (for tests and ablations); ``exact()`` itself returns the render's depth
    unchanged.
    """

    sigma_at_1m: float = 0.003
    correlation_px: float = 1.0
    baseline_m: float = 0.05
    edge_jump: float = 0.02
    edge_width_px: int = 1
    edge_dropout: float = 0.5
    flying_pixel_probability: float = 0.1
    dark_luminance: float = 0.12
    dark_dropout: float = 0.9
    glossy_probability: float = 0.15
    specular_cone_deg: float = 8.0
    random_dropout: float = 0.005
    depth_range_m: tuple[float, float] = (0.15, 6.0)
    quantisation_m: float = 0.001
    depth_shift_px: tuple[int, int] = (0, 0)
    time_offset_s: float = 0.0
    camera_velocity_m_s: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "depth_range_m", tuple(float(v) for v in self.depth_range_m))
        object.__setattr__(self, "depth_shift_px", tuple(int(v) for v in self.depth_shift_px))
        object.__setattr__(self, "camera_velocity_m_s", tuple(float(v) for v in self.camera_velocity_m_s))
        for name in ("sigma_at_1m", "correlation_px", "baseline_m", "edge_jump", "quantisation_m"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) >= 0):
                raise ValueError(f"{name} must be a finite value >= 0, got {getattr(self, name)}")
        for name in ("edge_dropout", "flying_pixel_probability", "dark_dropout", "glossy_probability", "random_dropout"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {getattr(self, name)}")
        if self.edge_width_px < 1:
            raise ValueError(f"edge_width_px must be >= 1, got {self.edge_width_px}")
        if not 0.0 <= self.dark_luminance <= 1.0:
            raise ValueError(f"dark_luminance must be in [0, 1], got {self.dark_luminance}")
        if not 0.0 <= self.specular_cone_deg < 90.0:
            raise ValueError(f"specular_cone_deg must be in [0, 90), got {self.specular_cone_deg}")
        lo, hi = self.depth_range_m
        if len(self.depth_range_m) != 2 or not 0.0 <= lo < hi:
            raise ValueError(f"depth_range_m must be (near, far) with 0 <= near < far, got {self.depth_range_m}")
        if len(self.depth_shift_px) != 2 or len(self.camera_velocity_m_s) != 3:
            raise ValueError("depth_shift_px must be (dx, dy) and camera_velocity_m_s (vx, vy, vz)")
        if not (math.isfinite(self.time_offset_s) and all(math.isfinite(v) for v in self.camera_velocity_m_s)):
            raise ValueError("time_offset_s and camera_velocity_m_s must be finite")

    @classmethod
    def exact(cls, **on) -> "DepthNoiseConfig":
        """Every effect off (the sensor returns the render's depth), except the keyword arguments."""
        return cls(**{**_EXACT, **on})

    def sigma(self, depth: np.ndarray) -> np.ndarray:
        """Noise standard deviation (metres) at z-depth (metres), same shape."""
        return self.sigma_at_1m * np.square(np.asarray(depth, dtype=np.float64))

    @property
    def camera_motion_m(self) -> np.ndarray:
        """[3] float64 displacement (metres, RGB optical frame) of the depth camera: velocity x time offset."""
        return np.asarray(self.camera_velocity_m_s, dtype=np.float64) * self.time_offset_s

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "DepthNoiseConfig":
        """Config from (a subset of) to_dict()'s fields; missing ones keep the defaults (the d435 preset)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown DepthNoiseConfig fields: {sorted(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


_EXACT = dict(
    sigma_at_1m=0.0,
    correlation_px=0.0,
    baseline_m=0.0,
    edge_dropout=0.0,
    flying_pixel_probability=0.0,
    dark_dropout=0.0,
    glossy_probability=0.0,
    random_dropout=0.0,
    depth_range_m=(0.0, math.inf),
    quantisation_m=0.0,
)

DEPTH_NOISE_PRESETS: dict[str, DepthNoiseConfig] = {"d435": DepthNoiseConfig()}


def depth_noise_preset(name: str) -> Optional[DepthNoiseConfig]:
    """The preset called name, or None for "off"; ValueError naming the known ones otherwise."""
    if name == "off":
        return None
    if name not in DEPTH_NOISE_PRESETS:
        raise ValueError(f"unknown depth noise preset {name!r}; known: {['off', *DEPTH_NOISE_PRESETS]}")
    return DEPTH_NOISE_PRESETS[name]


@dataclass(frozen=True)
class SensorDepth:
    """A simulated depth image and why pixels lack a reading.

    depth: [H, W] float32 z-depth in metres in the depth camera's pixels (after the shift of step
    5), 0 = no reading. The masks are [H, W] bool in the RGB camera's pixels (before the shift):
    shadow, edge, dark, specular, random, out_of_range: pixels with an exact depth that lost it for
    that reason (a pixel may have several); flying: pixels given a mixed depth (step 3).
    """

    depth: np.ndarray
    shadow: np.ndarray
    edge: np.ndarray
    dark: np.ndarray
    specular: np.ndarray
    random: np.ndarray
    out_of_range: np.ndarray
    flying: np.ndarray

    @property
    def missing(self) -> np.ndarray:
        """[H, W] bool: pixels that lost their reading for any reason."""
        return self.shadow | self.edge | self.dark | self.specular | self.random | self.out_of_range


def _stream(scene_seed: int, camera: int, cause: str) -> np.random.Generator:
    """The random generator of one cause in one camera (module constants)."""
    return np.random.default_rng([scene_seed, _NOISE_STREAM, _VIEW_STREAM, camera, _CAUSES.index(cause)])


def glossy_surfaces(scene_seed: int, surface_ids: np.ndarray, probability: float) -> np.ndarray:
    """[H, W] bool: pixels of glossy surfaces. Surface id i is glossy when draw i + 2 of the scene's
    gloss stream is below probability (ids start at -2: the table), so every camera agrees."""
    ids = np.asarray(surface_ids, dtype=np.int64)
    draws = np.random.default_rng([scene_seed, _NOISE_STREAM, _GLOSS_STREAM]).random(int(ids.max(initial=-2)) + 3)
    return draws[ids + 2] < probability


def stereo_shadow(depth: np.ndarray, fx: float, baseline_m: float) -> np.ndarray:
    """[H, W] bool: pixels with depth that a second viewpoint baseline_m to the right (+x) cannot see.

    depth: [H, W] z-depth in metres (0 = no hit); fx: focal length in pixels. A pixel at column u
    and depth z appears in the second image at column u - fx * b / z (rectified stereo, same rows).
    Each pixel covers one pixel-wide segment there; a z-buffer of those segments per row (at
    _SHADOW_SUPERSAMPLING cells per pixel) finds the pixels a nearer surface hides.
    """
    height, width = depth.shape
    valid = depth > 0
    if baseline_m <= 0 or not valid.any():
        return np.zeros(depth.shape, dtype=bool)
    # 1. Column of every valid pixel in the second image, in z-buffer cells.
    rows, cols = np.nonzero(valid)
    z = depth[rows, cols].astype(np.float64)
    column = cols - fx * baseline_m / z
    lo = np.floor(column.min()) - 1
    cells = int(math.ceil((column.max() - lo + 2) * _SHADOW_SUPERSAMPLING))
    # 2. Rasterise each pixel's segment [column - 0.5, column + 0.5] into the nearest-depth buffer.
    offsets = np.linspace(-0.5, 0.5, _SHADOW_SUPERSAMPLING + 1)
    covered = np.floor((column[:, None] + offsets[None, :] - lo) * _SHADOW_SUPERSAMPLING).astype(np.int64)
    zbuffer = np.full((height, cells), np.inf)
    np.minimum.at(zbuffer, (np.repeat(rows, len(offsets)), covered.ravel()), np.repeat(z, len(offsets)))
    # 3. Hidden: something clearly nearer covers the pixel's own centre there.
    centre = np.floor((column - lo) * _SHADOW_SUPERSAMPLING).astype(np.int64)
    hidden = np.zeros(depth.shape, dtype=bool)
    hidden[rows, cols] = zbuffer[rows, centre] < z * (1.0 - _SHADOW_TOLERANCE)
    return hidden


def viewing_cosine(depth: np.ndarray, intrinsics: CameraIntrinsics) -> np.ndarray:
    """[H, W] float64 |cos| of the angle between the surface normal and the viewing ray, from the
    depth image's own geometry (normals by central differences of the back-projected points;
    unreliable on discontinuities, which step 1 treats separately); 0 where depth is 0."""
    points = backproject_depth(depth, intrinsics)
    normals = np.cross(np.gradient(points, axis=1), np.gradient(points, axis=0))
    length = np.linalg.norm(normals, axis=-1) * np.linalg.norm(points, axis=-1)
    cosine = np.abs(np.einsum("hwc,hwc->hw", normals, points))
    return np.divide(cosine, length, out=np.zeros(depth.shape), where=(length > 0) & (depth > 0))


def shift_image(image: np.ndarray, shift_px: tuple[int, int]) -> np.ndarray:
    """[H, W] copy of image moved by (dx, dy) pixels (right, down); vacated pixels are 0."""
    dx, dy = shift_px
    out = np.zeros_like(image)
    height, width = image.shape
    if abs(dx) >= width or abs(dy) >= height:
        return out
    out[max(dy, 0) : height + min(dy, 0), max(dx, 0) : width + min(dx, 0)] = image[
        max(-dy, 0) : height + min(-dy, 0), max(-dx, 0) : width + min(-dx, 0)
    ]
    return out


def simulate_depth(
    depth: np.ndarray,
    rgb: np.ndarray,
    surface_ids: np.ndarray,
    intrinsics: CameraIntrinsics,
    config: DepthNoiseConfig,
    scene_seed: int,
    camera: int = 0,
) -> SensorDepth:
    """The sensor's depth image of one camera (module docstring, steps 1-5).

    depth: [H, W] float exact z-depth in metres (0 = no hit); rgb: [H, W, 3] uint8 render (its
    luminance decides dark dropouts); surface_ids: [H, W] int >= -2 instance ids of the render
    (which surface each pixel shows; glossiness is drawn per id); intrinsics: the camera's.
    scene_seed, camera: select the random streams, so the result is a function of its inputs.
    """
    exact = np.asarray(depth, dtype=np.float64)
    if exact.shape != (intrinsics.height, intrinsics.width) or np.shape(rgb)[:2] != exact.shape:
        size = f"{intrinsics.height}x{intrinsics.width}"
        raise ValueError(f"depth {exact.shape}, rgb {np.shape(rgb)} and intrinsics {size} disagree")
    valid = exact > 0
    shape = exact.shape

    # 1. Missing pixels, one cause at a time (each from its own random stream).
    shadow = valid & stereo_shadow(exact, intrinsics.fx, config.baseline_m)
    discontinuity = valid & depth_discontinuities(exact, config.edge_jump * exact, config.edge_width_px)
    edge = discontinuity & (_stream(scene_seed, camera, "edge").random(shape) < config.edge_dropout)
    luminance = (np.asarray(rgb, dtype=np.float64) @ _LUMA) / 255.0
    darkness = np.clip(1.0 - luminance / config.dark_luminance, 0.0, 1.0) if config.dark_luminance > 0 else np.zeros(shape)
    dark = valid & (_stream(scene_seed, camera, "dark").random(shape) < config.dark_dropout * darkness)
    specular = np.zeros(shape, dtype=bool)
    if config.glossy_probability > 0:
        glossy = valid & glossy_surfaces(scene_seed, surface_ids, config.glossy_probability)
        specular = glossy & (viewing_cosine(exact, intrinsics) > math.cos(math.radians(config.specular_cone_deg)))
    random = valid & (_stream(scene_seed, camera, "random").random(shape) < config.random_dropout)
    near, far = config.depth_range_m
    out_of_range = valid & ((exact < near) | (exact > far))
    keep = valid & ~(shadow | edge | dark | specular | random | out_of_range)

    # 2. Depth-dependent, spatially correlated Gaussian noise of unit variance times sigma(z).
    field = _stream(scene_seed, camera, "noise").standard_normal(shape)
    if config.correlation_px > 0:
        # Filtered white noise has variance sum(kernel^2); the impulse response gives that sum.
        impulse = np.zeros((int(8 * config.correlation_px) * 2 + 1,) * 2)
        impulse[impulse.shape[0] // 2, impulse.shape[1] // 2] = 1.0
        gain = math.sqrt(float(np.sum(np.square(ndimage.gaussian_filter(impulse, config.correlation_px)))))
        field = ndimage.gaussian_filter(field, config.correlation_px) / gain
    measured = exact + config.sigma(exact) * field

    # 3. Flying pixels on discontinuities that kept a reading: uniformly between their 3 x 3
    #    neighbourhood's nearest and farthest exact depth.
    flying = keep & discontinuity & (_stream(scene_seed, camera, "flying").random(shape) < config.flying_pixel_probability)
    if flying.any():
        nearest = ndimage.minimum_filter(np.where(valid, exact, np.inf), size=3)[flying]
        farthest = ndimage.maximum_filter(exact, size=3)[flying]
        mix = _stream(scene_seed, camera, "flying_depth").random(shape)[flying]
        measured[flying] = nearest + mix * (farthest - nearest)

    # 4. Quantisation to the depth unit (a reading never becomes 0 or negative through it).
    if config.quantisation_m > 0:
        measured = np.maximum(np.round(measured / config.quantisation_m), 1.0) * config.quantisation_m
    sensor = np.where(keep, measured, 0.0).astype(np.float32)

    # 5. RGB-depth misalignment.
    if config.depth_shift_px != (0, 0):
        sensor = shift_image(sensor, config.depth_shift_px)
    return SensorDepth(sensor, shadow, edge, dark, specular, random, out_of_range, flying)


__all__ = [
    "DepthNoiseConfig",
    "DEPTH_NOISE_PRESETS",
    "depth_noise_preset",
    "SensorDepth",
    "simulate_depth",
    "stereo_shadow",
    "viewing_cosine",
    "glossy_surfaces",
    "shift_image",
]
