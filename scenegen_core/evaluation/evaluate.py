"""Evaluate methods on synthetic scenes: one table, one CSV, pictures.

    python -m scenegen_core.evaluation.evaluate --data DIR --methods hull_gt box_gt hull_pred box_pred \
        [--limit N] [--figures N] [--points 20480] [--voxel-size 0.0025] [--workers 1] --out OUTDIR

DIR holds scene folders (`scenegen_core.world.dataset` format), directly or under DIR/<--split>.
Every method sees camera 0..K-1 of a scene as `View`s (with the true masks; methods named
``*_pred`` ignore them) and returns `PredictedObject`s in camera 0's optical frame, metres.
Predictions are matched to the truth by their known index, else by Hungarian matching on view-0
mask IoU (>= --min-mask-iou). Scores: the SceneGen protocol (`metrics.scene_protocol_scores`:
scene CD / F-score after normalisation and ICP, object CD / F-score, IoU-B) and the robotics
metrics (`metrics.robotics_scores`, metres, camera frame). Missed objects count as F = 0,
IoU-B = 0, volumetric IoU = 0 and are excluded from centroid error and object CD (reported as
the detection rate instead).

Outputs: the table (methods x metrics, mean ± std) on stdout and in OUTDIR/table.txt,
OUTDIR/results.csv (row_type object / scene / summary), OUTDIR/figures/<scene>_<method>.png for
the first --figures scenes.

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
from scenegen_core.evaluation.depth_segmentation import match_masks
from scenegen_core.evaluation.metrics import (
    ProtocolConfig,
    RoboticsConfig,
    VoxelBlock,
    check_pairs,
    robotics_scores,
    scene_protocol_scores,
    voxelize,
)
from scenegen_core.evaluation.visualization import scene_figure
from scenegen_core.types import Mesh, View
from scenegen_core.world.dataset import list_scenes, load_scene
from scenegen_core.world.scene import SyntheticScene
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
    must be metric and camera 0's optical frame) and gt_index = SceneObject.index (the position of
    its mask in the views). Objects with empty meshes, and every object of a scene the pipeline
    rejects (PipelineError), count as missed. Note: the robotics metrics need closed meshes.
    """

    def run(views: Sequence[View]) -> list[PredictedObject]:
        from scenegen_core.pipeline import PipelineError

        try:
            result = pipeline.run(views)
        except PipelineError:
            return []  # every object of this scene counts as missed
        if not result.metric:
            raise ValueError(f"pipeline result is not metric ({result.model_description}); cannot score it in metres")
        if result.frame_id != views[0].frame_id:
            raise ValueError(f"pipeline result is in {result.frame_id!r}, expected camera 0's {views[0].frame_id!r}")
        # An empty mesh (no occupied voxel) has no surface to score: that object counts as missed.
        return [
            PredictedObject(obj.mesh_in_output_frame(), views[0].masks[obj.index], obj.index)
            for obj in result.objects
            if not obj.mesh.is_empty
        ]

    return run


@dataclass(frozen=True)
class EvaluationConfig:
    """protocol: SceneGen protocol settings. robotics: voxel lattice settings. min_mask_iou:
    smallest view-0 mask IoU for a prediction to count as the true object."""

    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)
    robotics: RoboticsConfig = field(default_factory=RoboticsConfig)
    min_mask_iou: float = 0.25


@dataclass(frozen=True)
class ObjectRow:
    """Scores of one true object under one method (NaN = undefined, e.g. missed); metres."""

    scene: str
    method: str
    object_index: int
    label: str
    detected: bool
    centroid_error_m: float
    volume_iou: float
    completeness: float
    false_occupancy_m3: float
    false_occupancy_fraction: float
    object_cd: float
    object_fscore: float
    iou_bbox: float


@dataclass(frozen=True)
class SceneRow:
    """Scene-level scores of one method; seconds = wall time of the method's prediction."""

    scene: str
    method: str
    num_objects: int
    num_predicted: int
    num_matched: int
    seconds: float
    scene_cd: float
    scene_fscore: float
    scene_completeness: float
    scene_false_occupancy_m3: float
    scene_false_occupancy_fraction: float


@dataclass(frozen=True)
class SceneEvaluation:
    """Rows plus what the figure needs: predictions and their matched true index (or None)."""

    scene_row: SceneRow
    object_rows: tuple[ObjectRow, ...]
    predictions: tuple[PredictedObject, ...]
    pred_gt_index: tuple[int | None, ...]


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
    return list(match_masks(np.stack([p.mask for p in predictions]), gt_masks, min_mask_iou).pairs)


@dataclass(frozen=True)
class SceneTruth:
    """What every method on one scene is scored against (computed once per scene).

    views: the scene's views (view 0 = reference). gt_meshes: object meshes in camera 0's optical
    frame, metres. gt_voxels: their voxel blocks at the evaluation's voxel size. labels: classes.
    """

    name: str
    views: tuple[View, ...]
    gt_meshes: tuple[Mesh, ...]
    gt_voxels: tuple[VoxelBlock, ...]
    labels: tuple[str, ...]

    @classmethod
    def from_scene(cls, name: str, scene: SyntheticScene, config: RoboticsConfig) -> "SceneTruth":
        meshes = tuple(gt_meshes_in_camera(scene))
        return cls(
            name=name,
            views=tuple(scene.views()),
            gt_meshes=meshes,
            gt_voxels=tuple(voxelize(m, config.voxel_size, config.max_cells_per_mesh) for m in meshes),
            labels=tuple(obj.label for obj in scene.objects),
        )


def evaluate_scene(
    truth: SceneTruth, method_name: str, method: Method, config: EvaluationConfig = EvaluationConfig()
) -> SceneEvaluation:
    """Run one method on one scene and score it against the truth (camera 0 frame, metres)."""
    views, gt_meshes, name = truth.views, truth.gt_meshes, truth.name
    start = time.perf_counter()
    predictions = tuple(method(views))
    seconds = time.perf_counter() - start
    pairs = match_predictions(predictions, views[0].masks, config.min_mask_iou)
    pred_meshes = [p.mesh for p in predictions]
    robotics = robotics_scores(pred_meshes, gt_meshes, pairs, config.robotics, truth.gt_voxels)
    protocol = scene_protocol_scores(pred_meshes, gt_meshes, pairs, config.protocol) if predictions else None
    protocol_of_gt = {g: i for i, (_, g) in enumerate(pairs)}
    rows = []
    for g, (label, scores) in enumerate(zip(truth.labels, robotics.objects)):
        k = protocol_of_gt.get(g)
        rows.append(
            ObjectRow(
                scene=name,
                method=method_name,
                object_index=g,
                label=label,
                detected=k is not None,
                centroid_error_m=scores.centroid_error_m,
                volume_iou=scores.volume_iou,
                completeness=scores.completeness,
                false_occupancy_m3=scores.false_occupancy_m3,
                false_occupancy_fraction=scores.false_occupancy_fraction,
                object_cd=protocol.objects[k].chamfer.distance if k is not None else math.nan,
                object_fscore=protocol.objects[k].fscore.fscore if k is not None else 0.0,
                iou_bbox=float(protocol.iou_bbox[k]) if k is not None else 0.0,
            )
        )
    scene_row = SceneRow(
        scene=name,
        method=method_name,
        num_objects=len(gt_meshes),
        num_predicted=len(predictions),
        num_matched=len(pairs),
        seconds=seconds,
        scene_cd=protocol.chamfer.distance if protocol else math.nan,
        scene_fscore=protocol.fscore.fscore if protocol else 0.0,
        scene_completeness=robotics.completeness,
        scene_false_occupancy_m3=robotics.false_occupancy_m3,
        scene_false_occupancy_fraction=robotics.false_occupancy_fraction,
    )
    match_of_pred = dict(pairs)
    return SceneEvaluation(scene_row, tuple(rows), predictions, tuple(match_of_pred.get(i) for i in range(len(predictions))))


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
    SummaryColumn("centroid_mm", "object", "centroid_error_m", 1000.0),
    SummaryColumn("vol_IoU", "object", "volume_iou"),
    SummaryColumn("complete", "object", "completeness"),
    SummaryColumn("false_occ", "scene", "scene_false_occupancy_fraction"),
    SummaryColumn("scene_CD", "scene", "scene_cd"),
    SummaryColumn("scene_F", "scene", "scene_fscore"),
    SummaryColumn("obj_CD", "object", "object_cd"),
    SummaryColumn("obj_F", "object", "object_fscore"),
    SummaryColumn("IoU-B", "object", "iou_bbox"),
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


@dataclass(frozen=True)
class _Job:
    scene_dir: pathlib.Path
    methods: tuple[str, ...]
    config: EvaluationConfig
    figure_dir: pathlib.Path | None


def _run_job(job: _Job) -> list[SceneEvaluation]:
    scene = load_scene(job.scene_dir)
    truth = SceneTruth.from_scene(job.scene_dir.name, scene, job.config.robotics)
    results = []
    for method_name in job.methods:
        result = evaluate_scene(truth, method_name, METHODS[method_name], job.config)
        results.append(result)
        if job.figure_dir is not None:
            view = truth.views[0]
            s = result.scene_row
            picture = scene_figure(
                view.rgb,
                view.intrinsics,
                view.masks,
                truth.gt_meshes,
                np.stack([p.mask for p in result.predictions]) if result.predictions else np.zeros((0, *view.size), bool),
                [p.mesh for p in result.predictions],
                result.pred_gt_index,
                title=f"{truth.name}  {method_name}  matched {s.num_matched}/{s.num_objects}  "
                f"complete {s.scene_completeness:.2f}  false occ {s.scene_false_occupancy_fraction:.2f}  scene F {s.scene_fscore:.2f}",
            )
            Image.fromarray(picture).save(job.figure_dir / f"{truth.name}_{method_name}.png")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scenegen_core.evaluation.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, type=pathlib.Path, help="folder of scene folders (or its parent, see --split)")
    parser.add_argument("--split", default=None, help="read DIR/<split> instead of DIR")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), help=f"any of {sorted(METHODS)}")
    parser.add_argument("--limit", type=int, default=None, help="first N scenes only")
    parser.add_argument("--figures", type=int, default=5, help="pictures for the first N scenes")
    parser.add_argument("--points", type=int, default=ProtocolConfig.num_points, help="surface samples per object")
    parser.add_argument("--voxel-size", type=float, default=RoboticsConfig.voxel_size, help="metres")
    parser.add_argument("--min-mask-iou", type=float, default=EvaluationConfig.min_mask_iou)
    parser.add_argument("--workers", type=int, default=1, help="processes (scenes in parallel)")
    parser.add_argument("--out", required=True, type=pathlib.Path)
    parser.add_argument(
        "--scenegen-model",
        default=None,
        help='also evaluate method "scenegen" (SceneGen with the true masks): "default" for the embedded '
        "default model, else a weights directory in the official layout",
    )
    parser.add_argument("--scenegen-steps", type=int, default=25, help="flow sampling steps for --scenegen-model")
    args = parser.parse_args(argv)

    if args.scenegen_model is not None:
        from scenegen_core.pipeline import PipelineConfig, SceneGenPipeline

        if args.workers > 1:
            # Worker processes are forked, and forking after torch has started its thread pools can hang.
            parser.error("--scenegen-model runs in one process: use --workers 1")

        model_path = "" if args.scenegen_model == "default" else args.scenegen_model
        pipeline = SceneGenPipeline(PipelineConfig(model_path=model_path, steps=args.scenegen_steps))
        print(f"scenegen: {pipeline.description}")
        if "scenegen" not in METHODS:
            register_method("scenegen", pipeline_method(pipeline))
        if "scenegen" not in args.methods:
            args.methods.append("scenegen")

    unknown = [m for m in args.methods if m not in METHODS]
    if unknown:
        parser.error(f"unknown methods {unknown}; known: {sorted(METHODS)}")
    data = args.data / args.split if args.split else args.data
    scene_dirs = list_scenes(data)[: args.limit]
    if not scene_dirs:
        parser.error(f"no scene folders (with meta.json) under {data}")
    config = EvaluationConfig(
        protocol=ProtocolConfig(num_points=args.points),
        robotics=RoboticsConfig(voxel_size=args.voxel_size),
        min_mask_iou=args.min_mask_iou,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    figure_dir = args.out / "figures"
    if args.figures > 0:
        figure_dir.mkdir(exist_ok=True)
    jobs = [
        _Job(d, tuple(args.methods), config, figure_dir if i < args.figures else None) for i, d in enumerate(scene_dirs)
    ]
    start = time.perf_counter()
    if args.workers > 1:
        with multiprocessing.get_context("fork").Pool(args.workers) as pool:
            per_scene = pool.map(_run_job, jobs, chunksize=1)
    else:
        per_scene = [_run_job(job) for job in jobs]
    elapsed = time.perf_counter() - start
    results = [r for scene_results in per_scene for r in scene_results]
    object_rows = [row for r in results for row in r.object_rows]
    scene_rows = [r.scene_row for r in results]
    summary = summarize(object_rows, scene_rows, args.methods)
    table = format_table(summary)
    header = (
        f"{len(scene_dirs)} scenes, {len(object_rows) // len(args.methods)} objects from {data}; "
        f"{args.points} points/object, voxel {args.voxel_size * 1000:g} mm; "
        f"evaluation wall time {elapsed:.1f} s ({args.workers} worker(s))"
    )
    print(header)
    print(table)
    (args.out / "table.txt").write_text(header + "\n" + table + "\n")
    write_csv(args.out / "results.csv", object_rows, scene_rows, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
