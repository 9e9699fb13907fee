"""The broker's endpoints as request descriptions, shared by ``Client`` and ``AsyncClient``.

Each function returns a ``Call``: method, path, query, body, whether it is safe to send again after
a lost answer, and how to read the answer. The two clients only differ in how they send it.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from tidelog._errors import ProtocolError
from tidelog._records import OutgoingRecord, records_body
from tidelog._types import (
    FetchResult,
    GroupDescription,
    OffsetsResult,
    PartitionOffsets,
    ProduceResult,
    RecordMetadata,
    TopicDescription,
    TopicPartition,
)

T = TypeVar("T")

ACKS = ("0", "1", "all")


def _seg(value: str) -> str:
    return quote(value, safe="")


def _identity(body: Any) -> Any:
    return body


def _none(body: Any) -> None:
    return None


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    method: str
    path: str
    parse: Callable[[Any], T]
    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    # Safe to send again when the answer was lost (reads, or writes the broker de-duplicates).
    idempotent: bool = False
    # Extra seconds on top of the client's timeout, for long-polls.
    extra_timeout: float = 0.0
    # The partition this request is for: sent to its leader when the client knows it (clustered
    # mode, tidelog/_leaders.py), and a 307 to the leader is followed and remembered.
    partition_route: tuple[str, int] | None = None
    # A body of bytes (sent as it is, with its Content-Type in ``headers``) instead of ``json``.
    content: bytes | None = None
    # ``parse`` takes the ``httpx.Response`` of a success rather than its JSON body (binary answers).
    raw: bool = False


def normalize_acks(acks: int | str) -> str:
    value = str(acks)
    if value == "-1":
        value = "all"
    if value not in ACKS:
        raise ValueError(f"acks must be 0, 1 or 'all', not {acks!r}")
    return value


def _mapping(body: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(body, Mapping):
        raise ProtocolError(f"{what}: expected a JSON object, got {type(body).__name__}")
    return body


# -- topics --------------------------------------------------------------------------------------


def list_topics() -> Call[list[TopicDescription]]:
    def parse(body: Any) -> list[TopicDescription]:
        items = body.get("topics") if isinstance(body, Mapping) else body
        if not isinstance(items, list):
            raise ProtocolError("list topics: expected a list of topics")
        return [TopicDescription.from_json(t if isinstance(t, Mapping) else {"name": t}) for t in items]

    return Call("GET", "/v1/topics", parse, idempotent=True)


def create_topic(
    name: str,
    partitions: int | None,
    replication_factor: int | None,
    configs: Mapping[str, Any] | None,
    validate_only: bool,
) -> Call[TopicDescription]:
    body: dict[str, Any] = {"name": name}
    if partitions is not None:
        body["partitions"] = partitions
    if replication_factor is not None:
        body["replication_factor"] = replication_factor
    if configs:
        body["configs"] = dict(configs)
    return Call(
        "POST",
        "/v1/topics",
        lambda b: TopicDescription.from_json(_mapping(b, "create topic")),
        params={"validate_only": "true"} if validate_only else {},
        json=body,
    )


def describe_topic(name: str) -> Call[TopicDescription]:
    return Call(
        "GET",
        f"/v1/topics/{_seg(name)}",
        lambda b: TopicDescription.from_json(_mapping(b, "describe topic")),
        idempotent=True,
    )


def create_partitions(name: str, total: int) -> Call[TopicDescription]:
    return Call(
        "PATCH",
        f"/v1/topics/{_seg(name)}",
        lambda b: TopicDescription.from_json(_mapping(b, "alter topic")),
        json={"partitions": total},
        idempotent=True,  # raising to an absolute count twice is the same as once
    )


def delete_topic(name: str) -> Call[None]:
    return Call("DELETE", f"/v1/topics/{_seg(name)}", _none)


def describe_configs(name: str) -> Call[dict[str, Any]]:
    def parse(body: Any) -> dict[str, Any]:
        data = _mapping(body, "topic configs")
        configs = data.get("configs", data)
        return TopicDescription.from_json({"configs": configs}).configs

    return Call("GET", f"/v1/topics/{_seg(name)}/configs", parse, idempotent=True)


def describe_configs_raw(name: str) -> Call[Any]:
    return Call("GET", f"/v1/topics/{_seg(name)}/configs", _identity, idempotent=True)


def alter_configs(name: str, configs: Mapping[str, Any]) -> Call[dict[str, Any]]:
    def parse(body: Any) -> dict[str, Any]:
        if body is None:
            return {}
        data = _mapping(body, "alter configs")
        return TopicDescription.from_json({"configs": data.get("configs", data)}).configs

    return Call(
        "PUT",
        f"/v1/topics/{_seg(name)}/configs",
        parse,
        json={"configs": dict(configs)},
        idempotent=True,
    )


# -- records -------------------------------------------------------------------------------------


def produce(
    topic: str,
    records: Sequence[OutgoingRecord],
    *,
    partition: int | None,
    acks: str,
    key_format: str,
    value_format: str,
    producer_id: int | None = None,
    producer_epoch: int | None = None,
    sequence: int | None = None,
    idempotency_key: str | None = None,
    record_partitions: Sequence[int | None] | None = None,
) -> Call[ProduceResult]:
    """A produce request; to one partition's endpoint when ``partition`` is given."""
    bodies, binary_headers = records_body(records)
    body: dict[str, Any] = {"records": bodies, "key_format": key_format, "value_format": value_format}
    if record_partitions is not None:
        bodies = [
            {**b, "partition": p} if p is not None else b
            for b, p in zip(bodies, record_partitions, strict=True)
        ]
        body["records"] = bodies
    params: dict[str, Any] = {"acks": acks}
    if binary_headers:
        body["header_format"] = "binary"
    if producer_id is not None:
        body["producer_id"] = producer_id
        body["producer_epoch"] = producer_epoch
        body["sequence"] = sequence
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    path = (
        f"/v1/topics/{_seg(topic)}/records"
        if partition is None
        else f"/v1/topics/{_seg(topic)}/partitions/{partition}/records"
    )

    def parse(answer: Any) -> ProduceResult:
        from tidelog._errors import error_from_response

        results: list[RecordMetadata | Exception] = []
        items = _mapping(answer, "produce").get("results") if answer is not None else None
        if items is None:
            # acks=0 may answer before offsets are known.
            items = [{} for _ in records]
        for item in items:
            if not isinstance(item, Mapping):
                raise ProtocolError("produce: a result is not an object")
            if "error_code" in item and item.get("offset") is None:
                code = item.get("error_code")
                results.append(
                    error_from_response(
                        int(code) // 100 if isinstance(code, int) else 500,
                        {"error_code": code, "detail": item.get("message") or item.get("detail") or ""},
                    )
                )
                continue
            part = item.get("partition")
            off = item.get("offset")
            ts = item.get("timestamp")
            results.append(
                RecordMetadata(
                    topic=topic,
                    partition=part if isinstance(part, int) else (partition if partition is not None else -1),
                    offset=off if isinstance(off, int) else -1,
                    timestamp=ts if isinstance(ts, int) else -1,
                )
            )
        return ProduceResult(tuple(results))

    return Call(
        "POST",
        path,
        parse,
        params=params,
        json=body,
        headers=headers,
        idempotent=producer_id is not None or idempotency_key is not None,
        # A 307 means the broker did not append: re-sending the body to the leader is always safe.
        partition_route=None if partition is None else (topic, partition),
    )


def fetch(
    topic: str,
    partition: int,
    offset: int,
    *,
    max_records: int | None,
    max_bytes: int | None,
    max_wait_ms: int | None,
    min_bytes: int | None,
    key_format: str | None,
    value_format: str | None,
    header_format: str | None = None,
) -> Call[FetchResult]:
    params: dict[str, Any] = {"offset": offset}
    for name, value in (
        ("max_records", max_records),
        ("max_bytes", max_bytes),
        ("max_wait_ms", max_wait_ms),
        ("min_bytes", min_bytes),
        ("key_format", key_format),
        ("value_format", value_format),
        ("header_format", header_format),
    ):
        if value is not None:
            params[name] = value
    return Call(
        "GET",
        f"/v1/topics/{_seg(topic)}/partitions/{partition}/records",
        lambda b: FetchResult.from_json(
            _mapping(b, "fetch"),
            topic=topic,
            partition=partition,
            offset=offset,
            key_format=key_format,
            value_format=value_format,
            header_format=header_format,
        ),
        params=params,
        idempotent=True,
        extra_timeout=(max_wait_ms or 0) / 1000.0,
        partition_route=(topic, partition),
    )


def produce_batch(
    topic: str,
    records: Sequence[OutgoingRecord],
    *,
    partition: int,
    acks: str,
    key_format: str,
    value_format: str,
    producer_id: int | None = None,
    producer_epoch: int | None = None,
    sequence: int | None = None,
) -> Call[ProduceResult]:
    """A binary produce (``application/vnd.tidelog.batch``) of ``records`` as one record batch."""
    from tidelog._batch import BATCH_MEDIA_TYPE, encode_records

    data, timestamps = encode_records(
        records,
        key_format=key_format,
        value_format=value_format,
        producer_id=-1 if producer_id is None else producer_id,
        producer_epoch=-1 if producer_epoch is None or producer_id is None else producer_epoch,
        base_sequence=-1 if sequence is None or producer_id is None else sequence,
    )

    def parse(answer: Any) -> ProduceResult:
        batches = _mapping(answer, "produce").get("batches") if answer is not None else None
        if not batches:
            # acks=0: answered before the append.
            return ProduceResult(tuple(RecordMetadata(topic, partition, -1, -1) for _ in records))
        if len(batches) != 1 or not isinstance(batches[0], Mapping):
            raise ProtocolError(f"produce: {len(batches)} batch results for one batch")
        answer_batch = batches[0]
        base, last = answer_batch.get("base_offset"), answer_batch.get("last_offset")
        append_time = answer_batch.get("log_append_time")
        if not isinstance(append_time, int) or append_time < 0:
            append_time = None
        if not isinstance(base, int) or not isinstance(last, int) or last - base + 1 != len(records):
            raise ProtocolError(f"produce: offsets {base}..{last} for {len(records)} records")
        results: tuple[RecordMetadata | Exception, ...] = tuple(
            RecordMetadata(topic, partition, base + i, ts if append_time is None else append_time)
            for i, ts in enumerate(timestamps)
        )
        return ProduceResult(results)

    return Call(
        "POST",
        f"/v1/topics/{_seg(topic)}/partitions/{partition}/records",
        parse,
        params={"acks": acks},
        headers={"Content-Type": BATCH_MEDIA_TYPE},
        content=data,
        idempotent=producer_id is not None,
        partition_route=(topic, partition),
    )


def fetch_batches(
    topic: str,
    partition: int,
    offset: int,
    *,
    max_records: int | None,
    max_bytes: int | None,
    max_wait_ms: int | None,
    min_bytes: int | None,
    key_format: str | None = None,
    value_format: str | None = None,
    header_format: str | None = None,
) -> Call[FetchResult]:
    """A binary fetch: the stored batches, decoded here; a broker that answers JSON is read as JSON.

    Formats other than the stored one or ``binary`` need the JSON fetch (the broker converts them).
    """
    from tidelog._batch import BATCH_MEDIA_TYPE, decode_fetch
    from tidelog._codec import CodecError

    params: dict[str, Any] = {"offset": offset}
    for name, value in (("max_bytes", max_bytes), ("max_wait_ms", max_wait_ms), ("min_bytes", min_bytes)):
        if value is not None:
            params[name] = value

    def parse(response: Any) -> FetchResult:
        if not response.headers.get("content-type", "").startswith(BATCH_MEDIA_TYPE):
            # A broker without the binary format ignores the Accept and answers JSON.
            return FetchResult.from_json(
                _mapping(response.json(), "fetch"),
                topic=topic,
                partition=partition,
                offset=offset,
                key_format=key_format,
                value_format=value_format,
                header_format=header_format,
            )
        try:
            numbers = [
                int(response.headers[h])
                for h in ("Tidelog-Next-Offset", "Tidelog-High-Watermark", "Tidelog-Log-Start-Offset")
            ]
        except (KeyError, ValueError):
            raise ProtocolError("fetch: a binary answer without its Tidelog-* offset headers") from None
        try:
            return decode_fetch(
                response.content,
                topic=topic,
                partition=partition,
                offset=offset,
                next_offset=numbers[0],
                high_watermark=numbers[1],
                log_start_offset=numbers[2],
                max_records=max_records,
                key_format=key_format,
                value_format=value_format,
                header_format=header_format,
            )
        except CodecError as exc:
            raise ProtocolError(f"fetch: the broker's record batches do not decode: {exc}") from None

    return Call(
        "GET",
        f"/v1/topics/{_seg(topic)}/partitions/{partition}/records",
        parse,
        params=params,
        headers={"Accept": BATCH_MEDIA_TYPE},
        idempotent=True,
        extra_timeout=(max_wait_ms or 0) / 1000.0,
        partition_route=(topic, partition),
        raw=True,
    )


def fetch_many(
    offsets: Mapping[TopicPartition, int],
    *,
    max_records: int | None,
    max_bytes: int | None,
    partition_max_bytes: int | None,
    max_wait_ms: int | None,
    min_bytes: int | None,
    binary: bool,
) -> Call[dict[TopicPartition, FetchResult | Exception]]:
    """One ``POST /v1/fetch`` of many partitions; each comes back as its ``FetchResult`` or its error.

    Sent to the leader of the first partition when the client knows it (the caller groups the
    partitions by leader). ``binary``: asks for the framed record batches (docs/records.md); a JSON
    answer is read as such.
    """
    from tidelog._batch import BATCH_MEDIA_TYPE, decode_fetch_many
    from tidelog._codec import CodecError
    from tidelog._errors import error_from_response

    wanted: list[dict[str, Any]] = []
    for tp, offset in offsets.items():
        entry: dict[str, Any] = {"topic": tp.topic, "partition": tp.partition, "offset": offset}
        if partition_max_bytes is not None:
            entry["max_bytes"] = partition_max_bytes
        wanted.append(entry)
    body: dict[str, Any] = {"partitions": wanted}
    for name, value in (
        ("max_records", max_records),
        ("max_bytes", max_bytes),
        ("max_wait_ms", max_wait_ms),
        ("min_bytes", min_bytes),
    ):
        if value is not None:
            body[name] = value

    def parse(response: Any) -> dict[TopicPartition, FetchResult | Exception]:
        if response.headers.get("content-type", "").startswith(BATCH_MEDIA_TYPE):
            try:
                return decode_fetch_many(response.content, offsets, max_records=max_records)
            except (CodecError, ValueError, struct.error) as exc:
                raise ProtocolError(f"fetch: a binary answer that does not decode: {exc}") from None
        out: dict[TopicPartition, FetchResult | Exception] = {}
        for part in _mapping(response.json(), "fetch").get("partitions") or ():
            if not isinstance(part, Mapping):
                raise ProtocolError("fetch: a partition is not an object")
            tp = TopicPartition(str(part.get("topic")), int(part.get("partition", -1)))
            code = part.get("error_code")
            if isinstance(code, int):
                out[tp] = error_from_response(code // 100, {**part, "detail": part.get("message") or ""})
                continue
            out[tp] = FetchResult.from_json(
                part, topic=tp.topic, partition=tp.partition, offset=offsets.get(tp, 0)
            )
        return out

    first = next(iter(offsets))
    return Call(
        "POST",
        "/v1/fetch",
        parse,
        json=body,
        headers={"Accept": BATCH_MEDIA_TYPE} if binary else {},
        idempotent=True,
        extra_timeout=(max_wait_ms or 0) / 1000.0,
        partition_route=(first.topic, first.partition),
        raw=True,
    )


def partition_offsets(topic: str, partition: int, timestamp: int | None = None) -> Call[PartitionOffsets]:
    return Call(
        "GET",
        f"/v1/topics/{_seg(topic)}/partitions/{partition}/offsets",
        lambda b: PartitionOffsets.from_json(_mapping(b, "offsets")),
        params={"timestamp": timestamp} if timestamp is not None else {},
        idempotent=True,
        partition_route=(topic, partition),
    )


def delete_records(topic: str, partition: int, offset: int) -> Call[int]:
    def parse(body: Any) -> int:
        low = _mapping(body, "delete records").get("low_watermark")
        if not isinstance(low, int):
            raise ProtocolError("delete records: low_watermark must be an integer")
        return low

    return Call(
        "POST",
        f"/v1/topics/{_seg(topic)}/partitions/{partition}/delete-records",
        parse,
        json={"offset": offset},
        idempotent=True,  # moving the log start to the same offset again changes nothing
        partition_route=(topic, partition),
    )


def init_producer() -> Call[tuple[int, int]]:
    def parse(body: Any) -> tuple[int, int]:
        data = _mapping(body, "init producer")
        pid, epoch = data.get("producer_id"), data.get("producer_epoch")
        if not isinstance(pid, int) or not isinstance(epoch, int):
            raise ProtocolError("init producer: producer_id and producer_epoch must be integers")
        return pid, epoch

    # A lost answer only wastes an id: the producer asks again.
    return Call("POST", "/v1/producers", parse, json={}, idempotent=True)


# -- groups --------------------------------------------------------------------------------------


def join_group(
    group: str,
    *,
    topics: Sequence[str] | None,
    topic_pattern: str | None,
    assignor: str,
    session_timeout_ms: int,
    rebalance_timeout_ms: int | None,
    instance_id: str | None,
    auto_offset_reset: str,
) -> Call[dict[str, Any]]:
    body: dict[str, Any] = {
        "assignor": assignor,
        "session_timeout_ms": session_timeout_ms,
        "auto_offset_reset": auto_offset_reset,
    }
    if topics is not None:
        body["topics"] = list(topics)
    if topic_pattern is not None:
        body["topic_pattern"] = topic_pattern
    if rebalance_timeout_ms is not None:
        body["rebalance_timeout_ms"] = rebalance_timeout_ms
    if instance_id is not None:
        body["instance_id"] = instance_id
    return Call(
        "POST",
        f"/v1/groups/{_seg(group)}/members",
        lambda b: dict(_mapping(b, "join group")),
        json=body,
        # A static member (instance_id) rejoining is idempotent; a dynamic one would leave a ghost
        # member behind that the session timeout removes.
        idempotent=instance_id is not None,
    )


def heartbeat(group: str, member_id: str, generation: int | None = None) -> Call[dict[str, Any]]:
    """A heartbeat; ``generation`` acknowledges the revocations the member has carried out up to it."""
    return Call(
        "POST",
        f"/v1/groups/{_seg(group)}/members/{_seg(member_id)}/heartbeat",
        lambda b: dict(_mapping(b, "heartbeat")),
        json={"generation": generation} if generation is not None else {},
        idempotent=True,
    )


def leave_group(group: str, member_id: str) -> Call[None]:
    return Call("DELETE", f"/v1/groups/{_seg(group)}/members/{_seg(member_id)}", _none, idempotent=True)


def poll_member(
    group: str,
    member_id: str,
    *,
    max_records: int | None,
    max_bytes: int | None,
    max_wait_ms: int,
    key_format: str | None = None,
    value_format: str | None = None,
) -> Call[dict[str, Any]]:
    params: dict[str, Any] = {"max_wait_ms": max_wait_ms}
    if max_records is not None:
        params["max_records"] = max_records
    if max_bytes is not None:
        params["max_bytes"] = max_bytes
    if key_format is not None:
        params["key_format"] = key_format
    if value_format is not None:
        params["value_format"] = value_format
    return Call(
        "GET",
        f"/v1/groups/{_seg(group)}/members/{_seg(member_id)}/records",
        lambda b: dict(_mapping(b, "poll")),
        params=params,
        # Not idempotent: the poll advances the member's position, so a lost answer means records
        # that only a rebalance or a seek brings back. The consumer handles it by seeking.
        idempotent=False,
        extra_timeout=max_wait_ms / 1000.0,
    )


def seek(group: str, member_id: str, topic: str, partition: int, to: str, value: int | None) -> Call[None]:
    body: dict[str, Any] = {"topic": topic, "partition": partition, "to": to}
    if value is not None:
        body["value"] = value
    return Call(
        "POST",
        f"/v1/groups/{_seg(group)}/members/{_seg(member_id)}/seek",
        _none,
        json=body,
        idempotent=to != "shift_by",
    )


def commit(
    group: str,
    offsets: Iterable[tuple[str, int, int, str | None]],
    *,
    member_id: str | None,
    generation: int | None,
) -> Call[None]:
    body: dict[str, Any] = {
        "offsets": [
            {"topic": t, "partition": p, "offset": o, **({"metadata": m} if m is not None else {})}
            for t, p, o, m in offsets
        ]
    }
    if member_id is not None:
        body["member_id"] = member_id
        body["generation"] = generation
    return Call("POST", f"/v1/groups/{_seg(group)}/offsets", _none, json=body, idempotent=True)


def group_offsets(group: str) -> Call[OffsetsResult]:
    return Call("GET", f"/v1/groups/{_seg(group)}/offsets", OffsetsResult.from_json, idempotent=True)


def list_groups() -> Call[list[dict[str, Any]]]:
    def parse(body: Any) -> list[dict[str, Any]]:
        items = body.get("groups") if isinstance(body, Mapping) else body
        if not isinstance(items, list):
            raise ProtocolError("list groups: expected a list")
        return [dict(g) if isinstance(g, Mapping) else {"group_id": str(g)} for g in items]

    return Call("GET", "/v1/groups", parse, idempotent=True)


def describe_group(group: str) -> Call[GroupDescription]:
    return Call(
        "GET",
        f"/v1/groups/{_seg(group)}",
        lambda b: GroupDescription.from_json({"group_id": group, **_mapping(b, "describe group")}),
        idempotent=True,
    )


def delete_group(group: str) -> Call[None]:
    return Call("DELETE", f"/v1/groups/{_seg(group)}", _none, idempotent=True)


def reset_offsets(
    group: str,
    topics: Sequence[str],
    to: str,
    value: int | None,
    dry_run: bool,
) -> Call[OffsetsResult]:
    body: dict[str, Any] = {"topics": list(topics), "to": to, "dry_run": dry_run}
    if value is not None:
        body["value"] = value
    return Call(
        "POST",
        f"/v1/groups/{_seg(group)}/offsets/reset",
        OffsetsResult.from_json,
        json=body,
        idempotent=to != "shift_by",
    )


# -- service -------------------------------------------------------------------------------------


def cluster() -> Call[dict[str, Any]]:
    return Call("GET", "/v1/cluster", lambda b: dict(_mapping(b, "cluster")), idempotent=True)


# -- credentials (docs/security.md): API keys and password users -----------------------------------


def _dict(body: Any) -> dict[str, Any]:
    return dict(_mapping(body, "answer"))


def _list_of(name: str) -> Callable[[Any], list[dict[str, Any]]]:
    def parse(body: Any) -> list[dict[str, Any]]:
        items = _mapping(body, name).get(name)
        if not isinstance(items, list):
            raise ProtocolError(f"{name}: expected a list")
        return [dict(item) for item in items if isinstance(item, Mapping)]

    return parse


# --- ACLs and quotas (kafka-acls, kafka-configs --entity-type users) ------------------------------


def _acl_list(what: str) -> Callable[[Any], list[dict[str, Any]]]:
    def parse(body: Any) -> list[dict[str, Any]]:
        items = _mapping(body, what).get("acls")
        if not isinstance(items, list):
            raise ProtocolError(f"{what}: expected a list of ACLs")
        return [dict(item) for item in items if isinstance(item, Mapping)]

    return parse


def create_api_key(principal: str, description: str, expires_at_ms: int | None) -> Call[dict[str, Any]]:
    body: dict[str, Any] = {"principal": principal, "description": description}
    if expires_at_ms is not None:
        body["expires_at_ms"] = expires_at_ms
    return Call("POST", "/v1/keys", _dict, json=body)


def list_api_keys(principal: str | None) -> Call[list[dict[str, Any]]]:
    params = {"principal": principal} if principal is not None else {}
    return Call("GET", "/v1/keys", _list_of("keys"), params=params, idempotent=True)


def revoke_api_key(key_id: str) -> Call[dict[str, Any]]:
    return Call("DELETE", f"/v1/keys/{_seg(key_id)}", _dict, idempotent=True)


def create_user(name: str, password: str) -> Call[dict[str, Any]]:
    return Call("POST", "/v1/users", _dict, json={"name": name, "password": password})


def list_users() -> Call[list[dict[str, Any]]]:
    return Call("GET", "/v1/users", _list_of("users"), idempotent=True)


def alter_user(name: str, password: str) -> Call[dict[str, Any]]:
    return Call("PUT", f"/v1/users/{_seg(name)}", _dict, json={"password": password}, idempotent=True)


def delete_user(name: str) -> Call[None]:
    return Call("DELETE", f"/v1/users/{_seg(name)}", _none, idempotent=True)


def whoami() -> Call[dict[str, Any]]:
    return Call("GET", "/v1/whoami", _dict, idempotent=True)
def create_acls(acls: Sequence[Mapping[str, Any]]) -> Call[list[dict[str, Any]]]:
    # Creating a binding twice adds it once: safe to send again.
    return Call("POST", "/v1/acls", _acl_list("create ACLs"), json={"acls": [dict(a) for a in acls]},
                idempotent=True)


def list_acls(where: Mapping[str, Any]) -> Call[list[dict[str, Any]]]:
    params = {k: v for k, v in where.items() if v is not None}
    return Call("GET", "/v1/acls", _acl_list("list ACLs"), params=params, idempotent=True)


def delete_acls(where: Mapping[str, Any]) -> Call[list[dict[str, Any]]]:
    params = {k: v for k, v in where.items() if v is not None}
    return Call("DELETE", "/v1/acls", _acl_list("delete ACLs"), params=params, idempotent=True)


def list_quotas() -> Call[list[dict[str, Any]]]:
    def parse(body: Any) -> list[dict[str, Any]]:
        items = _mapping(body, "list quotas").get("quotas")
        if not isinstance(items, list):
            raise ProtocolError("list quotas: expected a list")
        return [dict(item) for item in items if isinstance(item, Mapping)]

    return Call("GET", "/v1/quotas", parse, idempotent=True)


def set_quota(principal: str, limits: Mapping[str, int | None]) -> Call[dict[str, Any]]:
    return Call("PUT", f"/v1/quotas/{_seg(principal)}", lambda b: dict(_mapping(b, "set quota")),
                json=dict(limits), idempotent=True)


def delete_quota(principal: str) -> Call[None]:
    return Call("DELETE", f"/v1/quotas/{_seg(principal)}", _none, idempotent=True)
