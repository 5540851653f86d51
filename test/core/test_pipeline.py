"""The whole pipeline on the untrained embedded default: synthetic RGB-D scenes and real photos."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from scipy.spatial import cKDTree

from scenegen_core.evaluation.metrics import sample_surface
from scenegen_core.pipeline import PipelineConfig, PipelineError, SceneGenPipeline
from scenegen_core.placement import back_project
from scenegen_core.registration import RegistrationConfig
from scenegen_core.types import View
from scenegen_core.world import WorldConfig, generate_scene
from test_checkpoints import weights_root  # noqa: F401  (fixture)

STAGES = ("prepare", "encode", "sample", "decode", "mesh", "place")


@pytest.fixture(scope="module")
def pipeline() -> SceneGenPipeline:
    return SceneGenPipeline(PipelineConfig(steps=2, mesh_max_faces=800))


@pytest.fixture(scope="module")
def scene():
    # The idealised world: separated objects, so depth segmentation finds each one.
    return generate_scene(11, WorldConfig.idealised(min_objects=3, max_objects=3, num_cameras=2, image_width=128, image_height=96))


def _check_object_geometry(result, max_faces):
    for obj in result.objects:
        assert 0 < len(obj.mesh.faces) <= max_faces
        assert obj.mesh.faces.max() < len(obj.mesh.vertices)
        assert np.all(np.abs(obj.mesh.vertices) <= 0.5 + 1e-6), "asset meshes live in [-0.5, 0.5]^3"
        assert np.all(np.isfinite(obj.pose.matrix)) and obj.pose.scale > 0
        assert 0.0 <= obj.score <= 1.0


def _depth_to_surface(result, view) -> list[float]:
    """Per object: median distance (metres) of its depth points to its placed mesh (surface samples)."""
    distances = []
    for obj in result.objects:
        surface = sample_surface(obj.mesh_in_output_frame(), 4000, seed=0)
        points = back_project(view.depth, view.masks[obj.index], view.intrinsics)
        distances.append(float(np.median(cKDTree(surface).query(points)[0])))
    return distances


def test_single_view_rgbd_gives_metric_objects_in_the_camera_frame(pipeline, scene):
    view = scene.views()[0]
    result = pipeline.run([view])
    assert result.metric and result.frame_id == view.frame_id and result.stamp_ns == view.stamp_ns
    assert tuple(t.name for t in result.timings) == STAGES
    assert all(t.seconds >= 0 for t in result.timings)
    assert "embedded default" in result.model_description and "UNTRAINED" not in result.model_description
    areas = view.masks.reshape(len(view.masks), -1).sum(1)
    # Query object first = largest mask; indices refer back to the caller's masks.
    assert [o.index for o in result.objects] == list(np.argsort(-areas, kind="stable"))
    _check_object_geometry(result, 800)
    query = result.objects[0]
    np.testing.assert_allclose(query.pose_relative.matrix, np.eye(4), atol=1e-12)
    # Registration to depth brings each placed surface closer to its own depth points than the
    # centre fit it starts from.
    centre_fit = SceneGenPipeline(dataclasses.replace(pipeline.config, registration=RegistrationConfig(enabled=False)), models=pipeline.models)
    unregistered = centre_fit.run([view])
    assert np.mean(_depth_to_surface(result, view)) < np.mean(_depth_to_surface(unregistered, view))
    # Without registration the similarity maps the mean generated object centre onto the mean
    # observed depth centroid.
    placed_centres, observed = [], []
    for obj in unregistered.objects:
        camera_from_scene = obj.pose.matrix @ np.linalg.inv(obj.pose_relative.matrix)
        lo, hi = obj.mesh.transformed(obj.pose_relative).bounds()
        placed_centres.append(camera_from_scene[:3, :3] @ ((lo + hi) / 2) + camera_from_scene[:3, 3])
        observed.append(np.median(back_project(view.depth, view.masks[obj.index], view.intrinsics), axis=0))
    np.testing.assert_allclose(np.mean(placed_centres, 0), np.mean(observed, 0), atol=1e-6)
    for obj in result.objects:
        colors = obj.mesh.vertex_colors
        assert colors is not None and colors.min() >= 0 and colors.max() <= 1
        box = obj.boxes_per_view[0]
        rows, cols = np.nonzero(view.masks[obj.index])
        np.testing.assert_array_equal(box, [cols.min(), rows.min(), cols.max(), rows.max()])


def test_same_seed_same_scene_and_other_seed_other_scene(pipeline, scene):
    view = scene.views()[0]
    first, second = pipeline.run([view]), pipeline.run([view])
    for a, b in zip(first.objects, second.objects):
        # The generator is bit-exact; registration is not: open3d's ICP sums its normal equations
        # in parallel, in thread order, so poses jitter at ~1e-15 between identical runs.
        np.testing.assert_array_equal(a.mesh.vertices, b.mesh.vertices)
        np.testing.assert_allclose(a.pose.matrix, b.pose.matrix, rtol=0, atol=1e-9)
    other = SceneGenPipeline(dataclasses.replace(pipeline.config, seed=7), models=pipeline.models).run([view])
    assert any(
        not np.allclose(a.pose_relative.matrix, b.pose_relative.matrix) for a, b in zip(first.objects[1:], other.objects[1:])
    )


def test_two_views_are_used_together(pipeline, scene):
    views = scene.views()
    assert all(v.masks.reshape(len(v.masks), -1).any(1).all() for v in views), "scene 11 shows all objects twice"
    multi = pipeline.run(views)
    single = pipeline.run(views[:1])
    assert len(multi.objects) == len(single.objects)
    assert not any(w.startswith("view 1 dropped") for w in multi.warnings)
    for obj in multi.objects:
        for box, view in zip(obj.boxes_per_view, views):
            rows, cols = np.nonzero(view.masks[obj.index])
            np.testing.assert_array_equal(box, [cols.min(), rows.min(), cols.max(), rows.max()])
    assert any(not np.allclose(a.pose_relative.matrix, b.pose_relative.matrix) for a, b in zip(multi.objects[1:], single.objects[1:]))


def test_without_depth_the_result_is_not_metric(pipeline, scene):
    view = dataclasses.replace(scene.views()[0], depth=None)
    result = pipeline.run([view])
    assert not result.metric
    assert result.objects[0].pose.matrix == pytest.approx(np.eye(4))


def test_max_objects_keeps_the_largest_and_says_so(scene):
    capped = SceneGenPipeline(PipelineConfig(steps=1, max_objects=2, mesh_max_faces=300))
    view = scene.views()[0]
    result = capped.run([view])
    areas = view.masks.reshape(len(view.masks), -1).sum(1)
    assert [o.index for o in result.objects] == list(np.argsort(-areas, kind="stable")[:2])
    assert any("max_objects" in w for w in result.warnings)


def test_views_without_masks_are_segmented_from_depth(pipeline, scene):
    truth = scene.views()[0]
    view = dataclasses.replace(truth, masks=None)
    result = pipeline.run([view])
    assert result.timings[0].name == "segment"
    assert len(result.objects) == len(scene.objects)
    _check_object_geometry(result, 800)
    # Every segmented object is one true object: its box is that object's mask box (within 2 px).
    true_boxes = np.stack([[c.min(), r.min(), c.max(), r.max()] for r, c in (np.nonzero(m) for m in truth.masks)])
    for obj in result.objects:
        assert np.abs(true_boxes - obj.boxes_per_view[0]).max(axis=1).min() <= 2


def test_views_without_masks_or_extrinsics_fall_back_to_the_first_view(pipeline, scene):
    first, second = (dataclasses.replace(v, masks=None, camera_from_reference=None) for v in scene.views())
    result = pipeline.run([first, second])
    assert any("view(s) dropped" in w for w in result.warnings)
    assert len(result.objects) == len(scene.objects) and result.objects[0].boxes_per_view.shape == (1, 4)


@pytest.mark.parametrize(
    "fields, message",
    [(dict(min_scale=0.0), "min_scale"), (dict(mesh_max_faces=0), "mesh_max_faces"), (dict(dtype="int8"), "dtype")],
)
def test_bad_pipeline_config_is_rejected(fields, message):
    with pytest.raises(ValueError, match=message):
        PipelineConfig(**fields)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(masks=None, depth=None), "no object masks"),
        (dict(masks=np.zeros((2, 96, 128), bool)), "large enough"),
    ],
)
def test_unusable_input_raises_a_clear_error(pipeline, scene, change, message):
    view = dataclasses.replace(scene.views()[0], **change)
    with pytest.raises(PipelineError, match=message):
        pipeline.run([view])


def test_views_with_different_object_counts_are_rejected(pipeline, scene):
    first, second = scene.views()
    second = dataclasses.replace(second, masks=second.masks[:1])
    with pytest.raises(PipelineError, match="same number of object masks"):
        pipeline.run([first, second])
    with pytest.raises(PipelineError, match="no views"):
        pipeline.run([])


def test_real_photo_with_masks(pipeline, samples_dir):
    """A real 3D-FUTURE render (no depth): every object of the official demo gets a mesh."""
    folder = samples_dir / "0005153"
    rgb = np.asarray(Image.open(folder / "scene.jpg").convert("RGB").resize((300, 300)))
    mask_files = sorted(folder.glob("*_mask.png"))
    masks = np.stack([np.asarray(Image.open(f).convert("L").resize((300, 300), Image.NEAREST)) > 127 for f in mask_files])
    result = pipeline.run([View(rgb=rgb, masks=masks)])
    assert len(result.objects) == len(mask_files) == 4
    assert not result.metric
    _check_object_geometry(result, 800)


def test_weights_in_the_official_layout_drive_the_pipeline(weights_root, scene):
    """Tiny weights written in the official directory layout, loaded strictly, in fp32 on CPU."""
    from test_checkpoints import dino_config, vggt_config

    from scenegen_core.checkpoints import load_scenegen_models

    root, _ = weights_root
    models = load_scenegen_models(root, vggt_config=vggt_config(), dino_config=dino_config(), half_dtype=None)
    loaded = SceneGenPipeline(PipelineConfig(steps=2, mesh_max_faces=500), models=models)
    assert loaded.trained and "official weights" in loaded.description
    result = loaded.run([scene.views()[0]])
    assert len(result.objects) == len(scene.objects) and result.metric
    assert "UNTRAINED" not in result.model_description


def test_untrained_network_only_on_request(scene):
    untrained = SceneGenPipeline(PipelineConfig(steps=1, untrained=True, mesh_max_faces=300))
    assert not untrained.trained and "UNTRAINED" in untrained.description
    assert SceneGenPipeline(PipelineConfig(steps=1)).trained


def test_half_precision_torso_on_request(scene):
    """dtype=bf16 builds the flow/decoder torso in bfloat16 (as on GPU) and still runs on CPU."""
    pipeline = SceneGenPipeline(PipelineConfig(steps=1, dtype="bf16", mesh_max_faces=300))
    assert pipeline.models.ss_flow.config.compute_dtype == torch.bfloat16
    result = pipeline.run([scene.views()[0]])
    assert len(result.objects) == len(scene.objects)
