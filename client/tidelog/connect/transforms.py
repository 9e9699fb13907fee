"""Single message transforms (SMTs) and predicates, with Kafka's names and schemaless semantics.

A chain is configured as in Kafka Connect::

    transforms=route,mask
    transforms.route.type=RegexRouter            (or org.apache.kafka.connect.transforms.RegexRouter)
    transforms.route.regex=(.*)-raw
    transforms.route.replacement=$1
    transforms.mask.type=MaskField$Value
    transforms.mask.fields=card
    transforms.mask.predicate=isOrders           (KIP-585: apply only where the predicate holds)
    predicates=isOrders
    predicates.isOrders.type=TopicNameMatches
    predicates.isOrders.pattern=orders.*

Transforms: InsertField, ReplaceField, ValueToKey, ExtractField, HoistField, Cast, MaskField (each
``$Key`` or ``$Value`` where Kafka has both), RegexRouter, TimestampConverter, Filter, and Debezium's
ExtractNewRecordState. Predicates: TopicNameMatches, HasHeaderKey, RecordIsTombstone. Values are
JSON values (dicts for structs). A transform that raises on a record is a data error of the
TRANSFORMATION stage: ``errors.tolerance`` decides what happens to the record.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, time
from typing import Any, Protocol, TypeVar

from tidelog.connect.config import ConfigValidationError

__all__ = ["Chain", "ConnectRecord", "Predicate", "Transform", "build_chain"]

R = TypeVar("R", bound="ConnectRecord")


class ConnectRecord(Protocol):
    """What a transform sees: a SourceRecord or a SinkRecord (frozen dataclasses)."""

    @property
    def topic(self) -> str: ...
    @property
    def key(self) -> Any: ...
    @property
    def value(self) -> Any: ...
    @property
    def headers(self) -> Mapping[str, str] | None: ...
    @property
    def timestamp_ms(self) -> int | None: ...


def _replace(record: R, **changes: Any) -> R:
    return dataclasses.replace(record, **changes)  # type: ignore[type-var]


Settings = Mapping[str, str]


def _required(settings: Settings, name: str, prefix: str) -> str:
    value = settings.get(name, "")
    if value == "":
        raise ConfigValidationError({f"{prefix}{name}": [f'Missing required configuration "{prefix}{name}"']})
    return value


def _list(settings: Settings, name: str) -> list[str]:
    return [item.strip() for item in settings.get(name, "").split(",") if item.strip()]


class Transform:
    """One configured SMT: ``apply`` gives the new record, or ``None`` to drop it."""

    part = "value"  # "key" for a $Key variant

    def __init__(self, settings: Settings, prefix: str) -> None:
        self.settings = settings
        self.prefix = prefix

    def _get(self, record: ConnectRecord) -> Any:
        return record.key if self.part == "key" else record.value

    def _set(self, record: R, value: Any) -> R:
        return _replace(record, key=value) if self.part == "key" else _replace(record, value=value)

    def apply(self, record: R) -> R | None:
        raise NotImplementedError

    @staticmethod
    def _struct(value: Any, what: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ValueError(f"{what} needs a JSON object (a struct), got {type(value).__name__}")
        return value


class InsertField(Transform):
    def apply(self, record: R) -> R | None:
        current = self._get(record)
        if current is None:
            return record  # a tombstone stays a tombstone
        struct = dict(self._struct(current, "InsertField"))
        s = self.settings
        if s.get("topic.field"):
            struct[s["topic.field"].rstrip("!?")] = record.topic
        if s.get("partition.field"):
            struct[s["partition.field"].rstrip("!?")] = getattr(record, "partition", None)
        if s.get("offset.field") and hasattr(record, "offset"):
            struct[s["offset.field"].rstrip("!?")] = record.offset
        if s.get("timestamp.field"):
            struct[s["timestamp.field"].rstrip("!?")] = record.timestamp_ms
        if s.get("static.field"):
            struct[s["static.field"].rstrip("!?")] = s.get("static.value")
        return self._set(record, struct)


class ReplaceField(Transform):
    def __init__(self, settings: Settings, prefix: str) -> None:
        super().__init__(settings, prefix)
        self.exclude = set(_list(settings, "exclude") or _list(settings, "blacklist"))
        self.include = set(_list(settings, "include") or _list(settings, "whitelist"))
        self.renames: dict[str, str] = {}
        for pair in _list(settings, "renames"):
            old, sep, new = pair.partition(":")
            if not sep or not old or not new:
                raise ConfigValidationError({f"{prefix}renames": [f"{pair!r} is not old:new"]})
            self.renames[old] = new

    def apply(self, record: R) -> R | None:
        current = self._get(record)
        if current is None:
            return record
        struct = self._struct(current, "ReplaceField")
        out = {}
        for name, value in struct.items():
            if name in self.exclude or (self.include and name not in self.include):
                continue
            out[self.renames.get(name, name)] = value
        return self._set(record, out)


class ValueToKey(Transform):
    def __init__(self, settings: Settings, prefix: str) -> None:
        super().__init__(settings, prefix)
        self.fields = _list(settings, "fields")
        if not self.fields:
            raise ConfigValidationError({f"{prefix}fields": ["ValueToKey needs fields"]})

    def apply(self, record: R) -> R | None:
        struct = self._struct(record.value, "ValueToKey")
        return _replace(record, key={name: struct.get(name) for name in self.fields})


class ExtractField(Transform):
    def __init__(self, settings: Settings, prefix: str) -> None:
        super().__init__(settings, prefix)
        self.field = _required(settings, "field", prefix)

    def apply(self, record: R) -> R | None:
        current = self._get(record)
        if current is None:
            return record
        value: Any = self._struct(current, "ExtractField")
        for part in (
            self.field.split(".") if self.settings.get("field.syntax.version") == "V2" else [self.field]
        ):
            value = value.get(part) if isinstance(value, dict) else None
        return self._set(record, value)


class HoistField(Transform):
    def __init__(self, settings: Settings, prefix: str) -> None:
        super().__init__(settings, prefix)
        self.field = _required(settings, "field", prefix)

    def apply(self, record: R) -> R | None:
        return self._set(record, {self.field: self._get(record)})


def _cast(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind in ("int8", "int16", "int32", "int64"):
        if isinstance(value, str):
            value = float(value.strip()) if "." in value else int(value.strip())
        result = int(value)
        bits = int(kind[3:])
        if not -(2 ** (bits - 1)) <= result < 2 ** (bits - 1):
            raise ValueError(f"{value!r} does not fit in {kind}")
        return result
    if kind in ("float32", "float64"):
        return float(value)
    if kind == "boolean":
        if isinstance(value, str):
            lowered = value.strip().lower()
            if lowered not in ("true", "false"):
                raise ValueError(f"{value!r} is not a boolean")
            return lowered == "true"
        return bool(value)
    if kind == "string":
        if isinstance(value, bool):
            return "true" if value else "false"
        return value if isinstance(value, str) else str(value)
    raise ValueError(f"unknown cast type {kind}")


_CAST_TYPES = ("int8", "int16", "int32", "int64", "float32", "float64", "boolean", "string")


class Cast(Transform):
    def __init__(self, settings: Settings, prefix: str) -> None:
        super().__init__(settings, prefix)
        self.whole: str | None = None
        self.fields: dict[str, str] = {}
        for item in _list(settings, "spec"):
            name, sep, kind = item.rpartition(":")
            if kind not in _CAST_TYPES:
                raise ConfigValidationError(
                    {f"{prefix}spec": [f"{item!r}: type must be one of {_CAST_TYPES}"]}
                )
            if sep:
                self.fields[name] = kind
            else:
                self.whole = kind
        if self.whole is None and not self.fields:
            raise ConfigValidationError({f"{prefix}spec": ["Cast needs a spec (field:type,… or type)"]})

    def apply(self, record: R) -> R | None:
        current = self._get(record)
        if self.whole is not None:
            return self._set(record, _cast(current, self.whole))
        if current is None:
            return record
        struct = dict(self._struct(current, "Cast"))
        for name, kind in self.fields.items():
            if name in struct:
                struct[name] = _cast(struct[name], kind)
        return self._set(record, struct)


def _masked(value: Any, replacement: str | None) -> Any:
    if replacement is not None:
        return (
            _cast(replacement, "string")
            if isinstance(value, str)
            else type(value)(replacement)
            if isinstance(value, (int, float)) and not isinstance(value, bool)
            else replacement
        )
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return type(value)(0)
    if isinstance(value, str):
        return ""
    if isinstance(value, list):
        return []
    if isinstance(value, dict):
        return {}
    return None


class MaskField(Transform):
    def __init__(self, settings: Settings, prefix: str) -> None:
        super().__init__(settings, prefix)
        self.fields = _list(settings, "fields")
        self.replacement = settings.get("replacement") or None
        if not self.fields:
            raise ConfigValidationError({f"{prefix}fields": ["MaskField needs fields"]})

    def apply(self, record: R) -> R | None:
        current = self._get(record)
        if current is None:
            return record
        struct = dict(self._struct(current, "MaskField"))
        for name in self.fields:
            if name in struct:
                struct[name] = _masked(struct[name], self.replacement)
        return self._set(record, struct)


class RegexRouter(Transform):
    def __init__(self, settings: Settings, prefix: str) -> None:
        super().__init__(settings, prefix)
        try:
            self.regex = re.compile(_required(settings, "regex", prefix))
        except re.error as error:
            raise ConfigValidationError({f"{prefix}regex": [f"not a regular expression: {error}"]}) from None
        # Java's $1 is Python's \g<1>
        self.replacement = re.sub(r"\$(\d+)", r"\\g<\1>", settings.get("replacement", ""))

    def apply(self, record: R) -> R | None:
        if self.regex.fullmatch(record.topic):
            return _replace(record, topic=self.regex.sub(self.replacement, record.topic, count=1))
        return record


_JAVA_FORMAT = (
    ("yyyy", "%Y"),
    ("yy", "%y"),
    ("MM", "%m"),
    ("dd", "%d"),
    ("HH", "%H"),
    ("mm", "%M"),
    ("ss", "%S"),
    ("SSS", "%f"),
    ("'T'", "T"),
    ("XXX", "%z"),
    ("Z", "%z"),
)


def _strftime_format(java: str) -> str:
    out = java
    for token, replacement in _JAVA_FORMAT:
        out = out.replace(token, replacement)
    return out


class TimestampConverter(Transform):
    """Kafka's TimestampConverter, schemaless: ``target.type`` string | unix | Date | Time | Timestamp
    (Date, Time and Timestamp as ISO 8601 strings in UTC); ``format`` is a SimpleDateFormat pattern."""

    def __init__(self, settings: Settings, prefix: str) -> None:
        super().__init__(settings, prefix)
        self.field = settings.get("field", "")
        self.target = _required(settings, "target.type", prefix)
        if self.target not in ("string", "unix", "Date", "Time", "Timestamp"):
            raise ConfigValidationError(
                {f"{prefix}target.type": ["must be string, unix, Date, Time or Timestamp"]}
            )
        self.format = _strftime_format(settings.get("format", "")) if settings.get("format") else ""
        if self.target == "string" and not self.format:
            raise ConfigValidationError({f"{prefix}format": ["target.type=string needs a format"]})
        self.precision = settings.get("unix.precision", "milliseconds")
        self._scale = {"seconds": 1, "milliseconds": 1000, "microseconds": 10**6, "nanoseconds": 10**9}.get(
            self.precision
        )
        if self._scale is None:
            raise ConfigValidationError(
                {f"{prefix}unix.precision": ["seconds, milliseconds, microseconds or nanoseconds"]}
            )

    def _parse(self, value: Any) -> datetime:
        if isinstance(value, bool):
            raise ValueError("a boolean is not a timestamp")
        if isinstance(value, (int, float)):
            assert self._scale is not None
            return datetime.fromtimestamp(value / self._scale, tz=UTC)
        if isinstance(value, str):
            if self.format:
                parsed = datetime.strptime(value, self.format)
            else:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        raise ValueError(f"{type(value).__name__} is not a timestamp")

    def _render(self, moment: datetime) -> Any:
        if self.target == "unix":
            assert self._scale is not None
            return int(moment.timestamp() * self._scale)
        if self.target == "string":
            return moment.strftime(self.format)
        if self.target == "Date":
            return date(moment.year, moment.month, moment.day).isoformat()
        if self.target == "Time":
            return time(moment.hour, moment.minute, moment.second, moment.microsecond).isoformat()
        return moment.isoformat()

    def apply(self, record: R) -> R | None:
        current = self._get(record)
        if current is None:
            return record
        if not self.field:
            return self._set(record, self._render(self._parse(current)))
        struct = dict(self._struct(current, "TimestampConverter"))
        if struct.get(self.field) is not None:
            struct[self.field] = self._render(self._parse(struct[self.field]))
        return self._set(record, struct)


class Filter(Transform):
    """Drops every record (where its predicate holds, KIP-585)."""

    def apply(self, record: R) -> R | None:
        return None


class ExtractNewRecordState(Transform):
    """Debezium's ExtractNewRecordState: a change event's ``after`` state, flattened.

    ``delete.handling.mode``: drop (default), rewrite (``before`` with ``__deleted: "true"``), none (a
    tombstone); ``drop.tombstones`` (default true); ``add.fields`` (``op``, ``table``, ``lsn``,
    ``source.ts_ms``, ``ts_ms`` → ``__op``, …) and ``add.headers`` (the same, as ``__op`` headers).
    """

    def __init__(self, settings: Settings, prefix: str) -> None:
        super().__init__(settings, prefix)
        self.delete_mode = settings.get("delete.handling.mode", "drop")
        if self.delete_mode not in ("drop", "rewrite", "none"):
            raise ConfigValidationError({f"{prefix}delete.handling.mode": ["drop, rewrite or none"]})
        self.drop_tombstones = settings.get("drop.tombstones", "true").lower() == "true"
        self.add_fields = _list(settings, "add.fields")
        self.add_headers = _list(settings, "add.headers")

    @staticmethod
    def _field(envelope: Mapping[str, Any], name: str) -> Any:
        if name.startswith("source."):
            return (envelope.get("source") or {}).get(name[len("source.") :])
        if name in ("table", "lsn", "db", "schema", "txId"):
            return (envelope.get("source") or {}).get(name)
        return envelope.get(name)

    def apply(self, record: R) -> R | None:
        envelope = record.value
        if envelope is None:
            return None if self.drop_tombstones else record
        if not isinstance(envelope, dict) or "op" not in envelope:
            return record  # not a change event (a heartbeat, a schema change): passed through
        op = envelope.get("op")
        if op == "d":
            if self.delete_mode == "drop":
                return None
            if self.delete_mode == "none":
                return _replace(record, value=None)
            state = dict(envelope.get("before") or {})
            state["__deleted"] = "true"
        else:
            state = dict(envelope.get("after") or {})
            if self.delete_mode == "rewrite":
                state["__deleted"] = "false"
        for name in self.add_fields:
            state["__" + name.replace(".", "_")] = self._field(envelope, name)
        headers = dict(record.headers or {})
        for name in self.add_headers:
            value = self._field(envelope, name)
            headers["__" + name.replace(".", "_")] = "" if value is None else str(value)
        return _replace(record, value=state, headers=headers or record.headers)


# ---------------------------------------------------------------------------------------------- predicates


class Predicate:
    def __init__(self, settings: Settings, prefix: str) -> None:
        self.settings = settings

    def test(self, record: ConnectRecord) -> bool:
        raise NotImplementedError


class TopicNameMatches(Predicate):
    def __init__(self, settings: Settings, prefix: str) -> None:
        super().__init__(settings, prefix)
        try:
            self.pattern = re.compile(_required(settings, "pattern", prefix))
        except re.error as error:
            raise ConfigValidationError(
                {f"{prefix}pattern": [f"not a regular expression: {error}"]}
            ) from None

    def test(self, record: ConnectRecord) -> bool:
        return self.pattern.fullmatch(record.topic) is not None


class HasHeaderKey(Predicate):
    def __init__(self, settings: Settings, prefix: str) -> None:
        super().__init__(settings, prefix)
        self.name = _required(settings, "name", prefix)

    def test(self, record: ConnectRecord) -> bool:
        return self.name in (record.headers or {})


class RecordIsTombstone(Predicate):
    def test(self, record: ConnectRecord) -> bool:
        return record.value is None


def _keyed(cls: type[Transform], part: str) -> type[Transform]:
    return type(f"{cls.__name__}${part.capitalize()}", (cls,), {"part": part})


TRANSFORMS: dict[str, type[Transform]] = {
    "RegexRouter": RegexRouter,
    "Filter": Filter,
    "ValueToKey": ValueToKey,
    "ExtractNewRecordState": ExtractNewRecordState,
}
for _cls in (InsertField, ReplaceField, ExtractField, HoistField, Cast, MaskField, TimestampConverter):
    TRANSFORMS[f"{_cls.__name__}$Value"] = _keyed(_cls, "value")
    TRANSFORMS[f"{_cls.__name__}$Key"] = _keyed(_cls, "key")
PREDICATES: dict[str, type[Predicate]] = {
    "TopicNameMatches": TopicNameMatches,
    "HasHeaderKey": HasHeaderKey,
    "RecordIsTombstone": RecordIsTombstone,
}


def _short(type_name: str) -> str:
    return type_name.rsplit(".", 1)[-1]


@dataclasses.dataclass(frozen=True, slots=True)
class _Step:
    alias: str
    transform: Transform
    predicate: Predicate | None
    negate: bool


class Chain:
    """The configured transforms, applied in order; ``apply`` gives ``None`` for a dropped record."""

    def __init__(self, steps: Sequence[_Step]) -> None:
        self.steps = list(steps)

    def __bool__(self) -> bool:
        return bool(self.steps)

    def apply(self, record: R, on_step: Callable[[str], None] | None = None) -> R | None:
        current: R | None = record
        for step in self.steps:
            if current is None:
                return None
            if step.predicate is not None and step.predicate.test(current) == step.negate:
                continue
            if on_step is not None:
                on_step(step.alias)
            current = step.transform.apply(current)
        return current


def _settings_of(config: Mapping[str, str | None], prefix: str) -> dict[str, str]:
    return {k[len(prefix) :]: v for k, v in config.items() if k.startswith(prefix) and v is not None}


def build_chain(config: Mapping[str, str | None]) -> Chain:
    """Gives the chain ``transforms=`` configures; raises :class:`ConfigValidationError`."""
    errors: dict[str, list[str]] = {}
    predicates: dict[str, Predicate] = {}
    for alias in [a.strip() for a in (config.get("predicates") or "").split(",") if a.strip()]:
        prefix = f"predicates.{alias}."
        settings = _settings_of(config, prefix)
        cls = PREDICATES.get(_short(settings.get("type", "")))
        if cls is None:
            errors[f"{prefix}type"] = [
                f"unknown predicate {settings.get('type', '')!r}; one of {sorted(PREDICATES)}"
            ]
            continue
        try:
            predicates[alias] = cls(settings, prefix)
        except ConfigValidationError as error:
            errors.update(error.errors)
    steps = []
    for alias in [a.strip() for a in (config.get("transforms") or "").split(",") if a.strip()]:
        prefix = f"transforms.{alias}."
        settings = _settings_of(config, prefix)
        type_name = _short(settings.get("type", ""))
        transform_cls = TRANSFORMS.get(type_name) or TRANSFORMS.get(f"{type_name}$Value")
        if transform_cls is None:
            errors[f"{prefix}type"] = [
                f"unknown transform {settings.get('type', '')!r}; one of {sorted(TRANSFORMS)}"
            ]
            continue
        predicate = None
        if settings.get("predicate"):
            predicate = predicates.get(settings["predicate"])
            if predicate is None:
                errors[f"{prefix}predicate"] = [f"no predicate {settings['predicate']!r} in predicates"]
                continue
        try:
            steps.append(
                _Step(
                    alias,
                    transform_cls(settings, prefix),
                    predicate,
                    settings.get("negate", "false").lower() == "true",
                )
            )
        except ConfigValidationError as error:
            errors.update(error.errors)
    if errors:
        raise ConfigValidationError(errors)
    return Chain(steps)
