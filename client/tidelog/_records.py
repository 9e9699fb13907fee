"""Turning Python keys, values and headers into the broker's JSON record shape, and back.

Formats (``key_format``/``value_format`` of a produce body): ``json`` takes any JSON value and the
broker stores its compact JSON encoding; ``string`` takes text, stored as UTF-8; ``binary`` takes
bytes, sent as base64. The broker's defaults are key ``string`` and value ``json``.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tidelog._types import FORMATS, Headers, HeaderValue, json_dumps_compact

__all__ = ["OutgoingRecord", "check_format", "encode_record", "key_bytes", "records_body"]


def check_format(fmt: str, what: str) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"{what} must be one of {', '.join(FORMATS)}, not {fmt!r}")
    return fmt


@dataclass(slots=True)
class OutgoingRecord:
    """A record waiting in a producer batch: key and value already in their JSON shape."""

    body: dict[str, Any]
    headers: list[tuple[str, HeaderValue]]
    size: int  # an estimate of its share of the request body, for batch_size


def _encode_field(value: Any, fmt: str, what: str) -> Any:
    if value is None:
        return None
    if fmt == "binary":
        if isinstance(value, str):
            value = value.encode()
        if not isinstance(value, bytes | bytearray | memoryview):
            raise TypeError(f"{what} in binary format must be bytes, not {type(value).__name__}")
        return base64.b64encode(bytes(value)).decode("ascii")
    if fmt == "string":
        if isinstance(value, bytes | bytearray):
            try:
                return bytes(value).decode("utf-8")
            except UnicodeDecodeError:
                raise TypeError(f"{what} in string format must be UTF-8 text") from None
        if not isinstance(value, str):
            raise TypeError(f"{what} in string format must be str, not {type(value).__name__}")
        return value
    # json: anything json.dumps accepts, except NaN and infinities, which JSON has no spelling for.
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{what} {value!r} is not representable in JSON")
    if isinstance(value, bytes | bytearray):
        raise TypeError(f"{what} in json format cannot be bytes; use value_format='binary'")
    return value


def key_bytes(key: Any, fmt: str) -> bytes:
    """Return the bytes the broker stores for ``key``: what Kafka's partitioner hashes."""
    if fmt == "binary":
        return bytes(key) if not isinstance(key, str) else key.encode()
    if fmt == "string":
        return key.encode() if isinstance(key, str) else bytes(key)
    return json_dumps_compact(key)


def normalize_headers(headers: Headers | None) -> list[tuple[str, HeaderValue]]:
    if not headers:
        return []
    items = list(headers.items() if isinstance(headers, Mapping) else headers)
    for name, value in items:
        if not isinstance(name, str):
            raise TypeError("header names must be str")
        if value is not None and not isinstance(value, str | bytes):
            raise TypeError(f"header {name!r} must be str, bytes or None")
    return items


def records_body(records: Sequence[OutgoingRecord]) -> tuple[list[dict[str, Any]], bool]:
    """Return the records' JSON bodies and whether the request needs ``header_format=binary``.

    Header values are text unless one of them is bytes: then every header of the request is sent in
    base64, as the broker reads one ``header_format`` per request.
    """
    binary = any(isinstance(v, bytes) for r in records for _, v in r.headers)
    out: list[dict[str, Any]] = []
    for record in records:
        if not record.headers:
            out.append(record.body)
            continue
        body = dict(record.body)
        body["headers"] = [
            {
                "key": name,
                "value": None
                if value is None
                else (
                    base64.b64encode(value if isinstance(value, bytes) else value.encode()).decode("ascii")
                    if binary
                    else value
                ),
            }
            for name, value in record.headers
        ]
        out.append(body)
    return out, binary


def encode_record(
    *,
    key: Any,
    value: Any,
    headers: Headers | None,
    timestamp: int | None,
    key_format: str,
    value_format: str,
) -> OutgoingRecord:
    """Return the record in its JSON shape, with an estimate of its size on the wire."""
    body: dict[str, Any] = {
        "key": _encode_field(key, key_format, "key"),
        "value": _encode_field(value, value_format, "value"),
    }
    hdrs = normalize_headers(headers)
    if timestamp is not None:
        if not isinstance(timestamp, int) or isinstance(timestamp, bool) or timestamp < 0:
            raise ValueError("timestamp must be epoch milliseconds (a non-negative int)")
        body["timestamp"] = timestamp
    size = (
        40
        + _size(body["key"])
        + _size(body["value"])
        + sum(16 + len(name) + (len(v) * 4 // 3 + 4 if v is not None else 4) for name, v in hdrs)
    )
    return OutgoingRecord(body=body, headers=hdrs, size=size)


def _size(value: Any) -> int:
    if value is None:
        return 4
    if isinstance(value, str):
        return len(value) + 2
    if isinstance(value, bool | int | float):
        return 8
    return len(json_dumps_compact(value))
