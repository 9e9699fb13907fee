"""The topic configs tidelog accepts: Kafka's names, types, ranges and the broker defaults behind them.

A topic stores only its overrides; its effective config is the broker defaults (``Settings``) with the
overrides on top. ``log_config_for`` turns that into the ``storage.LogConfig`` of its partition logs
(``min.insync.replicas`` is a broker-side produce check and ``compaction.guard.group`` a bound the
broker's cleaner pass computes from the catalog, not log settings, so they are left out there).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from app.config import Settings
from app.topics.errors import InvalidConfigError
from storage.config import LogConfig

__all__ = [
    "TOPIC_CONFIGS",
    "ConfigSpec",
    "ConfigValue",
    "default_configs",
    "effective_configs",
    "log_config_for",
    "validate_config",
    "validate_overrides",
]

ConfigValue = int | float | str | None
_GROUP_ID = re.compile(r"^[a-zA-Z0-9._-]{1,255}$")
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ConfigSpec:
    """One topic config: its Kafka name, kind, range and where its default comes from."""

    name: str
    kind: Literal["int", "float", "choice", "string"]
    doc: str
    default: Callable[[Settings], ConfigValue]
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    nullable: bool = False  # null is a value of its own (unset), not only "reset to default"
    setting: str | None = None  # the Settings field that holds the broker default

    def describe_range(self) -> str:
        if self.kind == "string":
            return "a consumer group id" + (" or null" if self.nullable else "")
        if self.kind == "choice":
            return " / ".join(self.choices)
        low = "" if self.minimum is None else f"{self.minimum:g}"
        high = "" if self.maximum is None else f"{self.maximum:g}"
        if self.kind == "int":
            low = "" if self.minimum is None else str(int(self.minimum))
            high = "" if self.maximum is None else str(int(self.maximum))
        return f"[{low}, {high}]" + (" or null" if self.nullable else "")


def _from(field: str) -> Callable[[Settings], ConfigValue]:
    def default(settings: Settings) -> ConfigValue:
        value: ConfigValue = getattr(settings, field)
        return value

    return default


def _const(value: ConfigValue) -> Callable[[Settings], ConfigValue]:
    return lambda _settings: value


_SPECS = (
    ConfigSpec("cleanup.policy", "choice", "Delete old segments, compact by key, or both.",
               _from("log_cleanup_policy"), choices=("delete", "compact", "compact,delete"),
               setting="log_cleanup_policy"),
    # tidelog's own: a changelog's compaction never passes the changelog positions that this group
    # committed (tidelog.streams sets it on the changelog topics it creates; docs/streams.md).
    ConfigSpec("compaction.guard.group", "string",
               "Compaction never passes the changelog position this consumer group last committed.",
               _const(None), nullable=True),
    ConfigSpec("delete.retention.ms", "int", "How long tombstones survive compaction.",
               _from("log_cleaner_delete_retention_ms"), 0, INT64_MAX,
               setting="log_cleaner_delete_retention_ms"),
    ConfigSpec("flush.messages", "int", "fsync after this many records (null: leave to the page cache).",
               _from("log_flush_interval_messages"), 1, INT64_MAX, nullable=True,
               setting="log_flush_interval_messages"),
    ConfigSpec("flush.ms", "int", "fsync at least this often (null: leave to the page cache).",
               _from("log_flush_interval_ms"), 0, INT64_MAX, nullable=True, setting="log_flush_interval_ms"),
    ConfigSpec("index.interval.bytes", "int", "Bytes of log between two offset-index entries.",
               _const(4096), 0, INT32_MAX),
    ConfigSpec("max.message.bytes", "int", "Largest record batch accepted (413 beyond it).",
               _from("message_max_bytes"), 0, INT32_MAX, setting="message_max_bytes"),
    ConfigSpec("message.timestamp.after.max.ms", "int",
               "How far past the broker's clock a CreateTime record's timestamp may be (KIP-937).",
               _const(3_600_000), 0, INT64_MAX),
    ConfigSpec("message.timestamp.before.max.ms", "int",
               "How far before the broker's clock a CreateTime record's timestamp may be (KIP-937).",
               _const(INT64_MAX), 0, INT64_MAX),
    ConfigSpec("message.timestamp.type", "choice", "Keep the producer's timestamp or stamp append time.",
               _from("log_message_timestamp_type"), choices=("CreateTime", "LogAppendTime"),
               setting="log_message_timestamp_type"),
    ConfigSpec("min.cleanable.dirty.ratio", "float", "Dirty share of the log that triggers compaction.",
               _from("log_cleaner_min_cleanable_ratio"), 0.0, 1.0, setting="log_cleaner_min_cleanable_ratio"),
    ConfigSpec("min.compaction.lag.ms", "int", "Records younger than this are never compacted.",
               _const(0), 0, INT64_MAX),
    ConfigSpec("min.insync.replicas", "int", "Replicas that must have a write for acks=all to succeed.",
               _from("min_insync_replicas"), 1, INT32_MAX, setting="min_insync_replicas"),
    ConfigSpec("retention.bytes", "int", "Largest size of a partition before old segments go (-1: none).",
               _from("log_retention_bytes"), -1, INT64_MAX, setting="log_retention_bytes"),
    ConfigSpec("retention.ms", "int", "Age after which old segments are deleted (-1: forever).",
               _from("log_retention_ms"), -1, INT64_MAX, setting="log_retention_ms"),
    ConfigSpec("segment.bytes", "int", "Size at which the active segment is rolled.",
               _from("log_segment_bytes"), 14, INT32_MAX, setting="log_segment_bytes"),
    ConfigSpec("segment.index.bytes", "int", "Size of a segment's offset index.",
               _const(10 * MiB), 8, INT32_MAX),
    ConfigSpec("segment.jitter.ms", "int", "Largest random reduction of segment.ms per segment.",
               _const(0), 0, INT64_MAX),
    ConfigSpec("segment.ms", "int", "Age at which the active segment is rolled.",
               _from("log_segment_ms"), 1, INT64_MAX, setting="log_segment_ms"),
)

TOPIC_CONFIGS: Mapping[str, ConfigSpec] = {spec.name: spec for spec in _SPECS}


def validate_config(name: str, value: object) -> ConfigValue:
    """``value`` normalised for config ``name`` (numeric strings become numbers); InvalidConfigError if bad.

    ``None`` is returned as is: callers treat it as "reset to the default".
    """
    spec = TOPIC_CONFIGS.get(name)
    if spec is None:
        raise InvalidConfigError(
            f"unknown topic config {name!r}; known configs: {', '.join(sorted(TOPIC_CONFIGS))}", config=name
        )
    if value is None:
        return None
    if spec.kind == "string":
        if not isinstance(value, str) or not _GROUP_ID.match(value):
            raise InvalidConfigError(
                f"{name} must be a group id (1 to 255 of letters, digits, '.', '_', '-'), got {value!r}",
                config=name,
            )
        return value
    if spec.kind == "choice":
        text = value.replace(" ", "") if isinstance(value, str) else None
        if text == "delete,compact":
            text = "compact,delete"
        if text not in spec.choices:
            raise InvalidConfigError(
                f"{name} must be one of {', '.join(spec.choices)}, got {value!r}", config=name
            )
        return text
    number: int | float
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidConfigError(f"{name} must be a number, got {value!r}", config=name)
    if isinstance(value, str):
        try:
            number = float(value) if spec.kind == "float" else int(value.strip())
        except ValueError:
            raise InvalidConfigError(f"{name} must be a number, got {value!r}", config=name) from None
    else:
        number = value
    if spec.kind == "int":
        if isinstance(number, float):
            if not number.is_integer():
                raise InvalidConfigError(f"{name} must be an integer, got {value!r}", config=name)
            number = int(number)
    else:
        number = float(number)
        if number != number:  # NaN
            raise InvalidConfigError(f"{name} must be a number, got {value!r}", config=name)
    if (spec.minimum is not None and number < spec.minimum) or (
        spec.maximum is not None and number > spec.maximum
    ):
        raise InvalidConfigError(
            f"{name} must be in {spec.describe_range()}, got {value!r}", config=name
        )
    return number


def validate_overrides(configs: Mapping[str, object]) -> dict[str, ConfigValue]:
    """Every entry validated and normalised (``None`` kept: it means "reset")."""
    return {name: validate_config(name, value) for name, value in configs.items()}


def default_configs(settings: Settings) -> dict[str, ConfigValue]:
    """The broker default of every topic config."""
    return {name: spec.default(settings) for name, spec in TOPIC_CONFIGS.items()}


def effective_configs(settings: Settings, overrides: Mapping[str, ConfigValue]) -> dict[str, ConfigValue]:
    """Broker defaults with a topic's overrides on top (unknown stored names are ignored)."""
    configs = default_configs(settings)
    for name, value in overrides.items():
        if name in configs:
            configs[name] = value
    return configs


def log_config_for(settings: Settings, overrides: Mapping[str, ConfigValue]) -> LogConfig:
    """The ``storage.LogConfig`` of a topic's partition logs."""
    configs = effective_configs(settings, overrides)
    configs.pop("min.insync.replicas", None)
    configs.pop("compaction.guard.group", None)  # applied by the broker's cleaner pass
    try:
        return LogConfig.from_topic_configs(configs)
    except ValueError as exc:  # a range the specs above do not know of; reported, never a 500
        raise InvalidConfigError(str(exc)) from exc
