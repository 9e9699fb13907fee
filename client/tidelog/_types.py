"""The values the client hands back: records, offsets, topic and group descriptions.

Each ``from_json`` reads the broker's documented answer and keeps the whole answer in ``raw`` so
fields added to the API later stay reachable without a client upgrade.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

__all__ = [
    "FetchResult",
    "Format",
    "GroupDescription",
    "GroupMember",
    "GroupOffset",
    "HeaderValue",
    "Headers",
    "OffsetsResult",
    "PartitionDescription",
    "PartitionOffsets",
    "ProduceResult",
    "Record",
    "RecordMetadata",
    "TopicDescription",
    "TopicPartition",
]

Format = Literal["json", "string", "binary"]
HeaderValue = str | bytes | None
Headers = Sequence[tuple[str, HeaderValue]] | Mapping[str, HeaderValue]
FORMATS: tuple[str, ...] = ("json", "string", "binary")


class TopicPartition(NamedTuple):
    """A partition of a topic, the unit of assignment, order and offsets."""

    topic: str
    partition: int

    def __str__(self) -> str:
        return f"{self.topic}-{self.partition}"


def _int(value: Any, default: int = -1) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _opt_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True, slots=True)
class Record:
    """A record as fetch, polls and streams return it.

    ``key`` and ``value`` are in the format they were produced in (a JSON value, a string, or, for
    ``binary``, bytes when the reader asked for ``binary`` and a base64 string otherwise); a ``None``
    value is a tombstone.
    """

    topic: str
    partition: int
    offset: int
    timestamp: int
    timestamp_type: str
    key: Any
    value: Any
    headers: tuple[tuple[str, HeaderValue], ...] = ()

    @property
    def topic_partition(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)

    @classmethod
    def from_json(
        cls,
        data: Mapping[str, Any],
        *,
        topic: str | None = None,
        partition: int | None = None,
        key_format: str | None = None,
        value_format: str | None = None,
        header_format: str | None = None,
    ) -> Record:
        headers: list[tuple[str, HeaderValue]] = []
        for header in data.get("headers") or ():
            if isinstance(header, Mapping):
                hvalue = header.get("value")
                if header_format == "binary" and isinstance(hvalue, str):
                    hvalue = base64.b64decode(hvalue)
                headers.append((str(header.get("key")), hvalue))
        return cls(
            topic=str(data.get("topic", topic or "")),
            partition=_int(data.get("partition"), partition if partition is not None else -1),
            offset=_int(data.get("offset")),
            timestamp=_int(data.get("timestamp")),
            timestamp_type=str(data.get("timestamp_type", "CreateTime")),
            key=_decode_binary(data.get("key"), key_format),
            value=_decode_binary(data.get("value"), value_format),
            headers=tuple(headers),
        )

    def to_json(self) -> dict[str, Any]:
        """Return the record as the broker's JSON shape (bytes as base64)."""

        def enc(v: Any) -> Any:
            return base64.b64encode(v).decode() if isinstance(v, bytes) else v

        return {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "timestamp": self.timestamp,
            "timestamp_type": self.timestamp_type,
            "key": enc(self.key),
            "value": enc(self.value),
            "headers": [{"key": k, "value": enc(v)} for k, v in self.headers],
        }


def _decode_binary(value: Any, fmt: str | None) -> Any:
    if fmt == "binary" and isinstance(value, str):
        return base64.b64decode(value)
    return value


@dataclass(frozen=True, slots=True)
class RecordMetadata:
    """Where the broker stored a produced record (``offset`` is -1 with ``acks=0``)."""

    topic: str
    partition: int
    offset: int
    timestamp: int

    @property
    def topic_partition(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)


@dataclass(frozen=True, slots=True)
class ProduceResult:
    """The answer to one produce request: per record its metadata, or the error that refused it."""

    results: tuple[RecordMetadata | Exception, ...]

    @property
    def ok(self) -> bool:
        return not any(isinstance(r, Exception) for r in self.results)


@dataclass(frozen=True, slots=True)
class FetchResult:
    """Records of one partition from ``offset``, and where to continue."""

    records: list[Record]
    next_offset: int
    high_watermark: int
    log_start_offset: int

    @classmethod
    def from_json(
        cls,
        data: Mapping[str, Any],
        *,
        topic: str,
        partition: int,
        offset: int,
        key_format: str | None = None,
        value_format: str | None = None,
        header_format: str | None = None,
    ) -> FetchResult:
        records = [
            Record.from_json(
                r,
                topic=topic,
                partition=partition,
                key_format=key_format,
                value_format=value_format,
                header_format=header_format,
            )
            for r in data.get("records") or ()
            if isinstance(r, Mapping)
        ]
        next_offset = _opt_int(data.get("next_offset"))
        if next_offset is None:
            next_offset = records[-1].offset + 1 if records else offset
        return cls(
            records=records,
            next_offset=next_offset,
            high_watermark=_int(data.get("high_watermark")),
            log_start_offset=_int(data.get("log_start_offset")),
        )


@dataclass(frozen=True, slots=True)
class PartitionOffsets:
    """A partition's offsets; ``offset`` answers a timestamp lookup (``None`` if no record is that late)."""

    log_start_offset: int
    high_watermark: int
    log_end_offset: int
    offset: int | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PartitionOffsets:
        hw = _int(data.get("high_watermark"))
        return cls(
            log_start_offset=_int(data.get("log_start_offset")),
            high_watermark=hw,
            log_end_offset=_int(data.get("log_end_offset"), hw),
            offset=_opt_int(data.get("offset")),
        )


@dataclass(frozen=True, slots=True)
class PartitionDescription:
    partition: int
    leader: int | None
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    log_start_offset: int
    high_watermark: int
    log_end_offset: int

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PartitionDescription:
        hw = _int(data.get("high_watermark"), 0)
        return cls(
            partition=_int(data.get("partition")),
            leader=_opt_int(data.get("leader")),
            replicas=tuple(x for x in data.get("replicas") or () if isinstance(x, int)),
            isr=tuple(x for x in data.get("isr") or () if isinstance(x, int)),
            log_start_offset=_int(data.get("log_start_offset"), 0),
            high_watermark=hw,
            log_end_offset=_int(data.get("log_end_offset"), hw),
        )


@dataclass(frozen=True, slots=True)
class TopicDescription:
    """A topic: its partitions with their offsets, and its configs.

    A topic listing gives names and counts only: there ``partitions`` is empty and ``configs`` too.
    """

    name: str
    partition_count: int
    replication_factor: int
    partitions: tuple[PartitionDescription, ...]
    configs: dict[str, Any]
    defaults: tuple[str, ...] = ()
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TopicDescription:
        raw_parts = data.get("partitions")
        parts: tuple[PartitionDescription, ...] = ()
        if isinstance(raw_parts, list):
            parts = tuple(PartitionDescription.from_json(p) for p in raw_parts if isinstance(p, Mapping))
        count = _opt_int(data.get("partition_count"))
        if count is None:
            count = raw_parts if isinstance(raw_parts, int) else len(parts)
        defaults = data.get("defaults")
        return cls(
            name=str(data.get("name", data.get("topic", ""))),
            partition_count=count,
            replication_factor=_int(data.get("replication_factor"), 1),
            partitions=parts,
            configs=_flatten_configs(data.get("configs")),
            defaults=tuple(str(d) for d in defaults) if isinstance(defaults, list) else (),
            raw=dict(data),
        )


def _flatten_configs(configs: Any) -> dict[str, Any]:
    """Return ``{name: value}`` from ``{name: value}``, ``{name: {value, ...}}`` or ``[{name, value}]``."""
    out: dict[str, Any] = {}
    if isinstance(configs, Mapping):
        for name, value in configs.items():
            out[str(name)] = value.get("value") if isinstance(value, Mapping) and "value" in value else value
    elif isinstance(configs, list):
        for entry in configs:
            if isinstance(entry, Mapping) and "name" in entry:
                out[str(entry["name"])] = entry.get("value")
    return out


@dataclass(frozen=True, slots=True)
class GroupMember:
    member_id: str
    instance_id: str | None
    assignment: tuple[TopicPartition, ...]
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GroupMember:
        iid = data.get("instance_id")
        return cls(
            member_id=str(data.get("member_id", "")),
            instance_id=iid if isinstance(iid, str) else None,
            assignment=parse_assignment(data.get("assignment")),
            raw=dict(data),
        )


def parse_assignment(items: Any) -> tuple[TopicPartition, ...]:
    """Read ``[{topic, partition}]`` (the broker's assignment shape) into sorted topic-partitions."""
    out: list[TopicPartition] = []
    for item in items or ():
        if isinstance(item, Mapping) and isinstance(item.get("partition"), int):
            out.append(TopicPartition(str(item.get("topic")), int(item["partition"])))
        elif isinstance(item, Sequence) and len(item) == 2 and not isinstance(item, str):
            out.append(TopicPartition(str(item[0]), int(item[1])))
    return tuple(sorted(out))


@dataclass(frozen=True, slots=True)
class GroupOffset:
    """A group's committed offset of one partition, with that partition's end and the lag between them."""

    topic: str
    partition: int
    offset: int | None
    high_watermark: int | None
    lag: int | None
    metadata: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GroupOffset:
        meta = data.get("metadata")
        return cls(
            topic=str(data.get("topic", "")),
            partition=_int(data.get("partition")),
            offset=_opt_int(data.get("offset", data.get("committed_offset"))),
            high_watermark=_opt_int(data.get("high_watermark")),
            lag=_opt_int(data.get("lag")),
            metadata=meta if isinstance(meta, str) else None,
        )


@dataclass(frozen=True, slots=True)
class OffsetsResult:
    offsets: tuple[GroupOffset, ...]
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @classmethod
    def from_json(cls, data: Any) -> OffsetsResult:
        items = data.get("offsets") if isinstance(data, Mapping) else data
        offsets = tuple(GroupOffset.from_json(o) for o in items or () if isinstance(o, Mapping))
        return cls(offsets=offsets, raw=dict(data) if isinstance(data, Mapping) else {"offsets": data})


@dataclass(frozen=True, slots=True)
class GroupDescription:
    """A consumer group: state, protocol, members with their assignments."""

    group_id: str
    state: str
    protocol: str | None
    generation: int | None
    members: tuple[GroupMember, ...]
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GroupDescription:
        protocol = data.get("protocol", data.get("assignor"))
        return cls(
            group_id=str(data.get("group_id", data.get("group", data.get("name", "")))),
            state=str(data.get("state", "Unknown")),
            protocol=protocol if isinstance(protocol, str) else None,
            generation=_opt_int(data.get("generation")),
            members=tuple(
                GroupMember.from_json(m) for m in data.get("members") or () if isinstance(m, Mapping)
            ),
            raw=dict(data),
        )


def json_dumps_compact(value: Any) -> bytes:
    """Return the compact JSON encoding the broker stores for a ``json``-format key or value."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
