"""Windows: which windows a record falls in, when a window closes, how sessions merge. Pure code.

The boundary rules are Kafka Streams' own, so results can be checked against its documentation:

- **Time windows** (tumbling and hopping, ``TimeWindows``) are end-exclusive: a window starting at
  ``s`` holds timestamps ``s <= t < s + size``; starts are multiples of ``advance`` (epoch-aligned)
  and never negative.
- **Sliding windows** (KIP-450, ``SlidingWindows``) are inclusive at both ends: a window
  ``[start, end]`` spans ``time_difference`` milliseconds, ``end - start == time_difference``. Only the
  windows whose contents differ are kept: for every record at ``t`` the window ending at ``t`` and the
  window starting at ``t + 1`` (when it holds anything).
- **Session windows** (``SessionWindows``) are inclusive at both ends, ``[first, last]`` timestamp of
  their records; a record within ``inactivity_gap`` of a session joins it, and a record that
  bridges two sessions merges them.
- **Grace** (KIP-633): a window closes when stream time reaches its exclusive end plus ``grace``
  (time windows: ``stream_time >= end + grace``; inclusive windows: ``stream_time > end + grace``).
  A record for a closed window is late: dropped and counted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

__all__ = [
    "JoinWindows",
    "SessionWindows",
    "SlidingWindows",
    "TimeWindows",
    "Window",
    "Windowed",
    "merge_session",
]


class Window(NamedTuple):
    """A window's bounds in milliseconds; ``end`` is exclusive for time windows, inclusive otherwise."""

    start: int
    end: int


class Windowed(NamedTuple):
    """A key of a windowed aggregate: the record key and its window."""

    key: Any
    window: Window

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "start": self.window.start, "end": self.window.end}


def _positive(name: str, value: int, *, zero: bool = False) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0 or (value == 0 and not zero):
        raise ValueError(
            f"{name} must be a {'non-negative' if zero else 'positive'} integer of ms, not {value!r}"
        )
    return value


@dataclass(frozen=True, slots=True)
class TimeWindows:
    """Tumbling (``advance == size``) or hopping windows of ``size`` ms, epoch-aligned, end-exclusive."""

    size: int
    advance: int
    grace: int = 0

    @classmethod
    def of(cls, size_ms: int, *, grace_ms: int = 0) -> TimeWindows:
        """Tumbling windows (Kafka's ``TimeWindows.ofSizeAndGrace``)."""
        return cls(_positive("size", size_ms), size_ms, _positive("grace", grace_ms, zero=True))

    def advance_by(self, advance_ms: int) -> TimeWindows:
        """Hopping windows that start every ``advance_ms`` (``0 < advance <= size``)."""
        if not 0 < _positive("advance", advance_ms) <= self.size:
            raise ValueError(f"advance must be in (0, size={self.size}], not {advance_ms}")
        return TimeWindows(self.size, advance_ms, self.grace)

    def with_grace(self, grace_ms: int) -> TimeWindows:
        return TimeWindows(self.size, self.advance, _positive("grace", grace_ms, zero=True))

    def windows_for(self, timestamp: int) -> list[Window]:
        """Every window holding ``timestamp``, oldest first."""
        if timestamp < 0:
            return []
        last_start = timestamp - timestamp % self.advance
        first_start = max(0, timestamp - self.size + 1)
        # The smallest multiple of advance at or above first_start.
        start = -(-first_start // self.advance) * self.advance
        return [Window(s, s + self.size) for s in range(start, last_start + 1, self.advance)]

    def closed(self, window: Window, stream_time: int) -> bool:
        """True once stream time passed the window's end plus grace (KIP-633)."""
        return stream_time >= window.end + self.grace

    @property
    def retention(self) -> int:
        """How long behind stream time a window can still change."""
        return self.size + self.grace


@dataclass(frozen=True, slots=True)
class SlidingWindows:
    """Sliding windows of ``time_difference`` ms, inclusive at both ends (KIP-450)."""

    time_difference: int
    grace: int = 0

    @classmethod
    def of(cls, time_difference_ms: int, *, grace_ms: int = 0) -> SlidingWindows:
        return cls(_positive("time_difference", time_difference_ms), _positive("grace", grace_ms, zero=True))

    def windows_for(self, timestamps: Iterable[int], new: int) -> set[Window]:
        """The distinct windows whose contents a record at ``new`` changes, given the key's timestamps.

        Kafka keeps one window ending at each record's timestamp and one starting right after it; a
        new record at ``new`` belongs to every such window covering it, and adds its own two.
        """
        d = self.time_difference
        candidates = {Window(max(0, new - d), new), Window(new + 1, new + 1 + d)}
        for t in timestamps:
            for w in (Window(max(0, t - d), t), Window(t + 1, t + 1 + d)):
                if w.start <= new <= w.end:
                    candidates.add(w)
        return candidates

    def closed(self, window: Window, stream_time: int) -> bool:
        return stream_time > window.end + self.grace

    @property
    def retention(self) -> int:
        return self.time_difference + self.grace + 1


@dataclass(frozen=True, slots=True)
class SessionWindows:
    """Sessions of activity separated by more than ``inactivity_gap`` ms, inclusive at both ends."""

    inactivity_gap: int
    grace: int = 0

    @classmethod
    def with_inactivity_gap(cls, gap_ms: int, *, grace_ms: int = 0) -> SessionWindows:
        return cls(_positive("inactivity_gap", gap_ms), _positive("grace", grace_ms, zero=True))

    def closed(self, window: Window, stream_time: int) -> bool:
        return stream_time > window.end + self.grace

    @property
    def retention(self) -> int:
        return self.inactivity_gap + self.grace + 1


def merge_session(sessions: Iterable[Window], timestamp: int, gap: int) -> tuple[Window, list[Window]]:
    """Return the session a record at ``timestamp`` ends up in and the existing sessions merged into it.

    A session ``[s, e]`` takes the record when ``s - gap <= timestamp <= e + gap``; all such sessions
    and the record become one.
    """
    merged = [w for w in sessions if w.start - gap <= timestamp <= w.end + gap]
    start = min([timestamp, *(w.start for w in merged)])
    end = max([timestamp, *(w.end for w in merged)])
    return Window(start, end), merged


@dataclass(frozen=True, slots=True)
class JoinWindows:
    """A stream-stream join window: records join when ``-before <= t_other - t_this <= after``."""

    before: int
    after: int
    grace: int = 0

    @classmethod
    def of(cls, difference_ms: int, *, grace_ms: int = 0) -> JoinWindows:
        """Symmetric join window (Kafka's ``JoinWindows.ofTimeDifferenceAndGrace``), inclusive."""
        d = _positive("difference", difference_ms, zero=True)
        return cls(d, d, _positive("grace", grace_ms, zero=True))

    def joins(self, this_ts: int, other_ts: int) -> bool:
        return -self.before <= other_ts - this_ts <= self.after

    @property
    def retention(self) -> int:
        return max(self.before, self.after) + self.grace + 1
