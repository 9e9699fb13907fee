"""The records every system is given: JSON events of an exact encoded size, built before the clock starts."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

_EMPTY = len(orjson.dumps({"seq": "0000000000", "pad": ""}))


def event(seq: int, size: int) -> dict[str, str]:
    """Return a JSON object whose compact encoding is exactly ``size`` bytes (size >= 29)."""
    if size < _EMPTY:
        raise ValueError(f"an event is at least {_EMPTY} bytes")
    return {"seq": f"{seq % 10**10:010d}", "pad": "x" * (size - _EMPTY)}


def batch_of(count: int, size: int) -> list[dict[str, str]]:
    return [event(seq, size) for seq in range(count)]


@dataclass(frozen=True, slots=True)
class Throughput:
    """What one timed loop moved: records and value bytes in seconds."""

    records: int
    value_bytes: int
    seconds: float

    @property
    def records_per_s(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0

    @property
    def mb_per_s(self) -> float:
        return self.value_bytes / self.seconds / 1e6 if self.seconds > 0 else 0.0
