"""Object id tracking across scene updates (pure, no rclpy)."""

from __future__ import annotations

import numpy as np
import pytest

from scenegen_ros.tracking import ObjectTracker, TrackerConfig

SIZES = np.array([[0.1, 0.1, 0.2], [0.3, 0.2, 0.1], [0.05, 0.05, 0.05]])
CENTROIDS = np.array([[0.0, 0.0, 1.0], [0.3, 0.0, 1.2], [-0.2, 0.1, 0.9]])


def test_first_update_assigns_new_ids_in_order():
    tracker = ObjectTracker(TrackerConfig())
    update = tracker.update(CENTROIDS, SIZES, now_s=0.0)
    assert update.ids == (1, 2, 3)
    assert update.new_ids == (1, 2, 3)
    assert update.removed_ids == ()
    assert tracker.active_ids == (1, 2, 3)


def test_ids_follow_objects_when_order_changes_and_objects_move_slightly():
    tracker = ObjectTracker(TrackerConfig(max_match_cost_m=0.1))
    tracker.update(CENTROIDS, SIZES, now_s=0.0)
    rng = np.random.default_rng(0)
    order = [2, 0, 1]
    moved = CENTROIDS[order] + rng.uniform(-0.01, 0.01, size=(3, 3))
    update = tracker.update(moved, SIZES[order], now_s=1.0)
    assert update.ids == (3, 1, 2)
    assert update.new_ids == () and update.removed_ids == ()


def test_hungarian_beats_greedy_assignment():
    # Greedy cheapest-pair-first would give the new object at x=0.04 to track A (0.04) and leave
    # the one at x=-0.05 unmatched (0.15 to B > gate); the optimal assignment keeps both tracks.
    config = TrackerConfig(max_match_cost_m=0.1, size_weight=0.0)
    tracker = ObjectTracker(config)
    size = np.full((2, 3), 0.1)
    tracker.update(np.array([[0.0, 0, 1], [0.1, 0, 1]]), size, now_s=0.0)
    update = tracker.update(np.array([[0.04, 0, 1], [-0.05, 0, 1]]), size, now_s=0.1)
    assert update.ids == (2, 1)
    assert update.new_ids == ()


def test_size_difference_prevents_a_match():
    tracker = ObjectTracker(TrackerConfig(max_match_cost_m=0.15, size_weight=1.0))
    tracker.update(CENTROIDS[:1], SIZES[:1], now_s=0.0)
    # Same place, object twice as tall (size difference 0.2 m > gate): a different object.
    update = tracker.update(CENTROIDS[:1], np.array([[0.1, 0.1, 0.4]]), now_s=0.5)
    assert update.ids == (2,) and update.new_ids == (2,)
    assert tracker.active_ids == (1, 2)


def test_far_object_gets_new_id_and_ids_are_never_reused():
    tracker = ObjectTracker(TrackerConfig(object_timeout_s=5.0))
    tracker.update(CENTROIDS[:2], SIZES[:2], now_s=0.0)
    update = tracker.update(np.array([[5.0, 5.0, 5.0]]), SIZES[:1], now_s=1.0)
    assert update.ids == (3,)
    # Tracks 1, 2 not seen since t=0, track 3 since t=1: at t=5.5 only 1 and 2 expire.
    update = tracker.update(np.zeros((0, 3)), np.zeros((0, 3)), now_s=5.5)
    assert update.ids == () and update.removed_ids == (1, 2)
    assert tracker.active_ids == (3,)
    # Object 1 comes back after expiry: it gets a fresh id, never an old one.
    update = tracker.update(CENTROIDS[:1], SIZES[:1], now_s=6.0)
    assert update.ids == (4,)


def test_unmatched_track_survives_until_timeout():
    tracker = ObjectTracker(TrackerConfig(object_timeout_s=2.0))
    tracker.update(CENTROIDS, SIZES, now_s=0.0)
    update = tracker.update(CENTROIDS[:2], SIZES[:2], now_s=1.5)  # object 3 occluded
    assert update.ids == (1, 2) and update.removed_ids == ()
    assert tracker.expire(now_s=2.0) == ()
    assert tracker.expire(now_s=3.4) == (3,)
    assert tracker.active_ids == (1, 2)


def test_bad_input_raises():
    tracker = ObjectTracker(TrackerConfig())
    with pytest.raises(ValueError, match="centroids must be"):
        tracker.update(np.zeros((2, 2)), np.zeros((2, 3)), now_s=0.0)
    with pytest.raises(ValueError, match="2 centroids but 1 sizes"):
        tracker.update(np.zeros((2, 3)), np.zeros((1, 3)), now_s=0.0)
    with pytest.raises(ValueError, match="finite"):
        tracker.update(np.full((1, 3), np.nan), np.zeros((1, 3)), now_s=0.0)
    with pytest.raises(ValueError, match="object_timeout_s"):
        TrackerConfig(object_timeout_s=0.0)
    with pytest.raises(ValueError, match="max_match_cost_m"):
        TrackerConfig(max_match_cost_m=-1.0)
