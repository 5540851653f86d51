"""The evaluation CLI end to end on two written scenes (real baselines, metrics and figures)."""

from __future__ import annotations

import csv
import dataclasses

import numpy as np
import pytest
from PIL import Image

from scenegen_core.evaluation import evaluate
from scenegen_core.evaluation.baselines import PredictedObject
from scenegen_core.evaluation.evaluate import (
    CSV_COLUMNS,
    EvaluationConfig,
    SceneTruth,
    evaluate_scene,
    main,
    register_method,
)
from scenegen_core.evaluation.metrics import ProtocolConfig, RoboticsConfig
from scenegen_core.world.dataset import write_scene
from scenegen_core.world.ground_truth import compute_ground_truth
from scenegen_core.world.scene import WorldConfig, generate_scene

SMALL = WorldConfig(min_objects=2, max_objects=3, image_width=128, image_height=128)
METHODS = ["hull_gt", "box_gt", "hull_pred", "box_pred"]
FAST = EvaluationConfig(protocol=ProtocolConfig(num_points=500), robotics=RoboticsConfig(voxel_size=0.005))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("scenes")
    for seed in (1_100_000, 1_100_001):
        scene = generate_scene(seed, SMALL)
        write_scene(scene, root / "test", compute_ground_truth(scene, resolution=8))
    return root


def test_cli_writes_table_csv_and_figures(data_dir, tmp_path, capsys):
    out = tmp_path / "eval"
    code = main(
        ["--data", str(data_dir), "--split", "test", "--methods", *METHODS, "--points", "500",
         "--voxel-size", "0.005", "--figures", "1", "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert printed.startswith("2 scenes,")
    table_lines = printed.strip().splitlines()[1:]
    assert table_lines[0].split()[:4] == ["method", "detected", "centroid_mm", "vol_IoU"]
    assert [line.split()[0] for line in table_lines[2:]] == METHODS
    assert "±" in table_lines[2]
    assert (out / "table.txt").read_text().strip() == printed.strip()

    with open(out / "results.csv", newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames) == tuple(CSV_COLUMNS)
        assert len(set(reader.fieldnames)) == len(reader.fieldnames)
        rows = list(reader)
    objects = [r for r in rows if r["row_type"] == "object"]
    scenes = [r for r in rows if r["row_type"] == "scene"]
    summary = [r for r in rows if r["row_type"] == "summary"]
    num_objects = sum(int(r["num_objects"]) for r in scenes if r["method"] == "hull_gt")
    assert len(objects) == num_objects * len(METHODS)
    assert len(scenes) == 2 * len(METHODS)
    assert len(summary) == 3 * len(METHODS)
    # With true masks every object is predicted and matched by its index.
    for row in scenes:
        if row["method"].endswith("_gt"):
            assert row["num_matched"] == row["num_objects"] == row["num_predicted"]
    for row in objects:
        assert 0.0 <= float(row["completeness"]) <= 1.0
        assert 0.0 <= float(row["object_fscore"]) <= 1.0
    # The summary mean is the mean of the per-object values.
    hull_completeness = [float(r["completeness"]) for r in objects if r["method"] == "hull_gt"]
    mean_row = next(r for r in summary if r["method"] == "hull_gt" and r["statistic"] == "mean")
    assert float(mean_row["completeness"]) == pytest.approx(np.mean(hull_completeness))
    box_mean = next(r for r in summary if r["method"] == "box_gt" and r["statistic"] == "mean")
    assert float(box_mean["completeness"]) > float(mean_row["completeness"])

    figures = sorted(p.name for p in (out / "figures").iterdir())
    assert figures == sorted(f"scene_1100000_{m}.png" for m in METHODS)
    picture = np.asarray(Image.open(out / "figures" / "scene_1100000_box_gt.png"))
    assert picture.shape == (2 * 128 + 16, 3 * 128, 3)


def test_cli_rejects_unknown_methods_and_empty_folders(data_dir, tmp_path):
    with pytest.raises(SystemExit):
        main(["--data", str(data_dir), "--split", "test", "--methods", "nope", "--out", str(tmp_path)])
    with pytest.raises(SystemExit):
        main(["--data", str(tmp_path), "--out", str(tmp_path / "o")])


def test_a_registered_method_is_scored_like_the_baselines(monkeypatch):
    """A method returning the true meshes (as a perfect pipeline would) gets perfect robotics scores."""
    scene = generate_scene(1_100_000, SMALL)
    truth = SceneTruth.from_scene("perfect", scene, FAST.robotics)

    def perfect(views):
        return [PredictedObject(mesh, views[0].masks[k]) for k, mesh in enumerate(truth.gt_meshes)]

    monkeypatch.setattr(evaluate, "METHODS", dict(evaluate.METHODS))
    register_method("perfect", perfect)
    with pytest.raises(ValueError, match="already registered"):
        register_method("perfect", perfect)
    # Object-level scores normalise each object to [-0.95, 0.95]^3: 2000 samples keep the sample
    # spacing (~0.1) at the F-score threshold, so a perfect shape scores close to 1.
    dense = dataclasses.replace(FAST, protocol=ProtocolConfig(num_points=2000))
    result = evaluate_scene(truth, "perfect", evaluate.METHODS["perfect"], dense)
    # Matched through mask IoU (no gt_index given), all objects found.
    assert result.scene_row.num_matched == len(scene.objects)
    assert result.pred_gt_index == tuple(range(len(scene.objects)))
    for row in result.object_rows:
        assert row.volume_iou == pytest.approx(1.0) and row.completeness == pytest.approx(1.0)
        assert row.centroid_error_m == pytest.approx(0.0, abs=1e-12)
        assert row.false_occupancy_m3 == 0.0
        assert row.object_fscore > 0.9 and row.iou_bbox > 0.9
    assert result.scene_row.scene_fscore > 0.95
    # Dropping a prediction leaves that object missed, not silently matched.
    dropped = evaluate_scene(truth, "perfect", lambda views: perfect(views)[1:], FAST)
    missed = dropped.object_rows[0]
    assert not missed.detected and missed.volume_iou == 0.0 and np.isnan(missed.centroid_error_m)
    assert dataclasses.asdict(dropped.scene_row)["num_matched"] == len(scene.objects) - 1


def test_the_scenegen_pipeline_plugs_in_as_a_method():
    """The real (untrained, tiny) pipeline runs through the adapter; only the wiring is checked
    here, its random-weight geometry is meaningless."""
    from scenegen_core.evaluation.evaluate import pipeline_method
    from scenegen_core.pipeline import PipelineConfig, SceneGenPipeline

    scene = generate_scene(1_100_000, SMALL)
    views = scene.views()
    pipeline = SceneGenPipeline(PipelineConfig(steps=1))
    predictions = pipeline_method(pipeline)(views)
    assert sorted(p.gt_index for p in predictions) == list(range(len(scene.objects)))
    for p in predictions:
        assert np.array_equal(p.mask, views[0].masks[p.gt_index])
        assert not p.mesh.is_empty
    # Without depth the pipeline cannot be metric: the adapter refuses to score it in metres.
    with pytest.raises(ValueError, match="not metric"):
        pipeline_method(pipeline)([dataclasses.replace(v, depth=None) for v in views])


def test_cli_scores_the_embedded_scenegen_default(data_dir, tmp_path, capsys):
    out = tmp_path / "eval_scenegen"
    code = main(
        ["--data", str(data_dir), "--split", "test", "--methods", "box_gt", "--points", "300",
         "--voxel-size", "0.01", "--figures", "0", "--limit", "1", "--scenegen-model", "default",
         "--scenegen-steps", "1", "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "UNTRAINED" in printed.splitlines()[0]
    rows = [line.split() for line in printed.strip().splitlines() if line.split()[:1] in (["box_gt"], ["scenegen"])]
    assert [row[0] for row in rows] == ["box_gt", "scenegen"]
    detected = float(rows[1][1])
    assert detected == 1.0, "SceneGen gets the true masks: every object has a prediction"


def test_a_scene_the_pipeline_rejects_counts_as_all_missed():
    from scenegen_core.evaluation.evaluate import pipeline_method
    from scenegen_core.pipeline import PipelineConfig, SceneGenPipeline

    views = generate_scene(1_100_000, SMALL).views()
    unusable = [dataclasses.replace(v, masks=None, depth=None) for v in views]
    assert pipeline_method(SceneGenPipeline(PipelineConfig(steps=1)))(unusable) == []


def test_scenegen_with_several_workers_is_refused(data_dir, tmp_path):
    with pytest.raises(SystemExit):
        main(["--data", str(data_dir), "--split", "test", "--scenegen-model", "default", "--workers", "2",
              "--out", str(tmp_path / "x")])  # fmt: skip
