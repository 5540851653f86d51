"""Evaluate methods on synthetic scenes: one table, one CSV, pictures.

    python -m scenegen_core.evaluation.evaluate --data DIR --methods hull_gt box_gt hull_pred box_pred \
        [--limit N] [--figures N] [--points 10240] [--icp-max-points 8192] [--voxel-size 0.0025] \
        [--depth-noise off|d435] [--detection] [--workers 1] --out OUTDIR

DIR holds scene folders (`scenegen_core.world.dataset` format), directly or under DIR/<--split>.
Every method sees camera 0..K-1 of a scene as `View`s (with the true masks; methods named
``*_pred`` ignore them) and returns `PredictedObject`s in camera 0's optical frame, metres.
Predictions are matched to the truth by their known index, else by Hungarian matching on view-0
mask IoU (>= --min-mask-iou). Scores: the SceneGen protocol as upstream runs it
(`metrics.scene_protocol_scores`: scene CD / F-score after normalisation and ICP, object CD /
F-score on the unregistered samples, IoU-B), relative-pose errors (`metrics.relative_pose_errors`:
translation / scene scale, rotation in degrees, scale ratio, against the world's true poses
relative to the query object; NaN for methods without poses, e.g. the baselines) and the
robotics metrics (`metrics.robotics_scores`, metres, camera frame).

Missed and failed objects. A true object is *missed* when no prediction matches it. It has
*failed* when the prediction matched to it cannot be scored, or when the method failed on the
whole scene; the run goes on either way. Failures, with the reason written to the CSV:

* scene: the method raised an exception (``Type: message``), or returned something other than
  `PredictedObject`s with [H, W] masks and distinct in-range gt_index values. Every true object
  of the scene fails (CSV: scene_failure on the scene row, failure on each object row);
* prediction: its mesh is empty, has non-finite vertices or zero area (`metrics.mesh_defect`),
  its pose has a non-positive scale, it reaches more than EvaluationConfig.region_margin_m
  outside the box of the true objects, or its box needs more voxels than
  RoboticsConfig.max_cells_per_mesh (e.g. a 2 m mesh on the 4 mm lattice). The prediction is
  dropped (counted in num_failed on the scene row); the true object it matched (by gt_index or
  mask IoU, as any prediction) fails with that reason.

A failed object scores like a missed one: volumetric IoU 0, object F-score 0, IoU-B 0; centroid
error, object CD, false occupancy and the pose errors are NaN (undefined: left out of those
means, which is why the detected and failed rates stand beside them); its completeness is what
the scene's other predictions cover of it. Dropped predictions are left out of the scene's point
sets and voxel unions, so scene CD / F-score and completeness pay for the object as for a missed
one (scene CD is NaN and scene F-score 0 when nothing usable is left). The official protocol
instead drops a scene whose evaluation raises from its means; here it counts.

Depth noise. ``--depth-noise NAME`` evaluates every scene through that depth sensor model
(`scenegen_core.world.sensor`; "off" = the exact rendered depth), whatever the dataset was
generated with; without the flag each scene's own ``WorldConfig.depth_noise`` applies (exact
depth unless it was generated with ``generate --depth-noise``). The stored renders are always
exact and the noise is applied when the views are produced, deterministically from the scene
seed, so one dataset gives paired runs with and without noise.

Detection. ``--detection`` also scores the depth proposals (`depth_proposals.segment_depth`, the
masks the pipeline uses when none are given) as class-agnostic detection in view 0
(`detection.py`: recall at mask IoU >= 0.5 over the objects >= 20 % visible, precision), on the
same views as the methods; ``--methods`` may then be empty.

Outputs: the table (methods x metrics, mean ± std; "failed" = share of true objects that failed)
followed by failure counts per method, on stdout and in OUTDIR/table.txt, OUTDIR/results.csv
(row_type object / scene / summary), OUTDIR/figures/<scene>_<method>.png for the first
--figures scenes (usable predictions only); with --detection the detection line ends the table
and OUTDIR/detection.csv holds one row per true object (scene, object, visible fraction,
matched IoU) and one per scene (counts).

Adding a method: `register_method(name, callable)` where the callable maps
``Sequence[View] -> list[PredictedObject]`` (see `baselines.PredictedObject`); for the SceneGen
pipeline: ``register_method("scenegen_gt", pipeline_method(SceneGenPipeline(config)))``.
"""

from __future__ import annotations

import argparse
import csv
import functools
import math
import multiprocessing
import pathlib
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
from PIL import Image

from scenegen_core.evaluation.baselines import PredictedObject, box_baseline, hull_baseline
from scenegen_core.evaluation.detection import (
    DetectionConfig,
    SceneDetection,
    detect_scene,
    format_detection,
    summarize_detection,
)
from scenegen_core.segmentation.depth_proposals import match_masks
from scenegen_core.evaluation.metrics import (
    ProtocolConfig,
    RoboticsConfig,
    VoxelBlock,
    check_pairs,
    mesh_defect,
    relative_pose_errors,
    robotics_scores,
    scene_protocol_scores,
    voxelize,
)
from scenegen_core.evaluation.visualization import scene_figure
from scenegen_core.types import Mesh, Pose, View
from scenegen_core.world.dataset import list_scenes, load_scene
from scenegen_core.world.ground_truth import world_from_canonical
from scenegen_core.world.scene import SyntheticScene
from scenegen_core.world.sensor import DEPTH_NOISE_PRESETS, depth_noise_preset
from scenegen_core.world.transforms import transform_points

if TYPE_CHECKING:  # the pipeline pulls in torch; the baselines do not need it
    from scenegen_core.pipeline import ScenePipeline

Method = Callable[[Sequence[View]], list[PredictedObject]]

METHODS: dict[str, Method] = {
    "hull_gt": functools.partial(hull_baseline, use_gt_masks=True),
    "box_gt": functools.partial(box_baseline, use_gt_masks=True),
    "hull_pred": functools.partial(hull_baseline, use_gt_masks=False),
    "box_pred": functools.partial(box_baseline, use_gt_masks=False),
}


def register_method(name: str, method: Method) -> None:
    """Make `method` available to `evaluate_scene` / the CLI under `name` (must be new)."""
    if name in METHODS:
        raise ValueError(f"method {name!r} is already registered")
    METHODS[name] = method


def pipeline_method(pipeline: "ScenePipeline") -> Method:
    """Wrap a SceneGen pipeline as a method: it is given the true masks of every view.

    Each `SceneObject` becomes a `PredictedObject` with its mesh posed in the result frame (which
    must be metric and camera 0's optical frame), gt_index = SceneObject.index (the position of
    its mask in the views) and pose = SceneObject.pose (canonical asset -> camera 0, metres).
    Every object is passed on, an empty mesh included: the evaluation scores it as a failure.
    A scene the pipeline rejects (PipelineError) or cannot place in metres raises, which the
    evaluation records as the method's failure on that scene. Note: the robotics metrics need
    closed meshes.
    """

    def run(views: Sequence[View]) -> list[PredictedObject]:
        result = pipeline.run(views)
        if not result.metric:
            raise ValueError(f"pipeline result is not metric ({result.model_description}); cannot score it in metres")
        if result.frame_id != views[0].frame_id:
            raise ValueError(f"pipeline result is in {result.frame_id!r}, expected camera 0's {views[0].frame_id!r}")
        return [
            PredictedObject(obj.mesh_in_output_frame(), views[0].masks[obj.index], obj.index, pose=obj.pose)
            for obj in result.objects
        ]

    return run


@dataclass(frozen=True)
class EvaluationConfig:
    """protocol: SceneGen protocol settings. robotics: voxel lattice settings. min_mask_iou:
    smallest view-0 mask IoU for a prediction to count as the true object. region_margin_m: a
    prediction reaching further than this (metres) outside the axis-aligned box of the true
    objects (camera 0 frame) fails; this bounds the voxel union of a scene's predictions (its
    memory) and no tabletop prediction needs more."""

    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)
    robotics: RoboticsConfig = field(default_factory=RoboticsConfig)
    min_mask_iou: float = 0.25
    region_margin_m: float = 0.5

    def __post_init__(self) -> None:
        if not self.region_margin_m >= 0:
            raise ValueError(f"region_margin_m must be >= 0, got {self.region_margin_m}")


@dataclass(frozen=True)
class ObjectRow:
    """Scores of one true object under one method (NaN = undefined, e.g. missed or failed); metres.

    detected: a usable prediction was matched to it. failed / failure: its matched prediction
    could not be scored, or the method failed on the scene, and why ("" when not failed).
    translation_error (/ scene scale), rotation_error_deg, scale_ratio: relative-pose errors
    (`metrics.RelativePoseError`).
    """

    scene: str
    method: str
    object_index: int
    label: str
    detected: bool
    failed: bool
    failure: str
    centroid_error_m: float
    volume_iou: float
    completeness: float
    false_occupancy_m3: float
    false_occupancy_fraction: float
    object_cd: float
    object_fscore: float
    iou_bbox: float
    translation_error: float
    rotation_error_deg: float
    scale_ratio: float


@dataclass(frozen=True)
class SceneRow:
    """Scene-level scores of one method; seconds = wall time of the method's prediction.

    num_predicted: predictions returned; num_failed: of those, dropped as unusable; num_matched:
    true objects with a usable matched prediction. scene_failure: why the method failed on the
    whole scene ("" when it did not).
    """

    scene: str
    method: str
    num_objects: int
    num_predicted: int
    num_matched: int
    num_failed: int
    seconds: float
    scene_cd: float
    scene_fscore: float
    scene_completeness: float
    scene_false_occupancy_m3: float
    scene_false_occupancy_fraction: float
    scene_failure: str


@dataclass(frozen=True)
class SceneEvaluation:
    """Rows plus what the figure needs: every prediction returned, its matched true index (or
    None) and why it was unusable ("" when usable)."""

    scene_row: SceneRow
    object_rows: tuple[ObjectRow, ...]
    predictions: tuple[PredictedObject, ...]
    pred_gt_index: tuple[int | None, ...]
    pred_failure: tuple[str, ...]


def gt_meshes_in_camera(scene: SyntheticScene, camera: int = 0) -> list[Mesh]:
    """True object meshes in camera `camera`'s optical frame, metres, object order."""
    camera_from_world = scene.cameras[camera].camera_from_world
    return [Mesh(transform_points(camera_from_world, m.vertices), m.faces) for m in scene.object_meshes_world()]


def match_predictions(
    predictions: Sequence[PredictedObject], gt_masks: np.ndarray, min_mask_iou: float
) -> list[tuple[int, int]]:
    """(pred index, gt index) pairs: the known index when every prediction has one, else Hungarian on mask IoU."""
    if not predictions:
        return []
    if all(p.gt_index is not None for p in predictions):
        pairs = [(i, int(p.gt_index)) for i, p in enumerate(predictions)]
        check_pairs(pairs, len(predictions), len(gt_masks))
        return pairs
    masks = np.stack([np.asarray(p.mask, dtype=bool) for p in predictions])
    return list(match_masks(masks, gt_masks, min_mask_iou).pairs)


def output_problem(predictions: Sequence[object], views: Sequence[View]) -> str | None:
    """Why a method's output cannot be interpreted at all, or None when it can.

    Needed: `PredictedObject`s whose masks have view 0's [H, W] shape, whose gt_index is None or
    an int in [0, number of true masks), no gt_index twice, and whose pose is None or a `Pose`.
    """
    size, count = views[0].size, len(views[0].masks)
    for k, prediction in enumerate(predictions):
        if not isinstance(prediction, PredictedObject):
            return f"prediction {k} is a {type(prediction).__name__}, not a PredictedObject"
        if np.shape(prediction.mask) != size:
            return f"prediction {k} has a mask of shape {np.shape(prediction.mask)}, expected {size}"
        index = prediction.gt_index
        if index is not None and not (isinstance(index, (int, np.integer)) and 0 <= index < count):
            return f"prediction {k} has gt_index {index!r}, expected an int in [0, {count})"
        if prediction.pose is not None and not isinstance(prediction.pose, Pose):
            return f"prediction {k} has a pose of type {type(prediction.pose).__name__}, not a Pose"
    known = [int(p.gt_index) for p in predictions if p.gt_index is not None]
    if len(set(known)) != len(known):
        return f"predictions repeat a gt_index: {sorted(known)}"
    return None


@dataclass(frozen=True)
class PredictionCheck:
    """One prediction checked for scoring: failure is why it is unusable ("" when usable); voxels
    its block on the evaluation lattice (None when unusable)."""

    failure: str
    voxels: VoxelBlock | None


def check_prediction(prediction: PredictedObject, region: np.ndarray, config: EvaluationConfig) -> PredictionCheck:
    """Whether a prediction can be scored (module docstring, "prediction" failures), voxelizing it.

    region: [2, 3] float64 min/max corners of the true objects' box, camera 0 frame, metres.
    """
    defect = mesh_defect(prediction.mesh)
    if defect is not None:
        return PredictionCheck(defect, None)
    if prediction.pose is not None and not prediction.pose.scale > 0:
        return PredictionCheck(f"pose scale {prediction.pose.scale:g} is not positive", None)
    try:  # refuses a mesh box of more than max_cells_per_mesh cells before any ray casting
        voxels = voxelize(prediction.mesh, config.robotics.voxel_size, config.robotics.max_cells_per_mesh)
    except ValueError as error:
        return PredictionCheck(str(error), None)
    lo, hi = prediction.mesh.bounds()
    outside = float(max(np.max(region[0] - lo), np.max(hi - region[1])))
    if outside > config.region_margin_m:
        return PredictionCheck(
            f"mesh reaches {outside:.3g} m outside the true objects' box (at most {config.region_margin_m:g} m); "
            f"extent {np.round(hi - lo, 3).tolist()} m",
            None,
        )
    return PredictionCheck("", voxels)


@dataclass(frozen=True)
class SceneTruth:
    """What every method on one scene is scored against (computed once per scene).

    views: the scene's views (view 0 = reference). gt_meshes: object meshes in camera 0's optical
    frame, metres. gt_voxels: their voxel blocks at the evaluation's voxel size. labels: classes.
    query_index: the query object (relative poses are relative to it). gt_poses: per object, the
    similarity canonical asset box -> camera 0's optical frame (metres; scale = longest side).
    """

    name: str
    views: tuple[View, ...]
    gt_meshes: tuple[Mesh, ...]
    gt_voxels: tuple[VoxelBlock, ...]
    labels: tuple[str, ...]
    query_index: int
    gt_poses: tuple[Pose, ...]

    @property
    def region(self) -> np.ndarray:
        """[2, 3] float64 min/max corners of the true objects' box, camera 0 frame, metres."""
        bounds = np.array([m.bounds() for m in self.gt_meshes])
        return np.stack([bounds[:, 0].min(0), bounds[:, 1].max(0)])

    @classmethod
    def from_scene(cls, name: str, scene: SyntheticScene, config: RoboticsConfig) -> "SceneTruth":
        meshes = tuple(gt_meshes_in_camera(scene))
        camera_from_world = scene.cameras[0].camera_from_world
        return cls(
            name=name,
            views=tuple(scene.views()),
            gt_meshes=meshes,
            gt_voxels=tuple(voxelize(m, config.voxel_size, config.max_cells_per_mesh) for m in meshes),
            labels=tuple(obj.label for obj in scene.objects),
            query_index=scene.query_index,
            gt_poses=tuple(
                Pose.from_matrix(camera_from_world @ world_from_canonical(obj.world_from_object, obj.mesh).matrix)
                for obj in scene.objects
            ),
        )


def _call_method(method: Method, views: Sequence[View]) -> tuple[tuple[PredictedObject, ...], str]:
    """The method's predictions and "" , or no predictions and why the method failed on the scene."""
    try:
        predictions = tuple(method(views))
    except Exception as error:  # any crash of a method is its failure on this scene, not the run's
        return (), " ".join(f"{type(error).__name__}: {error}".split())
    problem = output_problem(predictions, views)
    return ((), problem) if problem else (predictions, "")


def evaluate_scene(
    truth: SceneTruth, method_name: str, method: Method, config: EvaluationConfig = EvaluationConfig()
) -> SceneEvaluation:
    """Run one method on one scene and score it against the truth (camera 0 frame, metres).

    Never raises because of what the method does or returns: failures are scored as the module
    docstring says.
    """
    views, gt_meshes, name = truth.views, truth.gt_meshes, truth.name
    start = time.perf_counter()
    predictions, scene_failure = _call_method(method, views)
    seconds = time.perf_counter() - start
    pairs = match_predictions(predictions, views[0].masks, config.min_mask_iou)
    region = truth.region
    checks = [check_prediction(p, region, config) for p in predictions]
    usable = [i for i, check in enumerate(checks) if not check.failure]
    position = {i: k for k, i in enumerate(usable)}
    usable_pairs = [(position[p], g) for p, g in pairs if p in position]
    failure_of_gt = {g: checks[p].failure for p, g in pairs if p not in position}
    if scene_failure:
        failure_of_gt = {g: scene_failure for g in range(len(gt_meshes))}

    pred_meshes = [predictions[i].mesh for i in usable]
    robotics = robotics_scores(
        pred_meshes, gt_meshes, usable_pairs, config.robotics, truth.gt_voxels, [checks[i].voxels for i in usable]
    )
    protocol = scene_protocol_scores(pred_meshes, gt_meshes, usable_pairs, config.protocol) if usable else None
    protocol_of_gt = {g: k for k, (_, g) in enumerate(usable_pairs)}
    pred_pose_of_gt: list[Pose | None] = [None] * len(gt_meshes)
    for p, g in usable_pairs:
        pred_pose_of_gt[g] = predictions[usable[p]].pose
    pose_errors = relative_pose_errors(pred_pose_of_gt, truth.gt_poses, truth.query_index)

    rows = []
    for g, (label, scores, pose_error) in enumerate(zip(truth.labels, robotics.objects, pose_errors)):
        k = protocol_of_gt.get(g)
        rows.append(
            ObjectRow(
                scene=name,
                method=method_name,
                object_index=g,
                label=label,
                detected=k is not None,
                failed=g in failure_of_gt,
                failure=failure_of_gt.get(g, ""),
                centroid_error_m=scores.centroid_error_m,
                volume_iou=scores.volume_iou,
                completeness=scores.completeness,
                false_occupancy_m3=scores.false_occupancy_m3,
                false_occupancy_fraction=scores.false_occupancy_fraction,
                object_cd=protocol.objects[k].chamfer.distance if k is not None else math.nan,
                object_fscore=protocol.objects[k].fscore.fscore if k is not None else 0.0,
                iou_bbox=float(protocol.iou_bbox[k]) if k is not None else 0.0,
                translation_error=pose_error.translation,
                rotation_error_deg=pose_error.rotation_deg,
                scale_ratio=pose_error.scale_ratio,
            )
        )
    scene_row = SceneRow(
        scene=name,
        method=method_name,
        num_objects=len(gt_meshes),
        num_predicted=len(predictions),
        num_matched=len(usable_pairs),
        num_failed=len(predictions) - len(usable),
        seconds=seconds,
        scene_cd=protocol.chamfer.distance if protocol else math.nan,
        scene_fscore=protocol.fscore.fscore if protocol else 0.0,
        scene_completeness=robotics.completeness,
        scene_false_occupancy_m3=robotics.false_occupancy_m3,
        scene_false_occupancy_fraction=robotics.false_occupancy_fraction,
        scene_failure=scene_failure,
    )
    match_of_pred = dict(pairs)
    return SceneEvaluation(
        scene_row,
        tuple(rows),
        predictions,
        tuple(match_of_pred.get(i) for i in range(len(predictions))),
        tuple(check.failure for check in checks),
    )


# ------------------------------------------------------------------------------------ summary


@dataclass(frozen=True)
class SummaryColumn:
    """One table column: header, row level ("object" / "scene"), field, display scale."""

    header: str
    level: str
    field: str
    scale: float = 1.0


SUMMARY_COLUMNS = (
    SummaryColumn("detected", "object", "detected"),
    SummaryColumn("failed", "object", "failed"),
    SummaryColumn("centroid_mm", "object", "centroid_error_m", 1000.0),
    SummaryColumn("vol_IoU", "object", "volume_iou"),
    SummaryColumn("complete", "object", "completeness"),
    SummaryColumn("false_occ", "scene", "scene_false_occupancy_fraction"),
    SummaryColumn("scene_CD", "scene", "scene_cd"),
    SummaryColumn("scene_F", "scene", "scene_fscore"),
    SummaryColumn("obj_CD", "object", "object_cd"),
    SummaryColumn("obj_F", "object", "object_fscore"),
    SummaryColumn("IoU-B", "object", "iou_bbox"),
    SummaryColumn("trans_err", "object", "translation_error"),
    SummaryColumn("rot_deg", "object", "rotation_error_deg"),
    SummaryColumn("scale_ratio", "object", "scale_ratio"),
    SummaryColumn("pred_ms", "scene", "seconds", 1000.0),
)


@dataclass(frozen=True)
class SummaryCell:
    """mean / std over the finite values (count of them), already scaled for display."""

    mean: float
    std: float
    count: int


def summarize(
    object_rows: Sequence[ObjectRow], scene_rows: Sequence[SceneRow], methods: Sequence[str]
) -> dict[str, dict[str, SummaryCell]]:
    """method -> column header -> SummaryCell."""
    table: dict[str, dict[str, SummaryCell]] = {}
    for method in methods:
        table[method] = {}
        for column in SUMMARY_COLUMNS:
            rows = object_rows if column.level == "object" else scene_rows
            values = np.array([float(getattr(r, column.field)) for r in rows if r.method == method], dtype=np.float64)
            values = values[np.isfinite(values)] * column.scale
            if len(values):
                table[method][column.header] = SummaryCell(float(values.mean()), float(values.std()), len(values))
            else:
                table[method][column.header] = SummaryCell(math.nan, math.nan, 0)
    return table


def format_table(summary: dict[str, dict[str, SummaryCell]]) -> str:
    """Plain-text table, one row per method, cells 'mean ± std'."""
    headers = ["method"] + [c.header for c in SUMMARY_COLUMNS]
    body = [
        [method] + [f"{cells[c.header].mean:.3g} ± {cells[c.header].std:.2g}" for c in SUMMARY_COLUMNS]
        for method, cells in summary.items()
    ]
    widths = [max(len(row[i]) for row in [headers] + body) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in [headers] + body]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def failure_report(object_rows: Sequence[ObjectRow], scene_rows: Sequence[SceneRow], methods: Sequence[str]) -> str:
    """One line per method with failures: failed objects, unusable predictions, failed scenes."""
    lines = []
    for method in methods:
        objects = [r for r in object_rows if r.method == method]
        scenes = [r for r in scene_rows if r.method == method]
        failed = sum(r.failed for r in objects)
        unusable = sum(r.num_failed for r in scenes)
        scene_failures = sum(bool(r.scene_failure) for r in scenes)
        if failed or unusable or scene_failures:
            lines.append(
                f"  {method}: {failed} of {len(objects)} objects failed; {unusable} unusable predictions; "
                f"method failed on {scene_failures} of {len(scenes)} scenes"
            )
    if not lines:
        return "failures: none"
    return "\n".join(["failures (reasons in results.csv, columns failure / scene_failure):", *lines])


CSV_COLUMNS = (
    ["row_type", "statistic"]
    + [f.name for f in fields(ObjectRow)]
    + [f.name for f in fields(SceneRow) if f.name not in ("scene", "method")]
)


def write_csv(
    path: pathlib.Path,
    object_rows: Sequence[ObjectRow],
    scene_rows: Sequence[SceneRow],
    summary: dict[str, dict[str, SummaryCell]],
) -> None:
    """results.csv: per-object rows, per-scene rows, then summary rows (mean, std, count) per method.

    Summary cells sit under the field the column summarises, in the table's display units
    (centroid and seconds in milli-units, see SUMMARY_COLUMNS).
    """
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS, restval="")
        writer.writeheader()
        for row in object_rows:
            writer.writerow({"row_type": "object", **asdict(row)})
        for row in scene_rows:
            writer.writerow({"row_type": "scene", **asdict(row)})
        for method, cells in summary.items():
            for statistic in ("mean", "std", "count"):
                values = {c.field: getattr(cells[c.header], statistic) for c in SUMMARY_COLUMNS}
                writer.writerow({"row_type": "summary", "statistic": statistic, "method": method, **values})


# ------------------------------------------------------------------------------------ CLI


def write_detection_csv(path: pathlib.Path, rows: Sequence[SceneDetection]) -> None:
    """detection.csv: one "object" row per true object, one "scene" row per scene (module docstring)."""
    columns = ["row_type", "scene", "object_index", "visible_fraction", "matched_iou", "num_objects", "num_eligible",
               "num_recalled", "num_predicted", "num_true_positive", "seconds"]  # fmt: skip
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        writer.writeheader()
        for row in rows:
            for index, (visible, iou) in enumerate(zip(row.visible_fraction, row.matched_iou)):
                values = {"scene": row.scene, "object_index": index, "visible_fraction": visible, "matched_iou": iou}
                writer.writerow({"row_type": "object", **values})
            counts = {k: getattr(row, k) for k in columns[5:]}
            writer.writerow({"row_type": "scene", "scene": row.scene, "num_objects": row.num_objects, **counts})


@dataclass(frozen=True)
class _Job:
    scene_dir: pathlib.Path
    methods: tuple[str, ...]
    config: EvaluationConfig
    figure_dir: pathlib.Path | None
    depth_noise: str | None = None  # preset name or "off"; None: the scene's own config
    detection: DetectionConfig | None = None


def _run_job(job: _Job) -> tuple[list[SceneEvaluation], SceneDetection | None]:
    scene = load_scene(job.scene_dir)
    if job.depth_noise is not None:
        scene = scene.with_depth_noise(depth_noise_preset(job.depth_noise))
    truth = SceneTruth.from_scene(job.scene_dir.name, scene, job.config.robotics)
    detection = detect_scene(job.scene_dir.name, scene, config=job.detection) if job.detection is not None else None
    results = []
    for method_name in job.methods:
        result = evaluate_scene(truth, method_name, METHODS[method_name], job.config)
        results.append(result)
        if job.figure_dir is not None:
            view = truth.views[0]
            s = result.scene_row
            usable = [i for i, failure in enumerate(result.pred_failure) if not failure]
            # Failures first: the title is cut at the figure's width.
            failures = ""
            if s.scene_failure:
                failures = f"FAILED: {s.scene_failure}  "
            elif s.num_failed:
                failures = f"{s.num_failed} unusable  "
            picture = scene_figure(
                view.rgb,
                view.intrinsics,
                view.masks,
                truth.gt_meshes,
                np.array([np.asarray(result.predictions[i].mask, bool) for i in usable]).reshape(-1, *view.size),
                [result.predictions[i].mesh for i in usable],
                [result.pred_gt_index[i] for i in usable],
                title=f"{truth.name}  {method_name}  matched {s.num_matched}/{s.num_objects}  {failures}"
                f"complete {s.scene_completeness:.2f}  false occ {s.scene_false_occupancy_fraction:.2f}  "
                f"scene F {s.scene_fscore:.2f}",
            )
            Image.fromarray(picture).save(job.figure_dir / f"{truth.name}_{method_name}.png")
    return results, detection


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scenegen_core.evaluation.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, type=pathlib.Path, help="folder of scene folders (or its parent, see --split)")
    parser.add_argument("--split", default=None, help="read DIR/<split> instead of DIR")
    parser.add_argument("--methods", nargs="*", default=list(METHODS), help=f"any of {sorted(METHODS)} (none: --detection only)")
    parser.add_argument("--limit", type=int, default=None, help="first N scenes only")
    parser.add_argument("--figures", type=int, default=5, help="pictures for the first N scenes")
    parser.add_argument("--points", type=int, default=ProtocolConfig.num_points, help="surface samples per object")
    parser.add_argument(
        "--icp-max-points",
        type=int,
        default=ProtocolConfig.icp_max_points,
        help="ICP matches at most this many predicted points per iteration (0 = every point, as upstream)",
    )
    parser.add_argument("--voxel-size", type=float, default=RoboticsConfig.voxel_size, help="metres")
    parser.add_argument("--min-mask-iou", type=float, default=EvaluationConfig.min_mask_iou)
    parser.add_argument(
        "--depth-noise",
        choices=["off", *DEPTH_NOISE_PRESETS],
        default=None,
        help="depth sensor model for every scene (off = exact depth); default: each scene's own WorldConfig.depth_noise",
    )
    parser.add_argument(
        "--detection", action="store_true", help="also score the depth proposals: recall / precision at mask IoU 0.5"
    )
    parser.add_argument("--workers", type=int, default=1, help="processes (scenes in parallel)")
    parser.add_argument("--out", required=True, type=pathlib.Path)
    parser.add_argument(
        "--scenegen-model",
        default=None,
        help='also evaluate method "scenegen" (SceneGen with the true masks): "default" for the embedded '
        "default model, else a weights directory in the official layout",
    )
    parser.add_argument("--scenegen-steps", type=int, default=25, help="flow sampling steps for --scenegen-model")
    parser.add_argument("--scenegen-rescale-t", type=float, default=3.0, help="time-grid rescaling for --scenegen-model")
    parser.add_argument(
        "--scenegen-cache-interval", type=int, default=1, help="step caching for --scenegen-model: the model runs every k-th step"
    )
    args = parser.parse_args(argv)

    if args.scenegen_model is not None:
        from scenegen_core.pipeline import PipelineConfig, SceneGenPipeline

        if args.workers > 1:
            # Worker processes are forked, and forking after torch has started its thread pools can hang.
            parser.error("--scenegen-model runs in one process: use --workers 1")

        model_path = "" if args.scenegen_model == "default" else args.scenegen_model
        pipeline = SceneGenPipeline(
            PipelineConfig(
                model_path=model_path, steps=args.scenegen_steps, rescale_t=args.scenegen_rescale_t,
                cache_interval=args.scenegen_cache_interval,
            )
        )
        sampler = pipeline.config.sampler
        print(
            f"scenegen: {pipeline.description}; {sampler.steps} steps, rescale_t {sampler.rescale_t}, "
            f"cache interval {sampler.cache_interval} ({sampler.model_passes()} flow passes)"
        )
        if "scenegen" not in METHODS:
            register_method("scenegen", pipeline_method(pipeline))
        if "scenegen" not in args.methods:
            args.methods.append("scenegen")

    unknown = [m for m in args.methods if m not in METHODS]
    if unknown:
        parser.error(f"unknown methods {unknown}; known: {sorted(METHODS)}")
    if not args.methods and not args.detection:
        parser.error("nothing to evaluate: give --methods and/or --detection")
    data = args.data / args.split if args.split else args.data
    scene_dirs = list_scenes(data)[: args.limit]
    if not scene_dirs:
        parser.error(f"no scene folders (with meta.json) under {data}")
    config = EvaluationConfig(
        protocol=ProtocolConfig(num_points=args.points, icp_max_points=args.icp_max_points or None),
        robotics=RoboticsConfig(voxel_size=args.voxel_size),
        min_mask_iou=args.min_mask_iou,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    figure_dir = args.out / "figures"
    if args.figures > 0:
        figure_dir.mkdir(exist_ok=True)
    detection_config = DetectionConfig() if args.detection else None
    jobs = [
        _Job(d, tuple(args.methods), config, figure_dir if i < args.figures else None, args.depth_noise, detection_config)
        for i, d in enumerate(scene_dirs)
    ]
    start = time.perf_counter()
    if args.workers > 1:
        with multiprocessing.get_context("fork").Pool(args.workers) as pool:
            per_scene = pool.map(_run_job, jobs, chunksize=1)
    else:
        per_scene = [_run_job(job) for job in jobs]
    elapsed = time.perf_counter() - start
    results = [r for scene_results, _ in per_scene for r in scene_results]
    detections = [d for _, d in per_scene if d is not None]
    object_rows = [row for r in results for row in r.object_rows]
    scene_rows = [r.scene_row for r in results]
    summary = summarize(object_rows, scene_rows, args.methods)
    lines = [format_table(summary), failure_report(object_rows, scene_rows, args.methods)] if args.methods else []
    if detections:
        lines.append(format_detection(summarize_detection(detections), detection_config))
        write_detection_csv(args.out / "detection.csv", detections)
    table = "\n".join(lines)
    protocol = config.protocol
    noise = "as generated" if args.depth_noise is None else args.depth_noise
    if args.methods:
        num_objects = sum(r.num_objects for r in scene_rows if r.method == args.methods[0])
    else:
        num_objects = sum(d.num_objects for d in detections)
    header = (
        f"{len(scene_dirs)} scenes, {num_objects} objects from {data}; depth noise: {noise}; "
        f"{protocol.num_points} points/object, ICP <= {protocol.icp_iterations} iterations, tolerance "
        f"{protocol.icp_tolerance:g}, {protocol.icp_max_points or 'all'} points matched; "
        f"voxel {args.voxel_size * 1000:g} mm; evaluation wall time {elapsed:.1f} s ({args.workers} worker(s))"
    )
    print(header)
    print(table)
    (args.out / "table.txt").write_text(header + "\n" + table + "\n")
    write_csv(args.out / "results.csv", object_rows, scene_rows, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
