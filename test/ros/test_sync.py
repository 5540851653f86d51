"""Approximate-time synchronisation, staleness from arrival times and the latest-set slot (pure, no
rclpy: every time is given explicitly)."""

from __future__ import annotations

import pytest

from scenegen_ros.sync import (
    ApproximateTimeSynchronizer,
    ArrivalMonitor,
    LatestSlot,
    StalenessConfig,
    StreamKey,
    StreamKind,
    SyncConfig,
    TimerLateness,
)

MS = 1_000_000
IMG0 = StreamKey(0, StreamKind.IMAGE)
DEP0 = StreamKey(0, StreamKind.DEPTH)
IMG1 = StreamKey(1, StreamKind.IMAGE)


def make_sync(slop_s=0.01, queue_size=5, streams=(IMG0, DEP0, IMG1)):
    return ApproximateTimeSynchronizer(list(streams), SyncConfig(slop_s, queue_size))


def make_monitor(timeout_s=2.0, periods=3.0, window=9, streams=(IMG0, DEP0, IMG1)):
    return ArrivalMonitor(list(streams), StalenessConfig(timeout_s, periods, window), start_s=0.0)


def stale_streams(monitor: ArrivalMonitor, now_s: float, executor_lag_s: float = 0.0):
    return tuple(silence.stream for silence in monitor.stale(now_s, executor_lag_s))


def test_exact_stamps_make_a_set_once_every_stream_arrived():
    sync = make_sync()
    assert sync.add(IMG0, 100 * MS, "a") is None
    assert sync.add(DEP0, 100 * MS, "d") is None
    synced = sync.add(IMG1, 100 * MS, "b")
    assert synced is not None
    assert synced.stamp_ns == 100 * MS
    assert [synced.payload(k) for k in (IMG0, DEP0, IMG1)] == ["a", "d", "b"]
    assert synced.spread_ns == 0
    assert sync.sets_emitted == 1 and sync.messages_dropped == 0


def test_stamps_within_slop_match_and_outside_do_not():
    sync = make_sync(slop_s=0.010)
    sync.add(IMG0, 100 * MS, "a")
    sync.add(DEP0, 109 * MS, "d")
    assert sync.add(IMG1, 111 * MS, "b-late") is None  # spread 11 ms > 10 ms
    synced = sync.add(IMG1, 104 * MS, "b")
    assert synced is not None and synced.payload(IMG1) == "b"
    assert synced.spread_ns == 9 * MS


def test_newest_complete_set_wins_and_older_messages_are_consumed():
    sync = make_sync(slop_s=0.005)
    for stamp in (100, 200, 300):
        sync.add(IMG0, stamp * MS, f"a{stamp}")
        sync.add(DEP0, stamp * MS, f"d{stamp}")
    # The second view only delivers 200 and 300, 300 first: the newest anchor that completes wins.
    synced = sync.add(IMG1, 300 * MS, "b300")
    assert synced is not None and synced.stamp_ns == 300 * MS
    assert synced.payload(IMG0) == "a300" and synced.payload(DEP0) == "d300"
    # a100, a200, d100, d200 were never used: dropped.
    assert sync.messages_dropped == 4
    # A late message for an older stamp can never form a set any more.
    assert sync.add(IMG1, 200 * MS, "b200") is None
    assert sync.messages_dropped == 5


def test_reference_message_not_newer_than_last_set_is_dropped():
    sync = make_sync(streams=(IMG0, IMG1))
    sync.add(IMG0, 100 * MS, "a")
    assert sync.add(IMG1, 100 * MS, "b") is not None
    assert sync.add(IMG0, 100 * MS, "a-again") is None
    assert sync.add(IMG1, 100 * MS, "b-again") is None
    assert sync.messages_dropped == 1  # the repeated reference; the partner waits (within slop)


def test_out_of_order_arrival_is_sorted():
    sync = make_sync(streams=(IMG0, IMG1), slop_s=0.0)
    sync.add(IMG1, 300 * MS, "b300")
    sync.add(IMG1, 100 * MS, "b100")
    synced = sync.add(IMG0, 100 * MS, "a100")
    assert synced is not None and synced.payload(IMG1) == "b100"
    synced = sync.add(IMG0, 300 * MS, "a300")
    assert synced is not None and synced.payload(IMG1) == "b300"


def test_queue_is_bounded():
    sync = make_sync(queue_size=3, streams=(IMG0, IMG1))
    for stamp in range(10):
        assert sync.add(IMG0, stamp * 100 * MS, stamp) is None
    assert sync.messages_dropped == 7
    assert sync.add(IMG1, 200 * MS, "old") is None  # partner for a stamp no longer buffered
    synced = sync.add(IMG1, 900 * MS, "new")
    assert synced is not None and synced.payload(IMG0) == 9


def test_stale_stream_detection_uses_arrival_clock():
    monitor = make_monitor(timeout_s=2.0)
    assert stale_streams(monitor, now_s=1.0) == ()
    # Nothing ever arrived: after the timeout every stream is stale.
    assert set(stale_streams(monitor, now_s=2.5)) == {IMG0, DEP0, IMG1}
    for key in (IMG0, DEP0, IMG1):
        monitor.arrived(key, now_s=3.0)
    monitor.arrived(IMG0, now_s=4.5)
    monitor.arrived(DEP0, now_s=4.5)
    # View 1 stopped publishing at t=3.0 (one message: no period yet, the timeout alone applies).
    assert stale_streams(monitor, now_s=4.9) == ()
    (silence,) = monitor.stale(now_s=5.1)
    assert silence.stream == IMG1 and silence.period_s is None
    assert silence.silent_s == pytest.approx(2.1) and silence.limit_s == 2.0


def test_tolerance_grows_with_the_observed_period():
    """A 0.25 Hz stream is not stale between its frames; a 2 Hz stream keeps the timeout."""
    monitor = make_monitor(timeout_s=2.0, periods=3.0, streams=(IMG0, IMG1))
    for k in range(6):
        monitor.arrived(IMG0, now_s=k * 4.0)
    for k in range(41):
        monitor.arrived(IMG1, now_s=k * 0.5)
    assert monitor.period_s(IMG0) == pytest.approx(4.0) and monitor.limit_s(IMG0) == pytest.approx(12.0)
    assert monitor.period_s(IMG1) == pytest.approx(0.5) and monitor.limit_s(IMG1) == 2.0
    # Both streams' last message came at 20 s.
    assert stale_streams(monitor, now_s=21.9) == ()
    assert stale_streams(monitor, now_s=22.1) == (IMG1,)
    assert stale_streams(monitor, now_s=24.5) == (IMG1,)  # IMG0 has missed one frame: not stale
    assert stale_streams(monitor, now_s=32.1) == (IMG0, IMG1)


def test_period_is_the_median_so_a_stall_and_its_burst_do_not_move_it():
    """2 Hz, then a 3 s stall of the taking side, then the 5 queued messages in one burst."""
    monitor = make_monitor(window=9, streams=(IMG0,))
    times = [0.0, 0.5, 1.0, 1.5, 2.0, 5.0, 5.001, 5.002, 5.003, 5.004, 5.5, 6.0, 6.5]
    for t in times:
        monitor.arrived(IMG0, now_s=t)
    # The last 9 intervals: 0.5, the 3 s stall, four of 1 ms, 0.496, 0.5, 0.5: median 0.496.
    assert monitor.period_s(IMG0) == pytest.approx(0.496)
    assert monitor.limit_s(IMG0) == 2.0


def test_a_lossy_stream_is_judged_by_the_rate_it_delivers():
    """A 2 Hz camera whose transport delivers one frame in four: 2 s gaps are its normal rhythm."""
    monitor = make_monitor(timeout_s=2.0, periods=3.0, streams=(IMG0,))
    for k in range(8):
        monitor.arrived(IMG0, now_s=k * 2.0 + (0.5 if k % 3 == 0 else 0.0))
    assert monitor.period_s(IMG0) == pytest.approx(2.0)
    assert stale_streams(monitor, now_s=14.0 + 2.4) == ()  # the old fixed 2 s limit would warn here
    assert stale_streams(monitor, now_s=14.0 + 6.1) == (IMG0,)


def test_time_the_executor_could_not_take_messages_is_not_the_streams_silence():
    """The diagnostics timer runs 2.5 s late: the 2 Hz messages of that time wait in the queue,
    unstamped; with the lateness forgiven the stream is not stale, and once the queue is taken
    (the next, punctual run) it is fresh again."""
    monitor = make_monitor(timeout_s=1.0, streams=(IMG0,))
    lateness = TimerLateness(period_s=1.0, start_s=0.0)
    for k in range(7):
        monitor.arrived(IMG0, now_s=k * 0.5)
    assert lateness.run(1.0) == 0.0 and lateness.run(2.0) == 0.0 and lateness.run(3.0) == 0.0
    lag = lateness.run(6.5)  # due at 4.0
    assert lag == pytest.approx(2.5)
    assert stale_streams(monitor, now_s=6.5) == (IMG0,)  # what the plain silence would say
    assert stale_streams(monitor, now_s=6.5, executor_lag_s=lag) == ()
    for t in (6.51, 6.52, 6.53, 6.54, 6.55):  # the queued messages, taken after the timer
        monitor.arrived(IMG0, now_s=t)
    assert lateness.run(7.5) == 0.0
    assert stale_streams(monitor, now_s=7.5) == ()
    # A stream that really stopped is still reported once its silence exceeds limit + lateness.
    assert stale_streams(monitor, now_s=6.55 + 1.6 + 0.5, executor_lag_s=0.5) == (IMG0,)


def test_timer_lateness_counts_from_the_previous_run():
    lateness = TimerLateness(period_s=0.2, start_s=10.0)
    assert lateness.run(10.2) == 0.0
    assert lateness.run(10.39) == 0.0  # early (jitter) is not late
    assert lateness.run(11.09) == pytest.approx(0.5)
    assert lateness.run(11.29) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="period_s"):
        TimerLateness(period_s=0.0, start_s=0.0)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="unknown stream"):
        make_sync(streams=(IMG0,)).add(IMG1, 0, None)
    with pytest.raises(ValueError, match="duplicate"):
        make_sync(streams=(IMG0, IMG0))
    with pytest.raises(ValueError, match="at least one"):
        make_sync(streams=())
    with pytest.raises(ValueError, match="slop_s"):
        SyncConfig(slop_s=-1.0)
    with pytest.raises(ValueError, match="queue_size"):
        SyncConfig(queue_size=0)
    with pytest.raises(ValueError, match="timeout_s"):
        StalenessConfig(timeout_s=0.0)
    with pytest.raises(ValueError, match="periods"):
        StalenessConfig(periods=0.0)
    with pytest.raises(ValueError, match="window"):
        StalenessConfig(window=0)
    with pytest.raises(ValueError, match="unknown stream"):
        make_monitor(streams=(IMG0,)).arrived(IMG1, 0.0)
    with pytest.raises(ValueError, match="duplicate"):
        make_monitor(streams=(IMG0, IMG0))


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
    sync.add(DEP0, 93 * MS, "d93")
    sync.add(DEP0, 108 * MS, "d108")
    sync.add(IMG1, 108 * MS, "b108")
    synced = sync.add(IMG0, 100 * MS, "a100")
    assert synced is not None
    assert [synced.payload(k) for k in (IMG0, DEP0, IMG1)] == ["a100", "d108", "b108"]
    assert synced.spread_ns == 8 * MS
