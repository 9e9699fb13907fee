"""Record key/value formats: how JSON request bodies become record bytes and back.

A produce request names a ``key_format`` and a ``value_format`` (defaults ``string`` and ``json``):

- ``json``: any JSON value, stored as compact JSON text (``{"a": 1}`` → ``b'{"a":1}'``; text that
  is already compact is kept as the client wrote it, e.g. ``1E2`` stays ``1E2``) and returned as
  the same JSON value;
- ``string``: a JSON string, stored as its UTF-8 bytes;
- ``binary``: a base64 (standard alphabet, padded) JSON string, stored as the decoded bytes.

JSON ``null`` is "no key" / "no value"; a record without a value is a tombstone, whatever the format.

The formats a record was produced with are kept in the record's ``attributes`` byte (Kafka leaves
it unused): bits 0-1 the key format, bits 2-3 the value format, each 0 binary, 1 string, 2 json.
Fetch, SSE and compaction therefore return every record in the format it was produced in, unless
the reader asks for another one (``key_format``/``value_format`` on fetch), in which case bytes
that cannot be shown in the asked format (invalid UTF-8 as ``string``, invalid JSON as ``json``)
are an error naming the offset rather than a silently altered value.

Header values are UTF-8 strings, or base64 with ``header_format=binary``. Headers carry no format
bits, so reading a header value that is not UTF-8 as a string replaces the bad bytes with U+FFFD;
ask for ``header_format=binary`` to get the exact bytes.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from enum import IntEnum
from typing import Any

import orjson

from app.broker.errors import InvalidRecordError
from app.errors_base import InvalidParameterError
from storage import Header, Record, TimestampType

__all__ = [
    "Format",
    "decode_header_value",
    "encode_data",
    "encode_header_value",
    "key_format_of",
    "pack_attributes",
    "parse_format",
    "render_record",
    "render_records",
    "value_format_of",
]


class Format(IntEnum):
    """A key or value format; the integer is what the record's attributes byte stores."""

    BINARY = 0
    STRING = 1
    JSON = 2


_BY_NAME = {f.name.lower(): f for f in Format}
_TIMESTAMP_TYPE_NAMES = {
    TimestampType.CREATE_TIME: "CreateTime",
    TimestampType.LOG_APPEND_TIME: "LogAppendTime",
}


def parse_format(name: object, *, default: Format, field: str) -> Format:
    """The ``Format`` named ``name`` (``json``/``string``/``binary``), ``default`` when None."""
    if name is None:
        return default
    fmt = _BY_NAME.get(name) if isinstance(name, str) else None
    if fmt is None:
        raise InvalidParameterError(f"{field} must be one of json, string, binary; got {name!r}")
    return fmt


def pack_attributes(key_format: Format, value_format: Format) -> int:
    """The record attributes byte that records these formats."""
    return int(key_format) | (int(value_format) << 2)


# Indexed by the two format bits; the unused pattern 3 reads as binary. A tuple lookup, because
# calling the enum (``Format(bits)``) costs more than the rest of rendering a record.
_FORMAT_BITS = (Format.BINARY, Format.STRING, Format.JSON, Format.BINARY)


def key_format_of(attributes: int) -> Format:
    """The key format stored in a record's attributes (binary for unknown bit patterns)."""
    return _FORMAT_BITS[attributes & 0b11]


def value_format_of(attributes: int) -> Format:
    """The value format stored in a record's attributes (binary for unknown bit patterns)."""
    return _FORMAT_BITS[(attributes >> 2) & 0b11]


def encode_data(data: object, fmt: Format, where: str) -> bytes | None:
    """The bytes stored for a JSON key or value in format ``fmt``; None for JSON null.

    ``where`` names the place in the request for the error message (``records[3].value``).
    """
    if data is None:
        return None
    if fmt is Format.JSON:
        return orjson.dumps(data)
    if not isinstance(data, str):
        raise InvalidRecordError(
            f"{where} must be a string (or null) in format {fmt.name.lower()}, got {_json_type(data)}"
        )
    if fmt is Format.STRING:
        try:
            return data.encode("utf-8")
        except UnicodeEncodeError as exc:  # lone surrogates from "\ud800" escapes
            raise InvalidRecordError(f"{where} is not valid Unicode text: {exc.reason}") from None
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRecordError(f"{where} is not valid base64") from None


def encode_header_value(data: object, binary: bool, where: str) -> bytes | None:
    """The bytes of a header value given in a request (UTF-8 text, or base64 when ``binary``)."""
    if data is None:
        return None
    return encode_data(data, Format.BINARY if binary else Format.STRING, where)


def decode_header_value(data: bytes | None, binary: bool) -> str | None:
    """A stored header value as JSON text: UTF-8 (bad bytes replaced) or base64 when ``binary``."""
    if data is None:
        return None
    if binary:
        return base64.b64encode(data).decode("ascii")
    return data.decode("utf-8", "replace")


def _json_type(data: object) -> str:
    if isinstance(data, bool):
        return "a boolean"
    if isinstance(data, int | float):
        return "a number"
    if isinstance(data, list):
        return "an array"
    if isinstance(data, dict):
        return "an object"
    return type(data).__name__


def _render(data: bytes | None, stored: Format, fmt: Format, raw_json: bool, offset: int, what: str) -> Any:
    if data is None:
        return None
    if fmt is Format.BINARY:
        return base64.b64encode(data).decode("ascii")
    if fmt is Format.STRING:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidRecordError(
                f"the {what} of the record at offset {offset} is not UTF-8 text; "
                f"fetch it with {what}_format=binary",
                offset=offset,
            ) from None
    if stored is Format.JSON and raw_json:
        # Stored by this broker as orjson output, hence valid JSON: splice the bytes as they are.
        return orjson.Fragment(data)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        raise InvalidRecordError(
            f"the {what} of the record at offset {offset} is not JSON; fetch it with {what}_format=binary",
            offset=offset,
        ) from None


def render_headers(headers: tuple[Header, ...], binary: bool) -> list[dict[str, str | None]]:
    """Record headers as ``[{key, value}]``."""
    return [{"key": k, "value": decode_header_value(v, binary)} for k, v in headers]


def render_record(
    topic: str,
    partition: int,
    record: Record,
    *,
    key_format: Format | None = None,
    value_format: Format | None = None,
    header_format_binary: bool = False,
    timestamp_type: TimestampType = TimestampType.CREATE_TIME,
    raw_json: bool = False,
) -> dict[str, Any]:
    """The JSON object of one record, as fetch, NDJSON and SSE return it.

    ``{topic, partition, offset, timestamp, timestamp_type, key, value, headers}``. Formats left None
    are the ones the record was produced with. With ``raw_json`` JSON keys and values are
    ``orjson.Fragment``s holding the stored bytes (no parse, no re-encode): only ``orjson.dumps`` can
    serialise such a dict, which is what the fetch route uses; leave it False for a plain dict.
    Raises ``InvalidRecordError`` when a record cannot be shown in an explicitly asked format.
    """
    attributes = record.attributes
    stored_key = key_format_of(attributes)
    stored_value = value_format_of(attributes)
    # Format.BINARY is 0, hence falsy: compare with None, never use ``or``.
    shown_key = stored_key if key_format is None else key_format
    shown_value = stored_value if value_format is None else value_format
    return {
        "topic": topic,
        "partition": partition,
        "offset": record.offset,
        "timestamp": record.timestamp,
        "timestamp_type": _TIMESTAMP_TYPE_NAMES[timestamp_type],
        "key": _render(record.key, stored_key, shown_key, raw_json, record.offset, "key"),
        "value": _render(record.value, stored_value, shown_value, raw_json, record.offset, "value"),
        "headers": render_headers(record.headers, header_format_binary) if record.headers else [],
    }


def render_records(
    topic: str,
    partition: int,
    records: Sequence[Record],
    timestamp_types: Sequence[TimestampType],
    *,
    key_format: Format | None = None,
    value_format: Format | None = None,
    header_format_binary: bool = False,
) -> list[dict[str, Any]]:
    """``render_record(..., raw_json=True)`` of many records (the fetch answer), with a fast path.

    When the reader asks for no other format, keys and values are shown as they were produced:
    JSON spliced as ``orjson.Fragment``, text decoded, bytes in base64, one loop with no calls
    per field. Only ``orjson.dumps`` can serialise the dicts (they hold Fragments).
    """
    if key_format is not None or value_format is not None:
        return [
            render_record(
                topic,
                partition,
                record,
                key_format=key_format,
                value_format=value_format,
                header_format_binary=header_format_binary,
                timestamp_type=timestamp_type,
                raw_json=True,
            )
            for record, timestamp_type in zip(records, timestamp_types, strict=True)
        ]
    fragment = orjson.Fragment
    b64 = base64.b64encode
    names = _TIMESTAMP_TYPE_NAMES
    out: list[dict[str, Any]] = []
    add = out.append
    for record, timestamp_type in zip(records, timestamp_types, strict=True):
        attributes = record.attributes
        key: Any = record.key
        if key is not None:
            bits = attributes & 0b11
            if bits == 2:
                key = fragment(key)
            elif bits == 1:
                key = key.decode("utf-8", "replace")
            else:
                key = b64(key).decode("ascii")
        value: Any = record.value
        if value is not None:
            bits = (attributes >> 2) & 0b11
            if bits == 2:
                value = fragment(value)
            elif bits == 1:
                value = value.decode("utf-8", "replace")
            else:
                value = b64(value).decode("ascii")
        headers = record.headers
        add(
            {
                "topic": topic,
                "partition": partition,
                "offset": record.offset,
                "timestamp": record.timestamp,
                "timestamp_type": names[timestamp_type],
                "key": key,
                "value": value,
                "headers": render_headers(headers, header_format_binary) if headers else [],
            }
        )
    return out


def render_records_json(
    topic: str,
    partition: int,
    records: Sequence[Record],
    timestamp_types: Sequence[TimestampType],
    *,
    key_format: Format | None = None,
    value_format: Format | None = None,
    header_format_binary: bool = False,
) -> list[bytes]:
    """The JSON text of each record, the same objects ``render_records`` gives, without the dicts.

    Built by splicing bytes: the fields every record of the answer shares are encoded once, stored
    JSON is spliced as it is, text goes through ``orjson.dumps`` (which escapes it), so no dict is
    built and serialised per record. Asked formats go through ``render_record``.
    """
    if key_format is not None or value_format is not None:
        return [
            orjson.dumps(r)
            for r in render_records(
                topic,
                partition,
                records,
                timestamp_types,
                key_format=key_format,
                value_format=value_format,
                header_format_binary=header_format_binary,
            )
        ]
    dumps = orjson.dumps
    b64 = base64.b64encode
    head = (b'{"topic":' + dumps(topic) + b',"partition":%d,"offset":' % partition).replace(b"%", b"%%")
    # One %-format per timestamp type, filled with offset, timestamp, key, value and headers JSON:
    # a single formatting call per record costs less than joining nine pieces.
    formats = {
        t: head
        + b'%d,"timestamp":%d,"timestamp_type":'
        + dumps(name).replace(b"%", b"%%")
        + b',"key":%b,"value":%b,"headers":%b}'
        for t, name in _TIMESTAMP_TYPE_NAMES.items()
    }
    out: list[bytes] = []
    add = out.append
    for record, timestamp_type in zip(records, timestamp_types, strict=True):
        attributes = record.attributes
        key = record.key
        if key is None:
            key_json = b"null"
        else:
            bits = attributes & 0b11
            if bits == 2:
                key_json = key
            elif bits == 1:
                key_json = dumps(key.decode("utf-8", "replace"))
            else:
                key_json = b'"' + b64(key) + b'"'
        value = record.value
        if value is None:
            value_json = b"null"
        else:
            bits = (attributes >> 2) & 0b11
            if bits == 2:
                value_json = value
            elif bits == 1:
                value_json = dumps(value.decode("utf-8", "replace"))
            else:
                value_json = b'"' + b64(value) + b'"'
        headers = record.headers
        headers_json = dumps(render_headers(headers, header_format_binary)) if headers else b"[]"
        add(formats[timestamp_type] % (record.offset, record.timestamp, key_json, value_json, headers_json))
    return out
