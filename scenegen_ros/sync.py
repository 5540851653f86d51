"""Approximate-time synchronisation of the node's input streams (pure Python, no rclpy).

The node feeds every converted message into an `ApproximateTimeSynchronizer` keyed by a
`StreamKey` (view index + kind). A `SyncedSet` is emitted when every stream has a message whose
stamp lies within `slop_s` of the others; the newest such set wins and everything at or before
it is consumed. Sets go into a `LatestSlot`, which keeps only the newest unprocessed set so the
(slow) inference always works on fresh data; replaced sets are counted as dropped.

A stream that stops publishing blocks every set; `stale_streams(now_s)` names it so the node can
warn and report it on /diagnostics.

All times are passed in explicitly (stamps in integer nanoseconds, arrival clock in seconds) so
the logic is deterministic and testable without a clock or sleeps.
"""

from __future__ import annotations

import enum
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
    stream while waiting for partners (older ones are dropped). stale_timeout_s: a stream with
    no message for this long (wall clock, seconds) is reported stale."""

    slop_s: float = 0.05
    queue_size: int = 5
    stale_timeout_s: float = 2.0

    def __post_init__(self) -> None:
        if not self.slop_s >= 0:
            raise ValueError(f"slop_s must be >= 0, got {self.slop_s}")
        if self.queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {self.queue_size}")
        if not self.stale_timeout_s > 0:
            raise ValueError(f"stale_timeout_s must be > 0, got {self.stale_timeout_s}")


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

    Not thread-safe: the caller serialises `add` / `stale_streams` (the node does it under its lock).
    The first stream is the reference: candidate sets are anchored on its messages, newest first.
    """

    def __init__(self, streams: Sequence[StreamKey], config: SyncConfig, start_s: float) -> None:
        if not streams:
            raise ValueError("at least one stream is needed")
        if len(set(streams)) != len(streams):
            raise ValueError(f"duplicate streams in {list(streams)}")
        self.config = config
        self.streams: tuple[StreamKey, ...] = tuple(streams)
        self._buffers: dict[StreamKey, deque[StampedItem]] = {s: deque() for s in self.streams}
        self._last_arrival_s: dict[StreamKey, float] = {s: start_s for s in self.streams}
        self._last_emitted_ns: int | None = None
        self.messages_dropped = 0
        self.sets_emitted = 0

    def add(self, stream: StreamKey, stamp_ns: int, payload: Any, now_s: float) -> SyncedSet | None:
        """Buffer one message (arrived at wall time `now_s`) and return the newest complete set
        it completes, or None. Messages at or before the last emitted set's stamp are dropped."""
        if stream not in self._buffers:
            raise ValueError(f"unknown stream {stream}; configured: {[str(s) for s in self.streams]}")
        self._last_arrival_s[stream] = now_s
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

    def stale_streams(self, now_s: float) -> tuple[StreamKey, ...]:
        """Streams without a message for longer than `stale_timeout_s` (since start if never)."""
        limit = self.config.stale_timeout_s
        return tuple(s for s in self.streams if now_s - self._last_arrival_s[s] > limit)

    def seconds_since_last(self, stream: StreamKey, now_s: float) -> float:
        return now_s - self._last_arrival_s[stream]

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
