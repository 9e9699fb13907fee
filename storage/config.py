"""Per-partition log configuration: Kafka's topic configs, in snake_case."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from storage.records import TimestampType

__all__ = ["CLEANUP_POLICIES", "LogConfig"]

CLEANUP_POLICIES = frozenset({"delete", "compact", "compact,delete"})

_DAY_MS = 24 * 60 * 60 * 1000


@dataclass(frozen=True, slots=True)
class LogConfig:
    """The settings of one partition log; defaults are Kafka's topic-config defaults."""

    segment_bytes: int = 1 << 30
    segment_ms: int = 7 * _DAY_MS
    segment_jitter_ms: int = 0
    segment_index_bytes: int = 10 * 1024 * 1024
    index_interval_bytes: int = 4096
    retention_ms: int = 7 * _DAY_MS  # -1 = keep forever
    retention_bytes: int = -1  # -1 = no size limit
    cleanup_policy: str = "delete"  # "delete" | "compact" | "compact,delete"
    delete_retention_ms: int = _DAY_MS
    min_cleanable_dirty_ratio: float = 0.5
    max_message_bytes: int = 1048588
    message_timestamp_type: TimestampType = TimestampType.CREATE_TIME
    flush_messages: int | None = None  # None = leave durability to the page cache
    flush_ms: int | None = None
    min_compaction_lag_ms: int = 0
    # KIP-937: how far a CreateTime record's timestamp may lie behind / ahead of the broker's clock.
    # Checked by the broker when it accepts records, not by the log (which stores what it is given).
    message_timestamp_before_max_ms: int = (1 << 63) - 1
    message_timestamp_after_max_ms: int = 3_600_000

    def __post_init__(self) -> None:
        if self.segment_bytes < 14:
            raise ValueError(f"segment.bytes must be at least 14, got {self.segment_bytes}")
        if self.segment_ms < 1:
            raise ValueError(f"segment.ms must be at least 1, got {self.segment_ms}")
        if self.segment_jitter_ms < 0:
            raise ValueError(f"segment.jitter.ms must be >= 0, got {self.segment_jitter_ms}")
        if self.segment_index_bytes < 8:
            raise ValueError(f"segment.index.bytes must be at least 8, got {self.segment_index_bytes}")
        if self.index_interval_bytes < 0:
            raise ValueError(f"index.interval.bytes must be >= 0, got {self.index_interval_bytes}")
        if self.retention_ms < -1:
            raise ValueError(f"retention.ms must be >= -1, got {self.retention_ms}")
        if self.retention_bytes < -1:
            raise ValueError(f"retention.bytes must be >= -1, got {self.retention_bytes}")
        if self.cleanup_policy not in CLEANUP_POLICIES:
            raise ValueError(
                f"cleanup.policy must be one of {sorted(CLEANUP_POLICIES)}, got {self.cleanup_policy!r}"
            )
        if self.delete_retention_ms < 0:
            raise ValueError(f"delete.retention.ms must be >= 0, got {self.delete_retention_ms}")
        if not 0.0 <= self.min_cleanable_dirty_ratio <= 1.0:
            raise ValueError(
                f"min.cleanable.dirty.ratio must be in [0, 1], got {self.min_cleanable_dirty_ratio}"
            )
        if self.max_message_bytes < 0:
            raise ValueError(f"max.message.bytes must be >= 0, got {self.max_message_bytes}")
        if self.flush_messages is not None and self.flush_messages < 1:
            raise ValueError(f"flush.messages must be >= 1, got {self.flush_messages}")
        if self.flush_ms is not None and self.flush_ms < 0:
            raise ValueError(f"flush.ms must be >= 0, got {self.flush_ms}")
        if self.message_timestamp_before_max_ms < 0 or self.message_timestamp_after_max_ms < 0:
            raise ValueError("message.timestamp.before.max.ms and .after.max.ms must be >= 0")
        if self.min_compaction_lag_ms < 0:
            raise ValueError(f"min.compaction.lag.ms must be >= 0, got {self.min_compaction_lag_ms}")

    @property
    def compact(self) -> bool:
        """True when cleanup.policy includes compaction."""
        return "compact" in self.cleanup_policy

    @property
    def delete(self) -> bool:
        """True when cleanup.policy includes time/size retention."""
        return "delete" in self.cleanup_policy

    @classmethod
    def from_topic_configs(cls, configs: Mapping[str, object]) -> LogConfig:
        """Build a config from Kafka's dotted topic-config names; unknown names raise ValueError.

        Values may be ints, floats or strings as they come from JSON or a catalog row.
        """
        kwargs: dict[str, object] = {}
        for name, raw in configs.items():
            field = _FIELDS.get(name)
            if field is None:
                raise ValueError(f"unknown topic config {name!r}")
            kwargs[field] = _coerce(name, field, raw)
        return cls(**kwargs)  # type: ignore[arg-type]

    def to_topic_configs(self) -> dict[str, object]:
        """The dotted-name view of this config (the inverse of from_topic_configs)."""
        out: dict[str, object] = {}
        for name, field in _FIELDS.items():
            value = getattr(self, field)
            if field == "message_timestamp_type":
                value = "LogAppendTime" if value == TimestampType.LOG_APPEND_TIME else "CreateTime"
            out[name] = value
        return out

    def replace(self, **changes: object) -> LogConfig:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


_FIELDS: dict[str, str] = {
    "segment.bytes": "segment_bytes",
    "segment.ms": "segment_ms",
    "segment.jitter.ms": "segment_jitter_ms",
    "message.timestamp.before.max.ms": "message_timestamp_before_max_ms",
    "message.timestamp.after.max.ms": "message_timestamp_after_max_ms",
    "segment.index.bytes": "segment_index_bytes",
    "index.interval.bytes": "index_interval_bytes",
    "retention.ms": "retention_ms",
    "retention.bytes": "retention_bytes",
    "cleanup.policy": "cleanup_policy",
    "delete.retention.ms": "delete_retention_ms",
    "min.cleanable.dirty.ratio": "min_cleanable_dirty_ratio",
    "max.message.bytes": "max_message_bytes",
    "message.timestamp.type": "message_timestamp_type",
    "flush.messages": "flush_messages",
    "flush.ms": "flush_ms",
    "min.compaction.lag.ms": "min_compaction_lag_ms",
}

_OPTIONAL_INT = {"flush_messages", "flush_ms"}


def _coerce(name: str, field: str, raw: object) -> object:
    if field == "message_timestamp_type":
        if isinstance(raw, TimestampType):
            return raw
        text = str(raw)
        if text in ("CreateTime", "0"):
            return TimestampType.CREATE_TIME
        if text in ("LogAppendTime", "1"):
            return TimestampType.LOG_APPEND_TIME
        raise ValueError(f"{name} must be CreateTime or LogAppendTime, got {raw!r}")
    if field == "cleanup_policy":
        text = str(raw).replace(" ", "")
        if text == "delete,compact":
            text = "compact,delete"
        return text
    if field in _OPTIONAL_INT and (raw is None or raw == ""):
        return None
    if field == "min_cleanable_dirty_ratio":
        if isinstance(raw, bool):
            raise ValueError(f"{name} must be a number, got {raw!r}")
        try:
            return float(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a number, got {raw!r}") from None
    if isinstance(raw, bool):
        raise ValueError(f"{name} must be an integer, got {raw!r}")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if isinstance(raw, str):
        try:
            return int(raw.strip())
        except ValueError:
            pass
    raise ValueError(f"{name} must be an integer, got {raw!r}")
