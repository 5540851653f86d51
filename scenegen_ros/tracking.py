"""Stable object ids across scene updates (pure Python + scipy, no rclpy).

Every pipeline run returns objects in its own order; downstream consumers (MoveIt collision
objects, RViz markers) need the same id for the same physical object. `ObjectTracker` matches
the new objects to the tracked ones by a cost mixing 3D centroid distance and size difference,
solved as a linear assignment (Hungarian method, `scipy.optimize.linear_sum_assignment`), gives
unmatched new objects fresh ids, and expires tracks not seen for `object_timeout_s` so the node
can REMOVE their collision objects.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment


@dataclass(frozen=True)
class TrackerConfig:
    """max_match_cost_m: a pair costs |centroid difference| + size_weight * |size difference|
    (both metres, Euclidean norms); pairs above this are never matched. object_timeout_s: a
    track not matched for longer than this (seconds, caller's clock) is removed."""

    max_match_cost_m: float = 0.15
    size_weight: float = 0.5
    object_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if not self.max_match_cost_m > 0:
            raise ValueError(f"max_match_cost_m must be > 0, got {self.max_match_cost_m}")
        if not self.size_weight >= 0:
            raise ValueError(f"size_weight must be >= 0, got {self.size_weight}")
        if not self.object_timeout_s > 0:
            raise ValueError(f"object_timeout_s must be > 0, got {self.object_timeout_s}")


@dataclass(frozen=True)
class TrackUpdate:
    """Result of one update.

    ids: one id per input object, in input order. new_ids: ids created by this update.
    removed_ids: tracks that expired (not seen for object_timeout_s), sorted.
    """

    ids: tuple[int, ...]
    new_ids: tuple[int, ...]
    removed_ids: tuple[int, ...]


@dataclass
class _Track:
    centroid: np.ndarray
    size: np.ndarray
    last_seen_s: float


class ObjectTracker:
    """Keeps ids (1, 2, 3, ...; never reused) stable across updates. Not thread-safe."""

    def __init__(self, config: TrackerConfig) -> None:
        self.config = config
        self._tracks: dict[int, _Track] = {}
        self._next_id = 1

    @property
    def active_ids(self) -> tuple[int, ...]:
        return tuple(sorted(self._tracks))

    def update(self, centroids: np.ndarray, sizes: np.ndarray, now_s: float) -> TrackUpdate:
        """Match N objects of a new scene to the tracks.

        centroids: [N, 3] float, metres, the scene's frame. sizes: [N, 3] float, metres (axis-aligned
        extent). now_s: caller's clock, seconds. Returns the ids in input order.
        """
        centroids = _as_points(centroids, "centroids")
        sizes = _as_points(sizes, "sizes")
        if len(centroids) != len(sizes):
            raise ValueError(f"{len(centroids)} centroids but {len(sizes)} sizes")

        # 1. Expire first so a long-gone track cannot capture a new object.
        removed = self.expire(now_s)

        # 2. Cost matrix [tracks, objects]; gated pairs get a cost the solver never prefers.
        track_ids = list(self._tracks)
        ids: list[int | None] = [None] * len(centroids)
        if track_ids and len(centroids):
            track_centroids = np.stack([self._tracks[t].centroid for t in track_ids])
            track_sizes = np.stack([self._tracks[t].size for t in track_ids])
            cost = np.linalg.norm(track_centroids[:, None] - centroids[None], axis=-1)
            cost += self.config.size_weight * np.linalg.norm(track_sizes[:, None] - sizes[None], axis=-1)
            gated = cost > self.config.max_match_cost_m
            rows, cols = linear_sum_assignment(np.where(gated, 1e6, cost))
            for row, col in zip(rows, cols):
                if not gated[row, col]:
                    ids[col] = track_ids[row]

        # 3. Unmatched objects become new tracks; matched tracks take the new measurement.
        new_ids = []
        for index, track_id in enumerate(ids):
            if track_id is None:
                track_id = self._next_id
                self._next_id += 1
                ids[index] = track_id
                new_ids.append(track_id)
            self._tracks[track_id] = _Track(centroids[index].copy(), sizes[index].copy(), now_s)
        return TrackUpdate(tuple(int(i) for i in ids), tuple(new_ids), removed)

    def expire(self, now_s: float) -> tuple[int, ...]:
        """Drop tracks not seen for more than object_timeout_s; returns their ids, sorted."""
        limit = self.config.object_timeout_s
        removed = tuple(sorted(t for t, track in self._tracks.items() if now_s - track.last_seen_s > limit))
        for track_id in removed:
            del self._tracks[track_id]
        return removed


def _as_points(values: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0:
        return np.zeros((0, 3))
    if array.ndim != 2 or array.shape[1] != 3:
        raise ValueError(f"{name} must be [N, 3], got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite")
    return array
