"""The synthetic world's depth sensor model (scenegen_core/world/sensor.py): noise statistics,
quantisation, holes at discontinuities and on dark / glossy surfaces, flying pixels,
misalignment, the time offset, and that it is off (bit for bit) unless asked for."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from scenegen_core.types import CameraIntrinsics
from scenegen_core.world import dataset
from scenegen_core.world.scene import SceneCamera, WorldConfig, generate_scene, render_scene_camera
from scenegen_core.world.sensor import (
    DEPTH_NOISE_PRESETS,
    DepthNoiseConfig,
    depth_noise_preset,
    glossy_surfaces,
    shift_image,
    simulate_depth,
    stereo_shadow,
)

SIZE = 160
K = CameraIntrinsics(120.0, 120.0, (SIZE - 1) / 2, (SIZE - 1) / 2, SIZE, SIZE)
WHITE = np.full((SIZE, SIZE, 3), 255, np.uint8)
IDS = np.zeros((SIZE, SIZE), np.int32)
SMALL = WorldConfig(min_objects=2, max_objects=3, num_cameras=2, image_width=64, image_height=64, segments=24)


def sense(depth, config, rgb=WHITE, ids=IDS, seed=7, camera=0, intrinsics=K):
    return simulate_depth(depth, rgb, ids, intrinsics, config, seed, camera)


def wall(z: float) -> np.ndarray:
    return np.full((SIZE, SIZE), z, np.float32)


def step() -> np.ndarray:
    """A 1.0 m square (rows 30-69, columns 40-79) in front of a 1.5 m wall."""
    depth = wall(1.5)
    depth[30:70, 40:80] = 1.0
    return depth


@pytest.mark.parametrize("z", [0.6, 1.5])
def test_noise_sigma_grows_with_z_squared(z):
    config = DepthNoiseConfig.exact(sigma_at_1m=0.003, correlation_px=1.0)
    error = sense(wall(z), config).depth.astype(np.float64) - np.float32(z)
    assert np.std(error) == pytest.approx(0.003 * z**2, rel=0.06)
    assert abs(np.mean(error)) < 0.1 * 0.003 * z**2
    # Correlated like Gaussian-filtered white noise: lag-1 correlation exp(-1 / (4 s^2)) for s = 1 px.
    lag1 = np.corrcoef(error[:, :-1].ravel(), error[:, 1:].ravel())[0, 1]
    assert lag1 == pytest.approx(math.exp(-0.25), abs=0.05)
    white = sense(wall(z), dataclasses.replace(config, correlation_px=0.0)).depth - np.float32(z)
    assert abs(np.corrcoef(white[:, :-1].ravel(), white[:, 1:].ravel())[0, 1]) < 0.05


def test_depth_is_quantised_to_whole_millimetres():
    exact = wall(1.0) + np.linspace(0.0, 0.05, SIZE, dtype=np.float32)[None, :]
    sensed = sense(exact, DepthNoiseConfig.exact(quantisation_m=0.001)).depth.astype(np.float64)
    millimetres = sensed * 1000
    np.testing.assert_allclose(millimetres, np.round(millimetres), atol=1e-3)
    assert np.abs(sensed - exact).max() <= 0.0005 + 1e-6
    steps = np.diff(np.unique(np.round(millimetres)))
    assert set(steps.tolist()) == {1.0}  # a 5 cm ramp over 160 px visits every millimetre
    noisy = sense(exact, DepthNoiseConfig()).depth
    valid = noisy > 0
    np.testing.assert_allclose(noisy[valid] * 1000, np.round(noisy[valid] * 1000), atol=1e-3)


def test_stereo_shadow_is_the_band_the_second_viewpoint_cannot_see():
    shadow = stereo_shadow(step(), K.fx, 0.05)
    # fx * b * (1 / z_front - 1 / z_back) = 120 * 0.05 * (1 - 1 / 1.5) = 2 pixels, left of the square.
    expected = np.zeros((SIZE, SIZE), bool)
    expected[30:70, 38:40] = True
    np.testing.assert_array_equal(shadow, expected)
    sensed = sense(step(), DepthNoiseConfig.exact(baseline_m=0.05))
    np.testing.assert_array_equal(sensed.shadow, expected)
    assert np.all(sensed.depth[expected] == 0) and np.all(sensed.depth[~expected] > 0)
    assert not stereo_shadow(step(), K.fx, 0.0).any()


def test_pixels_at_depth_discontinuities_drop_out():
    edges = np.zeros((SIZE, SIZE), bool)
    edges[29:71, 39:81] = True
    edges[31:69, 41:79] = False  # the two pixels on either side of the square's outline
    for corner in [(29, 39), (29, 80), (70, 39), (70, 80)]:
        edges[corner] = False  # diagonal neighbours only: no 4-neighbour jump
    sensed = sense(step(), DepthNoiseConfig.exact(edge_dropout=1.0))
    np.testing.assert_array_equal(sensed.edge, edges)
    np.testing.assert_array_equal(sensed.depth == 0, edges)
    half = sense(step(), DepthNoiseConfig.exact(edge_dropout=0.5))
    assert half.edge.sum() / edges.sum() == pytest.approx(0.5, abs=0.08)
    assert not (half.edge & ~edges).any()


def test_dark_surfaces_lose_readings_in_proportion_to_their_darkness():
    rgb = WHITE.copy()
    rgb[:, :50] = 0  # black: luminance 0
    rgb[:, 50:100] = 15  # luminance 15 / 255 = 0.059: half of dark_luminance 0.118
    config = DepthNoiseConfig.exact(dark_luminance=30 / 255, dark_dropout=0.8)
    dark = sense(wall(1.0), config, rgb=rgb).dark
    assert dark[:, :50].mean() == pytest.approx(0.8, abs=0.03)
    assert dark[:, 50:100].mean() == pytest.approx(0.4, abs=0.03)
    assert not dark[:, 100:].any()


def test_glossy_surfaces_lose_the_mirror_spot_of_the_projector():
    # A wall facing the camera: the normal is within 8 deg of the ray inside a disc of radius fx tan 8 deg.
    config = DepthNoiseConfig.exact(glossy_probability=1.0, specular_cone_deg=8.0)
    specular = sense(wall(1.0), config).specular
    v, u = np.mgrid[:SIZE, :SIZE]
    radius = np.hypot(u - K.cx, v - K.cy)
    limit = K.fx * math.tan(math.radians(8.0))
    assert specular[radius < limit - 0.5].all() and not specular[radius > limit + 0.5].any()
    assert not sense(wall(1.0), dataclasses.replace(config, glossy_probability=0.0)).specular.any()
    # Glossiness is drawn per surface and scene: the same in every camera, about the asked share.
    ids = np.arange(-2, 998).reshape(20, 50)
    glossy = glossy_surfaces(3, ids, 0.3)
    np.testing.assert_array_equal(glossy, glossy_surfaces(3, ids, 0.3))
    assert glossy.mean() == pytest.approx(0.3, abs=0.05)


def test_flying_pixels_lie_between_the_surfaces_of_an_edge():
    sensed = sense(step(), DepthNoiseConfig.exact(flying_pixel_probability=1.0))
    flying = sensed.flying
    assert flying.sum() > 200
    assert np.all((sensed.depth[flying] >= 1.0) & (sensed.depth[flying] <= 1.5))
    assert np.mean((sensed.depth[flying] > 1.01) & (sensed.depth[flying] < 1.49)) > 0.9
    np.testing.assert_array_equal(sensed.depth[~flying], step()[~flying])


def test_random_dropouts_and_the_depth_range():
    sensed = sense(wall(1.0), DepthNoiseConfig.exact(random_dropout=0.1))
    assert sensed.random.mean() == pytest.approx(0.1, abs=0.01)
    far = sense(step(), DepthNoiseConfig.exact(depth_range_m=(0.2, 1.2)))
    np.testing.assert_array_equal(far.depth > 0, step() < 1.2)


def test_depth_shift_misaligns_depth_against_rgb():
    sensed = sense(step(), DepthNoiseConfig.exact(depth_shift_px=(2, -1))).depth
    np.testing.assert_array_equal(sensed, shift_image(step(), (2, -1)))
    assert sensed[29, 42] == 1.0 and sensed[29, 41] == 1.5  # the square moved 2 right, 1 up
    assert np.all(sensed[:, :2] == 0) and np.all(sensed[-1] == 0)


def test_exact_config_and_no_config_leave_the_depth_bit_for_bit():
    scene = generate_scene(1_100_000, SMALL)
    assert scene.config.depth_noise is None and "depth_noise" not in scene.config.to_dict()
    for view, render in zip(scene.views(), scene.renders):
        assert view.depth.tobytes() == render.depth.tobytes()
    exact = scene.with_depth_noise(DepthNoiseConfig.exact())
    for view, render in zip(exact.views(), scene.renders):
        assert view.depth.tobytes() == render.depth.tobytes()


def test_noisy_views_are_deterministic_change_only_depth_and_survive_the_dataset(tmp_path):
    scene = generate_scene(1_100_001, SMALL)
    noisy = scene.with_depth_noise(DepthNoiseConfig())
    first, again = noisy.views(), scene.with_depth_noise(DepthNoiseConfig()).views()
    for a, b, clean in zip(first, again, scene.views()):
        np.testing.assert_array_equal(a.depth, b.depth)
        np.testing.assert_array_equal(a.rgb, clean.rgb)
        np.testing.assert_array_equal(a.masks, clean.masks)
        assert not np.array_equal(a.depth, clean.depth)
    # Each camera draws its own noise: the same surface seen by cameras 0 and 1 gets other errors.
    camera_0, camera_1 = (sense(wall(1.0), DepthNoiseConfig(), camera=k).depth for k in (0, 1))
    assert not np.array_equal(camera_0, camera_1)
    # Stored exact, noise re-applied on loading: the same views.
    folder = dataset.write_scene(noisy, tmp_path)
    assert np.array_equal(np.load(folder / "cam0_depth.npy"), scene.renders[0].depth)
    loaded = dataset.load_scene(folder)
    assert loaded.config == noisy.config and loaded.config.depth_noise == DepthNoiseConfig()
    for a, b in zip(loaded.views(), first):
        np.testing.assert_array_equal(a.depth, b.depth)


def test_time_offset_takes_the_depth_from_the_moved_camera():
    scene = generate_scene(1_100_002, dataclasses.replace(SMALL, num_cameras=1))
    moving = scene.with_depth_noise(DepthNoiseConfig.exact(time_offset_s=0.1, camera_velocity_m_s=(0.1, 0.0, 0.0)))
    camera = scene.cameras[0]
    moved = np.eye(4)
    moved[0, 3] = -0.01  # the camera 1 cm to its right: points move 1 cm to its left
    moved_camera = SceneCamera(camera.intrinsics, moved @ camera.camera_from_world)
    expected = render_scene_camera(scene.table, scene.objects, moved_camera, scene.room, scene.light)
    np.testing.assert_array_equal(moving.views()[0].depth, expected.depth)
    assert not np.array_equal(expected.depth, scene.renders[0].depth)
    np.testing.assert_allclose(moving.config.depth_noise.camera_motion_m, [0.01, 0.0, 0.0])


def test_configs_presets_and_validation():
    assert depth_noise_preset("off") is None
    assert depth_noise_preset("d435") == DEPTH_NOISE_PRESETS["d435"] == DepthNoiseConfig()
    with pytest.raises(ValueError, match="'off', 'd435'"):
        depth_noise_preset("kinect")
    noisy = WorldConfig(depth_noise=DepthNoiseConfig(depth_shift_px=(1, 0)))
    assert WorldConfig.from_dict(noisy.to_dict()) == noisy
    assert WorldConfig.from_dict(WorldConfig().to_dict()) == WorldConfig()
    assert DepthNoiseConfig().sigma(2.0) == pytest.approx(0.012)
    for bad in (dict(edge_dropout=1.5), dict(sigma_at_1m=-1.0), dict(depth_range_m=(1.0, 0.5)), dict(edge_width_px=0)):
        with pytest.raises(ValueError):
            DepthNoiseConfig(**bad)
    with pytest.raises(ValueError, match="unknown DepthNoiseConfig fields"):
        DepthNoiseConfig.from_dict({"sigma": 0.1})
    with pytest.raises(ValueError, match="depth_noise must be None or a DepthNoiseConfig"):
        WorldConfig(depth_noise="d435")
