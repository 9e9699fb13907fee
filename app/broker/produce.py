"""Produce requests: the JSON body checked by hand (fast), and the per-record outcome types.

A produce body with 1,000 records must not cost 1,000 pydantic model validations: the body is
parsed once with orjson and checked here field by field, with errors that name the record
(``records[17].value is not valid base64``). ``app/routes/records.py`` declares the same schema
for OpenAPI with pydantic models that are never run on the hot path.

Error classes: malformed structure or wrong JSON types → ``InvalidRequestError`` (400, 40001);
a key/value/header that cannot be stored in its declared format → ``InvalidRecordError`` (400,
40002); a value outside a documented limit → ``InvalidParameterError`` (422, 42204); a JSON key or value
nested deeper than ``max_json_depth`` or holding a number no reader can hold → 422 42221/42222
(``app/broker/json_limits.py``). A request with any such error is refused as a whole before
anything is appended.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, NamedTuple

import msgspec
import orjson

from app.broker.formats import Format, encode_data, encode_header_value, pack_attributes, parse_format
from app.broker.json_limits import (
    DEFAULT_MAX_JSON_DEPTH,
    NumberOutOfRangeError,
    ValueTooDeepError,
    check_json_text,
    dump_json,
    may_hold_big_numbers,
)
from app.errors_base import InvalidParameterError, InvalidRequestError, TidelogError
from storage import Header, RecordIn

__all__ = [
    "INT32_MAX",
    "INT64_MAX",
    "ParsedRecords",
    "RecordResult",
    "parse_produce_body",
    "parse_produce_json",
    "parse_record",
    "parse_record_json",
]

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
INT16_MAX = 2**15 - 1

_BODY_FIELDS = frozenset(
    {"records", "key_format", "value_format", "header_format", "producer_id", "producer_epoch", "sequence"}
)
_RECORD_FIELDS = frozenset({"key", "value", "headers", "partition", "timestamp"})
_NO_HEADERS: tuple[None, list[object]] = (None, [])


@dataclass(slots=True)
class ParsedRecords:
    """Records ready to append, with the partition each one asked for (None: partitioner decides)."""

    records: list[RecordIn] = field(default_factory=list)
    partitions: list[int | None] = field(default_factory=list)
    producer_id: int = -1
    producer_epoch: int = -1
    sequence: int = -1

    @property
    def idempotent(self) -> bool:
        return self.producer_id >= 0


class RecordResult(NamedTuple):
    """The outcome of one produced record: its offset, or the error of its partition's batch.

    A NamedTuple, not a dataclass: a 1,000-record request makes 1,000 of them.
    """

    partition: int
    offset: int = -1
    timestamp: int = -1
    error_code: int | None = None
    message: str | None = None

    def as_json(self) -> dict[str, object]:
        if self.error_code is None:
            return {"partition": self.partition, "offset": self.offset, "timestamp": self.timestamp}
        return {"partition": self.partition, "error_code": self.error_code, "message": self.message}


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _optional_int(obj: Mapping[str, object], name: str, where: str, low: int, high: int) -> int | None:
    value = obj.get(name)
    if value is None:
        return None
    if type(value) is not int:
        raise InvalidRequestError(f"{where}{name} must be an integer, got {_type_name(value)}")
    if not low <= value <= high:
        raise InvalidParameterError(f"{where}{name} must be between {low} and {high}, got {value}")
    return value


def parse_record(
    obj: object,
    where: str,
    *,
    key_format: Format,
    value_format: Format,
    header_binary: bool,
    attributes: int,
    now_ms: int,
    max_depth: int = DEFAULT_MAX_JSON_DEPTH,
) -> tuple[RecordIn, int | None]:
    """One record object of a produce request → the ``RecordIn`` to append and its asked partition."""
    if type(obj) is not dict:
        raise InvalidRequestError(f"{where} must be an object, got {_type_name(obj)}")
    if not obj.keys() <= _RECORD_FIELDS:
        unknown = sorted(set(obj) - _RECORD_FIELDS)
        raise InvalidRequestError(
            f"{where} has unknown field(s) {', '.join(unknown)}; "
            "a record has key, value, headers, partition, timestamp"
        )
    if "value" not in obj:
        raise InvalidRequestError(f"{where}.value is required (null for a tombstone)")
    key = _encode(obj.get("key"), key_format, f"{where}.key", max_depth)
    value = _encode(obj["value"], value_format, f"{where}.value", max_depth)
    partition = _optional_int(obj, "partition", f"{where}.", 0, INT32_MAX)
    timestamp = _optional_int(obj, "timestamp", f"{where}.", 0, INT64_MAX)
    raw_headers = obj.get("headers")
    headers: Sequence[Header] = ()
    if raw_headers is not None:
        headers = _parse_headers(raw_headers, f"{where}.headers", header_binary)
    record = RecordIn(
        value=value,
        key=key,
        headers=headers,
        timestamp=now_ms if timestamp is None else timestamp,
        attributes=attributes,
    )
    return record, partition


def _parse_headers(raw: object, where: str, binary: bool) -> list[Header]:
    if type(raw) is not list:
        raise InvalidRequestError(
            f"{where} must be an array of {{key, value}} objects, got {_type_name(raw)}"
        )
    headers: list[Header] = []
    for i, item in enumerate(raw):
        if type(item) is not dict or not item.keys() <= {"key", "value"}:
            raise InvalidRequestError(f"{where}[{i}] must be an object with key and value")
        name = item.get("key")
        if type(name) is not str:
            raise InvalidRequestError(f"{where}[{i}].key must be a string, got {_type_name(name)}")
        headers.append((name, encode_header_value(item.get("value"), binary, f"{where}[{i}].value")))
    return headers


def _header_binary(name: object) -> bool:
    if name is None or name == "string":
        return False
    if name == "binary":
        return True
    raise InvalidParameterError(f"header_format must be string or binary, got {name!r}")


def _encode(data: object, fmt: Format, where: str, max_depth: int) -> bytes | None:
    """``encode_data``, with the nesting and number checks for JSON."""
    if fmt is Format.JSON and data is not None:
        return dump_json(data, where, max_depth)
    return encode_data(data, fmt, where)


def _loads(text: bytes, where: str, max_depth: int) -> object:
    """``text`` parsed exactly, or the error that says why not (``where``: "the request body", "line 3").

    orjson reads an integer beyond 64 bits as a float, which would store another number than the
    one sent: text that may hold one is parsed by msgspec, which keeps integers exact (and refuses
    the ones it cannot hold), so the number check names the field.
    """
    if may_hold_big_numbers(text):
        try:
            return msgspec.json.decode(text)
        except msgspec.ValidationError:  # an integer or float msgspec cannot hold
            _locate_number(text, where, max_depth)
            raise NumberOutOfRangeError(
                f"{where} holds a number which not every reader can hold: integers must lie in "
                "-2**63..2**64-1 and floats within a double's range; send it as a string",
                field=where,
            ) from None
        except RecursionError:
            raise _too_deep(where, max_depth) from None
        except msgspec.DecodeError as exc:
            raise InvalidRequestError(f"{where} is not valid JSON: {exc}") from None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        if str(exc).startswith("depth limit"):
            raise _too_deep(where, max_depth) from None
        if "infinity" in str(exc):
            raise NumberOutOfRangeError(
                f"{where} holds a number beyond a double's range, which not every reader can hold",
                field=where,
            ) from None
        raise InvalidRequestError(f"{where} is not valid JSON: {exc}") from None


_top_level = msgspec.json.Decoder(dict[str, msgspec.Raw]).decode
_raw_list = msgspec.json.Decoder(list[msgspec.Raw]).decode


def _locate_number(text: bytes, where: str, max_depth: int) -> None:
    """Raise the number check's error naming the record field of ``text`` that holds the number."""
    try:
        top = _top_level(text)
        if where == "the request body":
            records = _raw_list(bytes(top["records"]))
            places = [(f"records[{i}]", _top_level(bytes(raw))) for i, raw in enumerate(records)]
        else:
            places = [(where, top)]
    except (msgspec.DecodeError, msgspec.ValidationError, KeyError, RecursionError):
        return
    for place, fields in places:
        for name in ("key", "value"):
            if name in fields:
                check_json_text(bytes(fields[name]), f"{place}.{name}", max_depth)


def _too_deep(where: str, max_depth: int) -> ValueTooDeepError:
    return ValueTooDeepError(
        f"{where} nests arrays and objects far deeper than a record's key or value may "
        f"({max_depth} levels, max_json_depth)",
        limit=max_depth,
    )


def parse_produce_body(
    body: object, *, max_records: int, now_ms: int, max_depth: int = DEFAULT_MAX_JSON_DEPTH
) -> ParsedRecords:
    """The JSON body of ``POST .../records`` → records to append.

    Raises ``InvalidRequestError``/``InvalidRecordError``/``InvalidParameterError`` naming the record.
    """
    if type(body) is not dict:
        raise InvalidRequestError(f"the request body must be a JSON object, got {_type_name(body)}")
    if not body.keys() <= _BODY_FIELDS:
        unknown = sorted(set(body) - _BODY_FIELDS)
        raise InvalidRequestError(f"unknown field(s) {', '.join(unknown)} in the request body")
    raw_records = body.get("records")
    if type(raw_records) is not list:
        raise InvalidRequestError(f"records must be an array, got {_type_name(raw_records)}")
    if not raw_records:
        raise InvalidParameterError("records must contain at least one record")
    if len(raw_records) > max_records:
        raise InvalidParameterError(
            f"{len(raw_records)} records in one request; the limit is {max_records} (max_records_per_request)"
        )
    key_format = parse_format(body.get("key_format"), default=Format.STRING, field="key_format")
    value_format = parse_format(body.get("value_format"), default=Format.JSON, field="value_format")
    header_binary = _header_binary(body.get("header_format"))
    parsed = ParsedRecords()
    producer_id = _optional_int(body, "producer_id", "", 0, INT64_MAX)
    producer_epoch = _optional_int(body, "producer_epoch", "", 0, INT16_MAX)
    sequence = _optional_int(body, "sequence", "", 0, INT32_MAX)
    given = (producer_id is not None, producer_epoch is not None, sequence is not None)
    if any(given) and not all(given):
        raise InvalidRequestError(
            "producer_id, producer_epoch and sequence go together: give all three or none"
        )
    if producer_id is not None and producer_epoch is not None and sequence is not None:
        parsed.producer_id, parsed.producer_epoch, parsed.sequence = producer_id, producer_epoch, sequence
    attributes = pack_attributes(key_format, value_format)
    _parse_records(
        raw_records, parsed, key_format, value_format, header_binary, attributes, now_ms, max_depth
    )
    return parsed


def _parse_records(
    raw_records: list[object],
    parsed: ParsedRecords,
    key_format: Format,
    value_format: Format,
    header_binary: bool,
    attributes: int,
    now_ms: int,
    max_depth: int,
) -> None:
    """The records loop: a fast path for plain records, ``parse_record`` (exact errors) for the rest.

    The fast path takes records whose fields are the known ones, whose key is null or (string
    format) a string, whose value is in JSON format, or null, or a string (string format), whose
    partition and timestamp are absent or in-range integers, and whose headers are absent or empty:
    what nearly every request sends. Anything else goes through ``parse_record``, which stores the
    same bytes or raises the precise error.
    """
    records = parsed.records
    partitions = parsed.partitions
    add_record = records.append
    add_partition = partitions.append
    new_record = RecordIn
    fields = _RECORD_FIELDS
    json_values = value_format is Format.JSON
    string_values = value_format is Format.STRING
    string_keys = key_format is Format.STRING
    for i, obj in enumerate(raw_records):
        if (
            isinstance(obj, dict)
            and "value" in obj
            and obj.keys() <= fields
            and obj.get("headers") in _NO_HEADERS
        ):
            key = obj.get("key")
            value = obj["value"]
            partition = obj.get("partition")
            timestamp = obj.get("timestamp")
            if (
                (key is None or (string_keys and type(key) is str and key.isascii()))
                and (partition is None or (type(partition) is int and 0 <= partition <= INT32_MAX))
                and (timestamp is None or (type(timestamp) is int and 0 <= timestamp <= INT64_MAX))
                and (
                    json_values or value is None or (string_values and type(value) is str and value.isascii())
                )
            ):
                if value is not None:
                    value = (
                        dump_json(value, f"records[{i}].value", max_depth)
                        if json_values
                        else value.encode("ascii")
                    )
                add_record(
                    new_record(
                        value,
                        None if key is None else key.encode("ascii"),
                        (),
                        now_ms if timestamp is None else timestamp,
                        attributes,
                    )
                )
                add_partition(partition)
                continue
        record, partition = parse_record(
            obj,
            f"records[{i}]",
            key_format=key_format,
            value_format=value_format,
            header_binary=header_binary,
            attributes=attributes,
            now_ms=now_ms,
            max_depth=max_depth,
        )
        add_record(record)
        add_partition(partition)


def estimated_size(record: RecordIn) -> int:
    """An upper bound of the bytes ``record`` takes inside a record batch (varints at their widest)."""
    size = 1 + 10 + 5 + 5 + 5 + 5 + 5  # length, attributes, timestamp/offset deltas, key/value lengths, count
    if record.key is not None:
        size += len(record.key)
    if record.value is not None:
        size += len(record.value)
    for name, value in record.headers:
        size += 10 + len(name.encode("utf-8", "surrogatepass")) + (len(value) if value is not None else 0)
    return size


# ------------------------------------------------------------------------------------- fast path


class _RecordHeaderIn(msgspec.Struct, forbid_unknown_fields=True):
    key: str
    value: str | None = None


class _RecordInBody(msgspec.Struct, forbid_unknown_fields=True):
    value: msgspec.Raw
    key: Any = None
    headers: list[_RecordHeaderIn] | None = None
    partition: Annotated[int, msgspec.Meta(ge=0, le=INT32_MAX)] | None = None
    timestamp: Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)] | None = None


_FormatName = Literal["json", "string", "binary"]


class _ProduceBody(msgspec.Struct, forbid_unknown_fields=True):
    records: list[_RecordInBody]
    key_format: _FormatName | None = None
    value_format: _FormatName | None = None
    header_format: Literal["string", "binary"] | None = None
    producer_id: Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)] | None = None
    producer_epoch: Annotated[int, msgspec.Meta(ge=0, le=INT16_MAX)] | None = None
    sequence: Annotated[int, msgspec.Meta(ge=0, le=INT32_MAX)] | None = None


_decode_body = msgspec.json.Decoder(_ProduceBody).decode


def _needs_recheck(text: bytes) -> bool:
    """True when JSON text may not be the compact form: it holds whitespace or a \\u escape."""
    return b" " in text or b"\n" in text or b"\\u" in text or b"\t" in text or b"\r" in text


class _Fallback(Exception):
    """The fast path met something it leaves to the exact parser."""


def parse_produce_json(
    body: bytes, *, max_records: int, now_ms: int, max_depth: int = DEFAULT_MAX_JSON_DEPTH
) -> ParsedRecords:
    """The raw JSON body of a produce request → records to append: fast, with exact errors.

    Most bodies go through a typed msgspec decoder that hands over each value's JSON text without
    building Python objects for it; a value's text is stored as it came when it is already compact
    (no whitespace, no ``\\u`` escapes), else re-encoded compactly by orjson. Anything unusual
    (a type error, a limit, a bad base64 string, …) falls back to ``parse_produce_body`` on the
    orjson-parsed document, which stores the same values or raises the precise error.
    """
    if not body.isascii():
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidRequestError(f"the request body is not valid UTF-8: {exc.reason}") from None
    try:
        return _parse_fast(body, max_records, now_ms, max_depth)
    except (
        msgspec.DecodeError, msgspec.ValidationError, orjson.JSONDecodeError, RecursionError, _Fallback,
        TidelogError,
    ):
        pass
    document = _loads(body, "the request body", max_depth)
    return parse_produce_body(document, max_records=max_records, now_ms=now_ms, max_depth=max_depth)


def _parse_fast(
    body: bytes, max_records: int, now_ms: int, max_depth: int = DEFAULT_MAX_JSON_DEPTH
) -> ParsedRecords:
    decoded = _decode_body(body)
    body_compact = not _needs_recheck(body)
    big_numbers = may_hold_big_numbers(body)
    raw_records = decoded.records
    if not 1 <= len(raw_records) <= max_records:
        raise _Fallback
    ids = (decoded.producer_id, decoded.producer_epoch, decoded.sequence)
    if any(v is not None for v in ids) and not all(v is not None for v in ids):
        raise _Fallback
    key_format = parse_format(decoded.key_format, default=Format.STRING, field="key_format")
    value_format = parse_format(decoded.value_format, default=Format.JSON, field="value_format")
    header_binary = decoded.header_format == "binary"
    attributes = pack_attributes(key_format, value_format)
    parsed = ParsedRecords()
    if decoded.producer_id is not None:
        parsed.producer_id = decoded.producer_id
        parsed.producer_epoch = decoded.producer_epoch if decoded.producer_epoch is not None else -1
        parsed.sequence = decoded.sequence if decoded.sequence is not None else -1
    add_record = parsed.records.append
    add_partition = parsed.partitions.append
    new_record = RecordIn
    loads = orjson.loads
    dumps = orjson.dumps
    json_values = value_format is Format.JSON
    string_keys = key_format is Format.STRING
    for i, item in enumerate(raw_records):
        text = bytes(item.value)
        value: bytes | None
        if text == b"null":
            value = None
        elif json_values:
            # Compact already unless it holds whitespace, or a \\u escape (it may hide a lone surrogate,
            # which orjson refuses). A body without either (what orjson-based clients send) needs
            # no check per value.
            value = text if body_compact or not _needs_recheck(text) else dumps(loads(text))
            if big_numbers or value.count(b"[") + value.count(b"{") > max_depth:
                check_json_text(value, f"records[{i}].value", max_depth)
        else:
            value = encode_data(loads(text), value_format, f"records[{i}].value")
        key = item.key
        if key is not None:
            if string_keys and type(key) is str and key.isascii():
                key = key.encode("ascii")
            else:
                key = _encode(key, key_format, f"records[{i}].key", max_depth)
        headers: Sequence[Header] = ()
        if item.headers:
            headers = [
                (h.key, encode_header_value(h.value, header_binary, f"records[{i}].headers[{j}].value"))
                for j, h in enumerate(item.headers)
            ]
        timestamp = item.timestamp
        add_record(new_record(value, key, headers, now_ms if timestamp is None else timestamp, attributes))
        add_partition(item.partition)
    return parsed


_decode_record = msgspec.json.Decoder(_RecordInBody).decode


def parse_record_json(
    line: bytes,
    where: str,
    *,
    key_format: Format,
    value_format: Format,
    header_binary: bool,
    attributes: int,
    now_ms: int,
    max_depth: int = DEFAULT_MAX_JSON_DEPTH,
) -> tuple[RecordIn, int | None]:
    """One record's JSON text (an NDJSON line) → ``RecordIn`` and asked partition, as ``parse_record``.

    The same fast decoding as ``parse_produce_json``; anything unusual goes through orjson and
    ``parse_record`` for the exact error (``InvalidRequestError`` when the line is not JSON).
    """
    try:
        item = _decode_record(line)
        text = bytes(item.value)
        value: bytes | None
        if text == b"null":
            value = None
        elif value_format is Format.JSON:
            value = orjson.dumps(orjson.loads(text)) if _needs_recheck(text) else text
            check_json_text(value, f"{where}.value", max_depth)
        else:
            value = encode_data(orjson.loads(text), value_format, f"{where}.value")
        key = item.key
        if key is not None:
            key = _encode(key, key_format, f"{where}.key", max_depth)
        headers: Sequence[Header] = ()
        if item.headers:
            headers = [
                (h.key, encode_header_value(h.value, header_binary, f"{where}.headers[{j}].value"))
                for j, h in enumerate(item.headers)
            ]
        timestamp = now_ms if item.timestamp is None else item.timestamp
        return RecordIn(value, key, headers, timestamp, attributes), item.partition
    except (
        msgspec.DecodeError, msgspec.ValidationError, orjson.JSONDecodeError, RecursionError, TidelogError
    ):
        pass
    document = _loads(line, where, max_depth)
    return parse_record(
        document,
        where,
        key_format=key_format,
        value_format=value_format,
        header_binary=header_binary,
        attributes=attributes,
        now_ms=now_ms,
        max_depth=max_depth,
    )
