"""Detection scores of the depth proposals, visible fractions, and the evaluation / generation
CLIs' --depth-noise and --detection."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from scenegen_core.evaluation import evaluate
from scenegen_core.evaluation.detection import DetectionConfig, score_detection, summarize_detection
from scenegen_core.world import generate
from scenegen_core.world.dataset import load_config, load_scene
from scenegen_core.world.ground_truth import visible_fractions
from scenegen_core.world.render import render_instance_ids
from scenegen_core.world.scene import WorldConfig, generate_scene
from scenegen_core.world.sensor import DepthNoiseConfig


def box_mask(rows: slice, cols: slice) -> np.ndarray:
    mask = np.zeros((10, 10), bool)
    mask[rows, cols] = True
    return mask


def test_recall_counts_visible_objects_and_precision_every_prediction():
    gt = np.stack([box_mask(slice(0, 4), slice(0, 5)), box_mask(slice(5, 10), slice(0, 4)), box_mask(slice(6, 10), slice(6, 10))])
    pred = np.stack(
        [
            box_mask(slice(0, 4), slice(0, 4)),  # gt 0: IoU 16 / 20 = 0.8
            box_mask(slice(6, 10), slice(6, 9)),  # gt 2: IoU 12 / 16 = 0.75, though gt 2 is barely visible
            box_mask(slice(0, 2), slice(7, 10)),  # nothing there
        ]
    )
    row = score_detection("s", pred, gt, np.array([1.0, 0.5, 0.1]))
    assert (row.num_eligible, row.num_recalled, row.num_predicted, row.num_true_positive) == (2, 1, 3, 2)
    np.testing.assert_allclose(row.matched_iou, [0.8, np.nan, 0.75])
    summary = summarize_detection([row, score_detection("t", pred[:0], gt[:1], np.array([0.3]))])
    assert summary.recall == pytest.approx(1 / 3) and summary.precision == pytest.approx(2 / 3)
    assert summary.mean_iou == pytest.approx(0.775) and summary.objects == 4
    strict = score_detection("s", pred, gt, np.array([1.0, 0.5, 0.1]), DetectionConfig(min_iou=0.78))
    assert strict.num_true_positive == 1
    with pytest.raises(ValueError, match="unambiguous"):
        DetectionConfig(min_iou=0.3)


def test_visible_fraction_counts_occlusion_and_the_image_border():
    config = WorldConfig(image_width=64, image_height=64, segments=24, max_objects=4)
    cut_off_whole = whole_and_shown = 0
    for seed in range(1_100_000, 1_100_012):
        scene = generate_scene(seed, config)
        fractions = visible_fractions(scene)
        camera, ids = scene.cameras[0], scene.renders[0].instance_ids
        assert np.all((fractions > 0) & (fractions <= 1))
        for i, mesh in enumerate(scene.object_meshes_world()):
            alone = render_instance_ids([mesh], camera.intrinsics, camera.camera_from_world) == 0
            unoccluded = np.array_equal(alone, ids == i)
            on_border = alone[0].any() or alone[-1].any() or alone[:, 0].any() or alone[:, -1].any()
            if unoccluded and not on_border:
                assert fractions[i] == 1.0
                whole_and_shown += 1
            if unoccluded and on_border and fractions[i] < 0.95:
                cut_off_whole += 1  # nothing hides it, yet part of it lies outside the image
    assert whole_and_shown >= 3 and cut_off_whole >= 1


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    """The same two scenes generated without and with the d435 sensor model."""
    root = tmp_path_factory.mktemp("noise")
    common = ["--split", "test", "--count", "2", "--size", "96", "--max-objects", "3"]
    assert generate.main(["--out", str(root / "exact"), *common]) == 0
    assert generate.main(["--out", str(root / "d435"), *common, "--depth-noise", "d435"]) == 0
    return root


def test_generate_records_the_sensor_model_and_views_apply_it(datasets):
    exact, noisy = (load_scene(datasets / name / "test" / "scene_1100000") for name in ("exact", "d435"))
    assert load_config(datasets / "d435" / "test" / "scene_1100000").depth_noise == DepthNoiseConfig()
    assert exact.config.depth_noise is None
    np.testing.assert_array_equal(exact.renders[0].depth, noisy.renders[0].depth)  # stored exact
    np.testing.assert_array_equal(noisy.views()[0].depth, exact.with_depth_noise(DepthNoiseConfig()).views()[0].depth)
    assert not np.array_equal(noisy.views()[0].depth, exact.views()[0].depth)


def read_rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_cli_scores_detection_and_baselines_with_and_without_noise(datasets, tmp_path, capsys):
    def run(data, name, *extra):
        out = tmp_path / name
        args = ["--data", str(datasets / data), "--split", "test", "--points", "300", "--voxel-size", "0.006"]
        assert evaluate.main([*args, "--figures", "0", "--out", str(out), *extra]) == 0
        return out, capsys.readouterr().out

    off, printed = run("d435", "off", "--methods", "box_gt", "--detection", "--depth-noise", "off")
    assert "depth noise: off" in printed.splitlines()[0]
    assert printed.strip().splitlines()[-1].startswith("depth proposals (view 0, mask IoU >= 0.5): recall ")
    rows = read_rows(off / "detection.csv")
    scenes = [r for r in rows if r["row_type"] == "scene"]
    assert len(scenes) == 2 and sum(r["row_type"] == "object" for r in rows) == sum(int(r["num_objects"]) for r in scenes)
    # The noisy dataset as generated and the exact one through --depth-noise d435 are the same views.
    stored, printed = run("d435", "stored", "--methods", "box_gt", "--detection")
    assert "depth noise: as generated" in printed.splitlines()[0]
    applied, _ = run("exact", "applied", "--methods", "box_gt", "--detection", "--depth-noise", "d435")
    for name in ("detection.csv", "results.csv"):
        a, b = read_rows(stored / name), read_rows(applied / name)
        untimed = [[{k: v for k, v in r.items() if k != "seconds"} for r in rows] for rows in (a, b)]
        assert untimed[0] == untimed[1]
    completeness = [
        [float(r["completeness"]) for r in read_rows(out / "results.csv") if r["row_type"] == "object"] for out in (off, stored)
    ]
    assert completeness[0] != completeness[1]  # the box baseline sees the noisy depth
    # Detection alone, and nothing at all.
    only, printed = run("exact", "only", "--methods", "--detection")
    assert "method" not in printed and (only / "detection.csv").is_file()
    with pytest.raises(SystemExit):
        run("exact", "nothing", "--methods")
