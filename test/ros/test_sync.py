"""Approximate-time synchronisation and the latest-set slot (pure, no rclpy)."""

from __future__ import annotations

import pytest

from scenegen_ros.sync import (
    ApproximateTimeSynchronizer,
    LatestSlot,
    StreamKey,
    StreamKind,
    SyncConfig,
)

MS = 1_000_000
IMG0 = StreamKey(0, StreamKind.IMAGE)
DEP0 = StreamKey(0, StreamKind.DEPTH)
IMG1 = StreamKey(1, StreamKind.IMAGE)


def make_sync(slop_s=0.01, queue_size=5, stale_timeout_s=2.0, streams=(IMG0, DEP0, IMG1)):
    return ApproximateTimeSynchronizer(list(streams), SyncConfig(slop_s, queue_size, stale_timeout_s), start_s=0.0)


def test_exact_stamps_make_a_set_once_every_stream_arrived():
    sync = make_sync()
    assert sync.add(IMG0, 100 * MS, "a", now_s=0.1) is None
    assert sync.add(DEP0, 100 * MS, "d", now_s=0.1) is None
    synced = sync.add(IMG1, 100 * MS, "b", now_s=0.1)
    assert synced is not None
    assert synced.stamp_ns == 100 * MS
    assert [synced.payload(k) for k in (IMG0, DEP0, IMG1)] == ["a", "d", "b"]
    assert synced.spread_ns == 0
    assert sync.sets_emitted == 1 and sync.messages_dropped == 0


def test_stamps_within_slop_match_and_outside_do_not():
    sync = make_sync(slop_s=0.010)
    sync.add(IMG0, 100 * MS, "a", 0.0)
    sync.add(DEP0, 109 * MS, "d", 0.0)
    assert sync.add(IMG1, 111 * MS, "b-late", 0.0) is None  # spread 11 ms > 10 ms
    synced = sync.add(IMG1, 104 * MS, "b", 0.0)
    assert synced is not None and synced.payload(IMG1) == "b"
    assert synced.spread_ns == 9 * MS


def test_newest_complete_set_wins_and_older_messages_are_consumed():
    sync = make_sync(slop_s=0.005)
    for stamp in (100, 200, 300):
        sync.add(IMG0, stamp * MS, f"a{stamp}", 0.0)
        sync.add(DEP0, stamp * MS, f"d{stamp}", 0.0)
    # The second view only delivers 200 and 300, 300 first: the newest anchor that completes wins.
    synced = sync.add(IMG1, 300 * MS, "b300", 0.0)
    assert synced is not None and synced.stamp_ns == 300 * MS
    assert synced.payload(IMG0) == "a300" and synced.payload(DEP0) == "d300"
    # a100, a200, d100, d200 were never used: dropped.
    assert sync.messages_dropped == 4
    # A late message for an older stamp can never form a set any more.
    assert sync.add(IMG1, 200 * MS, "b200", 0.0) is None
    assert sync.messages_dropped == 5


def test_reference_message_not_newer_than_last_set_is_dropped():
    sync = make_sync(streams=(IMG0, IMG1))
    sync.add(IMG0, 100 * MS, "a", 0.0)
    assert sync.add(IMG1, 100 * MS, "b", 0.0) is not None
    assert sync.add(IMG0, 100 * MS, "a-again", 0.0) is None
    assert sync.add(IMG1, 100 * MS, "b-again", 0.0) is None
    assert sync.messages_dropped == 1  # the repeated reference; the partner waits (within slop)


def test_out_of_order_arrival_is_sorted():
    sync = make_sync(streams=(IMG0, IMG1), slop_s=0.0)
    sync.add(IMG1, 300 * MS, "b300", 0.0)
    sync.add(IMG1, 100 * MS, "b100", 0.0)
    synced = sync.add(IMG0, 100 * MS, "a100", 0.0)
    assert synced is not None and synced.payload(IMG1) == "b100"
    synced = sync.add(IMG0, 300 * MS, "a300", 0.0)
    assert synced is not None and synced.payload(IMG1) == "b300"


def test_queue_is_bounded():
    sync = make_sync(queue_size=3, streams=(IMG0, IMG1))
    for stamp in range(10):
        assert sync.add(IMG0, stamp * 100 * MS, stamp, 0.0) is None
    assert sync.messages_dropped == 7
    assert sync.add(IMG1, 200 * MS, "old", 0.0) is None  # partner for a stamp no longer buffered
    synced = sync.add(IMG1, 900 * MS, "new", 0.0)
    assert synced is not None and synced.payload(IMG0) == 9


def test_stale_stream_detection_uses_arrival_clock():
    sync = make_sync(stale_timeout_s=2.0)
    assert sync.stale_streams(now_s=1.0) == ()
    # Nothing ever arrived: after the timeout every stream is stale.
    assert set(sync.stale_streams(now_s=2.5)) == {IMG0, DEP0, IMG1}
    for key in (IMG0, DEP0, IMG1):
        sync.add(key, 100 * MS, key, now_s=3.0)
    sync.add(IMG0, 200 * MS, "a", now_s=4.5)
    sync.add(DEP0, 200 * MS, "d", now_s=4.5)
    # View 1 stopped publishing at t=3.0.
    assert sync.stale_streams(now_s=4.9) == ()
    assert sync.stale_streams(now_s=5.1) == (IMG1,)
    assert sync.seconds_since_last(IMG1, 5.1) == pytest.approx(2.1)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="unknown stream"):
        make_sync(streams=(IMG0,)).add(IMG1, 0, None, 0.0)
    with pytest.raises(ValueError, match="duplicate"):
        make_sync(streams=(IMG0, IMG0))
    with pytest.raises(ValueError, match="at least one"):
        make_sync(streams=())
    with pytest.raises(ValueError, match="slop_s"):
        SyncConfig(slop_s=-1.0)
    with pytest.raises(ValueError, match="queue_size"):
        SyncConfig(queue_size=0)
    with pytest.raises(ValueError, match="stale_timeout_s"):
        SyncConfig(stale_timeout_s=0.0)


def test_stream_key_text():
    assert str(StreamKey(2, StreamKind.MASK)) == "view 2 mask"


def test_latest_slot_replaces_unprocessed_item_and_counts_it():
    slot: LatestSlot[str] = LatestSlot()
    assert not slot.pending and slot.take() is None
    assert slot.put("set1") is None
    assert slot.put("set2") == "set1"
    assert slot.put("set3") == "set2"
    assert slot.dropped == 2 and slot.accepted == 3
    assert slot.take() == "set3"
    assert slot.take() is None
    assert slot.put("set4") is None
    assert slot.dropped == 2


def test_a_set_is_found_where_each_closest_partner_alone_would_miss_it():
    """Anchor 100, slop 10: depth {93, 108} and view 1 {108}. Depth's closest stamp (93) spreads the
    set to 15 > 10; the set {100, 108, 108} is within the slop and must be found."""
    sync = make_sync(slop_s=0.010)
    sync.add(DEP0, 93 * MS, "d93", 0.0)
    sync.add(DEP0, 108 * MS, "d108", 0.0)
    sync.add(IMG1, 108 * MS, "b108", 0.0)
    synced = sync.add(IMG0, 100 * MS, "a100", 0.0)
    assert synced is not None
    assert [synced.payload(k) for k in (IMG0, DEP0, IMG1)] == ["a100", "d108", "b108"]
    assert synced.spread_ns == 8 * MS
