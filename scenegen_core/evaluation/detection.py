"""Detection scores of class-agnostic instance masks (the depth proposals) on synthetic scenes.

Protocol (view 0, the reference view): predicted masks are matched one to one to the true
instance masks by Hungarian matching on mask IoU (`depth_proposals.match_masks`), keeping pairs
with IoU >= min_iou. With min_iou >= 0.5 a mask can overlap only one of several disjoint masks
that much, so the pairing is unambiguous.

* recall: the share of the *eligible* true objects that are matched; an object is eligible when
  at least min_visible_fraction of its whole silhouette shows (`ground_truth.visible_fractions`:
  occlusion and the image border both hide);
* precision: the share of the predictions that are matched to any true object (a prediction for a
  barely visible object is right, not a false positive);
* mean IoU over the matched pairs.

Counts are summed over scenes before dividing (micro-averages).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from scenegen_core.segmentation.depth_proposals import match_masks, segment_depth
from scenegen_core.types import View
from scenegen_core.world.ground_truth import visible_fractions
from scenegen_core.world.scene import SyntheticScene

Segmenter = Callable[[Sequence[View]], np.ndarray]
"""Maps a scene's views to [K, H, W] bool predicted masks in view 0."""


def depth_proposals(views: Sequence[View]) -> np.ndarray:
    """The default segmenter: `segment_depth` with its default settings, view 0's masks."""
    return segment_depth(views).masks[0]


@dataclass(frozen=True)
class DetectionConfig:
    """min_iou: smallest mask IoU of a match. min_visible_fraction: true objects showing less of
    their silhouette do not count for recall (module docstring)."""

    min_iou: float = 0.5
    min_visible_fraction: float = 0.2

    def __post_init__(self) -> None:
        if not 0.5 <= self.min_iou <= 1.0:
            raise ValueError(f"min_iou must be in [0.5, 1] for an unambiguous one-to-one matching, got {self.min_iou}")
        if not 0.0 <= self.min_visible_fraction <= 1.0:
            raise ValueError(f"min_visible_fraction must be in [0, 1], got {self.min_visible_fraction}")


@dataclass(frozen=True)
class SceneDetection:
    """Detection counts of one scene. visible_fraction / matched_iou: per true object (scene
    order), the visible share of its silhouette and the IoU of its match (NaN if unmatched);
    seconds: the segmenter's wall time."""

    scene: str
    num_objects: int
    num_eligible: int
    num_recalled: int
    num_predicted: int
    num_true_positive: int
    visible_fraction: tuple[float, ...]
    matched_iou: tuple[float, ...]
    seconds: float


def score_detection(
    name: str,
    pred_masks: np.ndarray,
    gt_masks: np.ndarray,
    visible_fraction: np.ndarray,
    config: DetectionConfig = DetectionConfig(),
    seconds: float = float("nan"),
) -> SceneDetection:
    """Counts for one scene: pred_masks [P, H, W] and gt_masks [G, H, W] bool (view 0),
    visible_fraction [G] in [0, 1]."""
    visible_fraction = np.asarray(visible_fraction, dtype=np.float64)
    if len(visible_fraction) != len(gt_masks):
        raise ValueError(f"{len(gt_masks)} true masks but {len(visible_fraction)} visible fractions")
    matching = match_masks(pred_masks, gt_masks, config.min_iou)
    matched_iou = np.full(len(gt_masks), np.nan)
    for (_, g), iou in zip(matching.pairs, matching.ious):
        matched_iou[g] = iou
    eligible = visible_fraction >= config.min_visible_fraction
    return SceneDetection(
        scene=name,
        num_objects=len(gt_masks),
        num_eligible=int(eligible.sum()),
        num_recalled=int(np.sum(eligible & np.isfinite(matched_iou))),
        num_predicted=len(pred_masks),
        num_true_positive=len(matching.pairs),
        visible_fraction=tuple(float(v) for v in visible_fraction),
        matched_iou=tuple(float(v) for v in matched_iou),
        seconds=seconds,
    )


def detect_scene(
    name: str, scene: SyntheticScene, segmenter: Segmenter = depth_proposals, config: DetectionConfig = DetectionConfig()
) -> SceneDetection:
    """Segment the scene's views (as `SyntheticScene.views` gives them: with its depth noise) and score view 0."""
    views = scene.views()
    start = time.perf_counter()
    masks = np.asarray(segmenter(views), dtype=bool).reshape(-1, *views[0].size)
    seconds = time.perf_counter() - start
    return score_detection(name, masks, views[0].masks, visible_fractions(scene), config, seconds)


@dataclass(frozen=True)
class DetectionSummary:
    """Counts summed over scenes and the micro-averaged scores (module docstring); NaN when undefined."""

    scenes: int
    objects: int
    eligible: int
    recalled: int
    predicted: int
    true_positive: int
    recall: float
    precision: float
    mean_iou: float


def summarize_detection(rows: Sequence[SceneDetection]) -> DetectionSummary:
    eligible = sum(r.num_eligible for r in rows)
    recalled = sum(r.num_recalled for r in rows)
    predicted = sum(r.num_predicted for r in rows)
    true_positive = sum(r.num_true_positive for r in rows)
    ious = np.array([iou for r in rows for iou in r.matched_iou], dtype=np.float64)
    ious = ious[np.isfinite(ious)]
    return DetectionSummary(
        scenes=len(rows),
        objects=sum(r.num_objects for r in rows),
        eligible=eligible,
        recalled=recalled,
        predicted=predicted,
        true_positive=true_positive,
        recall=recalled / eligible if eligible else float("nan"),
        precision=true_positive / predicted if predicted else float("nan"),
        mean_iou=float(ious.mean()) if len(ious) else float("nan"),
    )


def format_detection(summary: DetectionSummary, config: DetectionConfig = DetectionConfig()) -> str:
    """One line: recall and precision with their counts, mean IoU."""
    s = summary
    return (
        f"depth proposals (view 0, mask IoU >= {config.min_iou:g}): recall {s.recall:.3f} ({s.recalled}/{s.eligible} objects "
        f">= {config.min_visible_fraction:.0%} visible), precision {s.precision:.3f} ({s.true_positive}/{s.predicted}), "
        f"matched mean IoU {s.mean_iou:.3f}; {s.scenes} scenes, {s.objects} objects"
    )


__all__ = [
    "DetectionConfig",
    "SceneDetection",
    "DetectionSummary",
    "depth_proposals",
    "score_detection",
    "detect_scene",
    "summarize_detection",
    "format_detection",
]
