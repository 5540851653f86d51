"""Approximate-time synchronisation of the node's input streams (pure Python, no rclpy).

The node feeds every converted message into an `ApproximateTimeSynchronizer` keyed by a
`StreamKey` (view index + kind). A `SyncedSet` is emitted when every stream has a message whose
stamp lies within `slop_s` of the others; the newest such set wins and everything at or before
it is consumed. Sets go into a `LatestSlot`, which keeps only the newest unprocessed set so the
(slow) inference always works on fresh data; replaced sets are counted as dropped.

A stream that stops publishing blocks every set; an `ArrivalMonitor` names it so the node can warn
and report it on /diagnostics. It judges silence from arrival times (the monotonic clock read at
the top of the subscription callback), against a limit that grows with the stream's observed
period, and forgives the time the node's executor could not run callbacks (`TimerLateness`): a
busy node must not blame a camera for messages that waited in its own queues.

All times are passed in explicitly (stamps in integer nanoseconds, arrival clock in seconds) so
the logic is deterministic and testable without a clock or sleeps.
"""

from __future__ import annotations

import enum
import statistics
from collections import deque
from dataclasses import dataclass
from typing import Any, Generic, Mapping, Sequence, TypeVar

T = TypeVar("T")


class StreamKind(str, enum.Enum):
    """Which per-view topic a message came from (CameraInfo is latched, not synchronised)."""

    IMAGE = "image"
    DEPTH = "depth"
    MASK = "mask"


@dataclass(frozen=True, order=True)
class StreamKey:
    """One synchronised input stream: view index (0 = reference camera) and kind."""

    view: int
    kind: StreamKind

    def __str__(self) -> str:
        return f"view {self.view} {self.kind.value}"


@dataclass(frozen=True)
class SyncConfig:
    """slop_s: max spread of stamps inside one set, seconds. queue_size: messages buffered per
    stream while waiting for partners (older ones are dropped)."""

    slop_s: float = 0.05
    queue_size: int = 5

    def __post_init__(self) -> None:
        if not self.slop_s >= 0:
            raise ValueError(f"slop_s must be >= 0, got {self.slop_s}")
        if self.queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {self.queue_size}")


@dataclass(frozen=True)
class StalenessConfig:
    """When a stream counts as stale (all times on the arrival clock, seconds).

    timeout_s: a stream is stale only when silent for longer than this, and
    periods: longer than this many of its observed inter-arrival periods as well, so a slow or lossy
        stream (a 0.2 Hz camera, or one whose transport drops 3 frames in 4) is not reported between
        the frames it does deliver.
    window: recent inter-arrival intervals per stream whose median is the observed period (the
        median, because a stall followed by a burst of queued messages gives outliers both ways).
    """

    timeout_s: float = 2.0
    periods: float = 3.0
    window: int = 9

    def __post_init__(self) -> None:
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, got {self.timeout_s}")
        if not self.periods > 0:
            raise ValueError(f"periods must be > 0, got {self.periods}")
        if self.window < 1:
            raise ValueError(f"window must be >= 1, got {self.window}")


@dataclass(frozen=True)
class StampedItem:
    """A converted message: stamp in integer nanoseconds (header stamp) and its payload."""

    stamp_ns: int
    payload: Any


@dataclass(frozen=True)
class SyncedSet:
    """One message per stream with stamps within the slop.

    stamp_ns: stamp of the reference stream's message (nanoseconds); items: per stream.
    """

    stamp_ns: int
    items: Mapping[StreamKey, StampedItem]

    def payload(self, key: StreamKey) -> Any:
        return self.items[key].payload

    @property
    def spread_ns(self) -> int:
        stamps = [item.stamp_ns for item in self.items.values()]
        return max(stamps) - min(stamps)


class ApproximateTimeSynchronizer:
    """Matches messages of several streams by header stamp.

    Not thread-safe: the caller serialises `add` (the node does it under its lock).
    The first stream is the reference: candidate sets are anchored on its messages, newest first.
    """

    def __init__(self, streams: Sequence[StreamKey], config: SyncConfig) -> None:
        self.streams: tuple[StreamKey, ...] = _check_streams(streams)
        self.config = config
        self._buffers: dict[StreamKey, deque[StampedItem]] = {s: deque() for s in self.streams}
        self._last_emitted_ns: int | None = None
        self.messages_dropped = 0
        self.sets_emitted = 0

    def add(self, stream: StreamKey, stamp_ns: int, payload: Any) -> SyncedSet | None:
        """Buffer one message and return the newest complete set it completes, or None. Messages
        at or before the last emitted set's stamp are dropped."""
        if stream not in self._buffers:
            raise ValueError(f"unknown stream {stream}; configured: {[str(s) for s in self.streams]}")
        if self._is_too_old(stream, stamp_ns):
            self.messages_dropped += 1
            return None
        buffer = self._buffers[stream]
        buffer.append(StampedItem(int(stamp_ns), payload))
        if len(buffer) > 1 and buffer[-1].stamp_ns < buffer[-2].stamp_ns:
            # Out-of-order arrival (several publishers): keep the buffer sorted by stamp.
            sorted_items = sorted(buffer, key=lambda item: item.stamp_ns)
            buffer.clear()
            buffer.extend(sorted_items)
        while len(buffer) > self.config.queue_size:
            buffer.popleft()
            self.messages_dropped += 1
        return self._match()

    def _is_too_old(self, stream: StreamKey, stamp_ns: int) -> bool:
        # Sets only move forward in time: a new anchor must be newer than the last emitted one,
        # and a partner older than (last anchor - slop) can never be within slop of such an anchor.
        if self._last_emitted_ns is None:
            return False
        if stream == self.streams[0]:
            return stamp_ns <= self._last_emitted_ns
        return stamp_ns < self._last_emitted_ns - self._slop_ns

    @property
    def _slop_ns(self) -> int:
        return int(round(self.config.slop_s * 1e9))

    def _match(self) -> SyncedSet | None:
        reference = self.streams[0]
        if any(not self._buffers[stream] for stream in self.streams[1:]):
            return None
        for anchor in reversed(self._buffers[reference]):
            chosen = self._partners(anchor)
            if chosen is not None:
                self._consume(chosen)
                self.sets_emitted += 1
                self._last_emitted_ns = anchor.stamp_ns
                return SyncedSet(anchor.stamp_ns, chosen)
        return None

    def _partners(self, anchor: StampedItem) -> dict[StreamKey, StampedItem] | None:
        """One message per stream with all stamps within the slop of each other, the anchor included.

        Picking each stream's closest message independently can fail where a set exists (anchor 100,
        slop 10, A = {93, 108}, B = {108}: closest A is 93, spread 15). So every window
        [w, w + slop] that contains the anchor, w at a buffered stamp, is tried; in each, every
        stream takes its message closest to the anchor; the window with the smallest spread wins.
        """
        slop = self._slop_ns
        others = self.streams[1:]
        starts = sorted(
            {anchor.stamp_ns}
            | {
                item.stamp_ns
                for stream in others
                for item in self._buffers[stream]
                if anchor.stamp_ns - slop <= item.stamp_ns <= anchor.stamp_ns
            }
        )
        best, best_spread = None, None
        for start in starts:
            chosen = {self.streams[0]: anchor}
            for stream in others:
                inside = [item for item in self._buffers[stream] if start <= item.stamp_ns <= start + slop]
                if not inside:
                    break
                chosen[stream] = min(inside, key=lambda item: abs(item.stamp_ns - anchor.stamp_ns))
            else:
                stamps = [item.stamp_ns for item in chosen.values()]
                spread = max(stamps) - min(stamps)
                if best_spread is None or spread < best_spread:
                    best, best_spread = chosen, spread
        return best

    def _consume(self, chosen: Mapping[StreamKey, StampedItem]) -> None:
        """Remove the used messages and everything older; older unused ones count as dropped."""
        for stream, used in chosen.items():
            buffer = self._buffers[stream]
            while buffer and buffer[0].stamp_ns <= used.stamp_ns:
                item = buffer.popleft()
                if item is not used:
                    self.messages_dropped += 1


def _check_streams(streams: Sequence[StreamKey]) -> tuple[StreamKey, ...]:
    if not streams:
        raise ValueError("at least one stream is needed")
    if len(set(streams)) != len(streams):
        raise ValueError(f"duplicate streams in {list(streams)}")
    return tuple(streams)


@dataclass(frozen=True)
class Silence:
    """A stale stream: silent_s since its last message (or since start), over its limit_s; both
    seconds. period_s: its observed inter-arrival period, None before two messages."""

    stream: StreamKey
    silent_s: float
    limit_s: float
    period_s: float | None


class ArrivalMonitor:
    """Arrival times of every stream, the observed period of each, and which ones are stale.

    Not thread-safe: the node serialises `arrived` (subscription callbacks) and `stale` (its
    diagnostics timer) under its lock.
    """

    def __init__(self, streams: Sequence[StreamKey], config: StalenessConfig, start_s: float) -> None:
        """start_s: arrival-clock time the streams were subscribed; silence counts from it until a
        stream's first message."""
        self.streams = _check_streams(streams)
        self.config = config
        self._last_s: dict[StreamKey, float | None] = {s: None for s in self.streams}
        self._start_s = start_s
        self._intervals: dict[StreamKey, deque[float]] = {s: deque(maxlen=config.window) for s in self.streams}

    def arrived(self, stream: StreamKey, now_s: float) -> None:
        """Record one message of `stream` taken at arrival-clock time `now_s` (seconds)."""
        if stream not in self._last_s:
            raise ValueError(f"unknown stream {stream}; configured: {[str(s) for s in self.streams]}")
        last = self._last_s[stream]
        if last is not None:
            self._intervals[stream].append(max(now_s - last, 0.0))
        self._last_s[stream] = now_s

    def period_s(self, stream: StreamKey) -> float | None:
        """Median of the stream's recent inter-arrival intervals, seconds; None before two messages."""
        intervals = self._intervals[stream]
        return statistics.median(intervals) if intervals else None

    def limit_s(self, stream: StreamKey) -> float:
        """Silence allowed to `stream`: max(timeout_s, periods x its observed period), seconds."""
        period = self.period_s(stream)
        if period is None:
            return self.config.timeout_s
        return max(self.config.timeout_s, self.config.periods * period)

    def silent_s(self, stream: StreamKey, now_s: float) -> float:
        """Seconds since the stream's last message (since start if none came yet)."""
        last = self._last_s[stream]
        return now_s - (self._start_s if last is None else last)

    def stale(self, now_s: float, executor_lag_s: float = 0.0) -> tuple[Silence, ...]:
        """Streams silent for longer than their limit plus `executor_lag_s`, in configuration order.

        executor_lag_s: seconds the node could not run callbacks just before `now_s` (see
        TimerLateness): messages that waited in its queues meanwhile are not stamped yet, and their
        silence is the node's, not the stream's.
        """
        lag = max(executor_lag_s, 0.0)
        silences = (
            Silence(s, self.silent_s(s, now_s), self.limit_s(s), self.period_s(s)) for s in self.streams
        )
        return tuple(x for x in silences if x.silent_s > x.limit_s + lag)


class TimerLateness:
    """How late each run of a periodic callback starts, from its own run times (seconds).

    The run due one period after the previous one (or after `start_s`) that starts at `now_s` is
    late by their difference: for that long the executor could not run this callback, and nothing
    else of its callback group either.
    """

    def __init__(self, period_s: float, start_s: float) -> None:
        if not period_s > 0:
            raise ValueError(f"period_s must be > 0, got {period_s}")
        self.period_s = period_s
        self._previous_s = start_s

    def run(self, now_s: float) -> float:
        """Record a run starting at `now_s`; returns its lateness (>= 0), seconds."""
        lateness = max(now_s - (self._previous_s + self.period_s), 0.0)
        self._previous_s = now_s
        return lateness


class LatestSlot(Generic[T]):
    """Holds at most one unprocessed item; a newer item replaces (drops) the waiting one.

    Not thread-safe: the node guards it with its own condition variable, which also wakes the
    worker for service requests.
    """

    def __init__(self) -> None:
        self._item: T | None = None
        self.dropped = 0
        self.accepted = 0

    def put(self, item: T) -> T | None:
        """Store `item`; returns the unprocessed item it replaced (counted in `dropped`) or None."""
        replaced = self._item
        if replaced is not None:
            self.dropped += 1
        self._item = item
        self.accepted += 1
        return replaced

    def take(self) -> T | None:
        item, self._item = self._item, None
        return item

    @property
    def pending(self) -> bool:
        return self._item is not None
