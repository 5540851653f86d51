"""The evaluation CLI end to end on two written scenes (real baselines, metrics and figures), and
how it scores bad predictions and poses."""

from __future__ import annotations

import csv
import dataclasses
import math

import numpy as np
import open3d as o3d
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
from scenegen_core.placement import compose
from scenegen_core.types import Mesh, Pose
from scenegen_core.world.dataset import list_scenes, load_scene, write_scene
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
    assert "500 points/object, ICP <= 200 iterations, tolerance 0.0001, 8192 points matched" in printed.splitlines()[0]
    table_lines = printed.strip().splitlines()[1 : 3 + len(METHODS)]
    assert table_lines[0].split()[:5] == ["method", "detected", "failed", "centroid_mm", "vol_IoU"]
    assert table_lines[0].split()[-5:] == ["IoU-B", "trans_err", "rot_deg", "scale_ratio", "pred_ms"]
    assert [line.split()[0] for line in table_lines[2:]] == METHODS
    assert "±" in table_lines[2]
    assert printed.strip().splitlines()[-1] == "failures: none"
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
        assert row["failed"] == "False" and row["failure"] == ""
        # The baselines report no poses: no relative-pose errors.
        assert np.isnan(float(row["translation_error"])) and np.isnan(float(row["scale_ratio"]))
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
        # The pose maps the canonical asset box onto the posed mesh: mapped back, every vertex
        # lies in [-0.5, 0.5]^3.
        canonical = Pose.from_matrix(np.linalg.inv(p.pose.matrix)).apply(p.mesh.vertices)
        assert p.pose.scale > 0 and np.all(np.abs(canonical) <= 0.5 + 1e-4)
    # Without depth the pipeline cannot be metric: the adapter refuses to score it in metres.
    with pytest.raises(ValueError, match="not metric"):
        pipeline_method(pipeline)([dataclasses.replace(v, depth=None) for v in views])


def test_cli_scores_the_embedded_scenegen_default(data_dir, tmp_path, capsys):
    out = tmp_path / "eval_scenegen"
    code = main(
        ["--data", str(data_dir), "--split", "test", "--methods", "box_gt", "--points", "300",
         "--voxel-size", "0.01", "--figures", "0", "--limit", "1", "--scenegen-model", "default",
         "--scenegen-steps", "5", "--scenegen-rescale-t", "2", "--scenegen-cache-interval", "2", "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "embedded default" in printed.splitlines()[0] and "UNTRAINED" not in printed.splitlines()[0]
    # 5 steps, interval 2: step 3 reuses the cache; steps 0-3 are guided (2 passes), the last is not.
    assert "5 steps, rescale_t 2.0, cache interval 2 (7 flow passes)" in printed.splitlines()[0]
    rows = [line.split() for line in printed.strip().splitlines() if line.split()[:1] in (["box_gt"], ["scenegen"])]
    assert [row[0] for row in rows] == ["box_gt", "scenegen"]
    detected, failed = float(rows[1][1]), float(rows[1][4])
    assert detected + failed == pytest.approx(1.0), "SceneGen gets the true masks: every object has a prediction"


def test_a_scene_the_pipeline_rejects_counts_as_all_failed():
    from scenegen_core.evaluation.evaluate import pipeline_method
    from scenegen_core.pipeline import PipelineConfig, SceneGenPipeline

    truth = SceneTruth.from_scene("rejected", generate_scene(1_100_000, SMALL), FAST.robotics)
    scenegen = pipeline_method(SceneGenPipeline(PipelineConfig(steps=1)))

    def without_masks_or_depth(views):
        return scenegen([dataclasses.replace(v, masks=None, depth=None) for v in views])

    result = evaluate_scene(truth, "scenegen", without_masks_or_depth, FAST)
    assert result.scene_row.scene_failure.startswith("PipelineError: views carry no object masks")
    assert result.scene_row.num_predicted == 0 and result.scene_row.num_matched == 0
    assert result.scene_row.scene_fscore == 0.0 and np.isnan(result.scene_row.scene_cd)
    for row in result.object_rows:
        assert row.failed and not row.detected and row.failure == result.scene_row.scene_failure
        assert row.volume_iou == 0.0 and row.object_fscore == 0.0 and row.completeness == 0.0


def test_scenegen_with_several_workers_is_refused(data_dir, tmp_path):
    with pytest.raises(SystemExit):
        main(["--data", str(data_dir), "--split", "test", "--scenegen-model", "default", "--workers", "2",
              "--out", str(tmp_path / "x")])  # fmt: skip


# ----------------------------------------------------------------------------- bad predictions


def cube(centre, side: float) -> Mesh:
    box = o3d.geometry.TriangleMesh.create_box(side, side, side)
    return Mesh(np.asarray(box.vertices) - side / 2 + np.asarray(centre), np.asarray(box.triangles))


def inverse(pose: Pose) -> Pose:
    return Pose.from_matrix(np.linalg.inv(pose.matrix))


def truth_methods(data_dir) -> dict[str, evaluate.Method]:
    """Methods that return the true meshes and poses (known correspondence), with one prediction
    (object `k`) changed into a bad one, or that fail on the whole scene."""
    truths = {}
    for scene_dir in list_scenes(data_dir / "test"):
        truth = SceneTruth.from_scene(scene_dir.name, load_scene(scene_dir), FAST.robotics)
        truths[truth.views[0].rgb.tobytes()] = truth

    def with_object(k: int, change):
        def method(views):
            truth = truths[views[0].rgb.tobytes()]
            predictions = [
                PredictedObject(mesh, views[0].masks[g], g, pose=truth.gt_poses[g])
                for g, mesh in enumerate(truth.gt_meshes)
            ]
            predictions[k] = change(predictions[k])
            return predictions

        return method

    def nan_vertex(p):
        vertices = p.mesh.vertices.copy()
        vertices[0, 1] = np.nan
        return dataclasses.replace(p, mesh=Mesh(vertices, p.mesh.faces))

    def turned_and_scaled(p):
        # 90 deg about the canonical z axis and 1.25 x about the canonical centre: relative
        # rotation error 90 deg, scale ratio 1.25, translation error 0 (the centre stays).
        local = Pose(rotation_wxyz=[math.cos(math.pi / 4), 0.0, 0.0, math.sin(math.pi / 4)], scale=1.25)
        pose = compose(p.pose, local)
        return dataclasses.replace(p, mesh=p.mesh.transformed(compose(pose, inverse(p.pose))), pose=pose)

    def moved_far(p):
        return dataclasses.replace(p, mesh=p.mesh.transformed(Pose(translation=[10.0, 0, 0])))

    def negative_scale(p):
        return dataclasses.replace(p, pose=Pose(p.pose.translation, p.pose.rotation_wxyz, -0.1))

    def raises(views):
        raise RuntimeError("model\nexploded")

    return {
        "perfect": with_object(0, lambda p: p),
        "posed": with_object(1, turned_and_scaled),
        "huge": with_object(0, lambda p: dataclasses.replace(p, mesh=cube(p.mesh.vertices.mean(0), 2.0))),
        "empty": with_object(1, lambda p: dataclasses.replace(p, mesh=Mesh(np.zeros((0, 3)), np.zeros((0, 3))))),
        "nan": with_object(0, nan_vertex),
        "far": with_object(0, moved_far),
        "bad_scale": with_object(1, negative_scale),
        "raises": raises,
        "malformed": lambda views: [None],
    }


# Per method: the object whose prediction is bad and the reason the CSV must give.
BAD_OBJECT = {
    "huge": (0, "voxels of 0.005 m (> 30000000); extent [2.0, 2.0, 2.0] m"),  # the crash
    "empty": (1, "empty mesh"),
    "nan": (0, "non-finite vertices (1 of "),
    "far": (0, "m outside the true objects' box (at most 0.5 m)"),
    "bad_scale": (1, "pose scale -0.1 is not positive"),
}
SCENE_FAILURE = {
    "raises": "RuntimeError: model exploded",
    "malformed": "prediction 0 is a NoneType, not a PredictedObject",
}


def test_cli_scores_bad_predictions_as_failures_and_goes_on(data_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(evaluate, "METHODS", dict(evaluate.METHODS))
    methods = truth_methods(data_dir)
    for name, method in methods.items():
        register_method(name, method)
    out = tmp_path / "eval_bad"
    code = main(
        ["--data", str(data_dir), "--split", "test", "--methods", *methods, "--points", "300",
         "--voxel-size", "0.005", "--figures", "1", "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    with open(out / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    objects = {m: [r for r in rows if r["row_type"] == "object" and r["method"] == m] for m in methods}
    scenes = {m: [r for r in rows if r["row_type"] == "scene" and r["method"] == m] for m in methods}
    total = len(objects["perfect"])
    for row in objects["perfect"]:
        assert row["failed"] == "False" and float(row["volume_iou"]) == pytest.approx(1.0)

    for method, (bad, reason) in BAD_OBJECT.items():
        for row in objects[method]:
            if int(row["object_index"]) == bad:
                assert row["failed"] == "True" and row["detected"] == "False", method
                assert reason in row["failure"], (method, row["failure"])
                # Scored like a missed object.
                assert float(row["volume_iou"]) == 0.0 and float(row["object_fscore"]) == 0.0
                assert float(row["iou_bbox"]) == 0.0 and np.isnan(float(row["object_cd"]))
                assert np.isnan(float(row["centroid_error_m"])) and np.isnan(float(row["translation_error"]))
            else:
                assert row["failed"] == "False" and row["failure"] == "", method
                assert float(row["volume_iou"]) == pytest.approx(1.0), method
        for row in scenes[method]:
            assert int(row["num_failed"]) == 1 and row["scene_failure"] == ""
            assert int(row["num_matched"]) == int(row["num_objects"]) - 1
        # The table's failed column: the share of true objects that failed (one per scene).
        table_row = next(line.split() for line in printed.splitlines() if line.split()[:1] == [method])
        assert float(table_row[4]) == pytest.approx(2 / total, abs=1e-3), method
        report = f"  {method}: 2 of {total} objects failed; 2 unusable predictions; method failed on 0 of 2 scenes"
        assert report in printed

    for method, reason in SCENE_FAILURE.items():
        assert all(row["failed"] == "True" and row["failure"] == reason for row in objects[method])
        assert all(float(row["volume_iou"]) == 0.0 and float(row["completeness"]) == 0.0 for row in objects[method])
        for row in scenes[method]:
            assert row["scene_failure"] == reason and int(row["num_predicted"]) == 0
            assert float(row["scene_fscore"]) == 0.0 and np.isnan(float(row["scene_cd"]))
        table_row = next(line.split() for line in printed.splitlines() if line.split()[:1] == [method])
        assert float(table_row[4]) == 1.0
        report = f"  {method}: {total} of {total} objects failed; 0 unusable predictions; method failed on 2 of 2 scenes"
        assert report in printed
    assert "perfect:" not in printed and "posed:" not in printed  # no failures, no report line
    # Every method got its picture of the first scene, failures included.
    assert len(list((out / "figures").iterdir())) == len(methods)


def test_cli_reports_relative_pose_errors(data_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(evaluate, "METHODS", dict(evaluate.METHODS))
    methods = truth_methods(data_dir)
    for name in ("perfect", "posed", "huge", "empty"):
        register_method(name, methods[name])
    out = tmp_path / "eval_poses"
    assert main(
        ["--data", str(data_dir), "--split", "test", "--methods", "perfect", "posed", "huge", "empty",
         "--points", "300", "--voxel-size", "0.005", "--figures", "0", "--out", str(out)]
    ) == 0  # fmt: skip
    with open(out / "results.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["row_type"] == "object"]
    errors = {
        (r["method"], r["scene"], int(r["object_index"])): tuple(
            float(r[f]) for f in ("translation_error", "rotation_error_deg", "scale_ratio")
        )
        for r in rows
    }
    for (method, scene, k), (translation, rotation, ratio) in errors.items():
        if k == 0 or method == "huge":
            # The query's own relative pose is the identity by construction; without a usable
            # query prediction ("huge" breaks object 0 = the query) there is no reference.
            assert np.isnan([translation, rotation, ratio]).all(), (method, k)
        elif method == "posed" and k == 1:
            assert (translation, rotation, ratio) == pytest.approx((0.0, 90.0, 1.25), abs=1e-6)
        elif method == "empty" and k == 1:
            assert np.isnan([translation, rotation, ratio]).all()  # failed: no pose
        else:
            assert (translation, rotation, ratio) == pytest.approx((0.0, 0.0, 1.0), abs=1e-6), (method, k)
