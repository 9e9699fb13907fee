"""What a stored JSON key or value may hold: a bounded nesting depth and numbers every reader can read.

A record's JSON is stored as the producer sent it and spliced into fetch answers as it is, so
whatever is accepted must be readable by every consumer, the project's own client included:

- **nesting**: at most ``max_json_depth`` levels of arrays and objects (default 64). Parsers
  recurse (Python's ``json``, orjson's 1,024-level and msgspec's recursion limits); a value nested
  thousands deep would make readers fail, and the broker's own parsers raise ``RecursionError``.
  Deeper → 422 ``VALUE_TOO_DEEP`` (42221).
- **numbers**: integers in ``[-2**63, 2**64 - 1]`` (what orjson and msgspec hold exactly; Python's
  ``json`` refuses integers of more than 4,300 digits, JavaScript rounds beyond 2**53 but reads)
  and floats that are finite as IEEE 754 doubles (``1e400`` is infinity to most parsers, an error
  to orjson). Beyond → 422 ``NUMBER_OUT_OF_RANGE`` (42222). ``NaN``/``Infinity`` are not JSON at all
  (400 40001).

The checks are cheap for ordinary values: a value with fewer brackets than the limit cannot be
too deep (``bytes.count``), and a number can only be out of range where the text has many digits
in a row (19) or a three-digit exponent (one regex search). Only values that pass those filters are
scanned token by token.
"""

from __future__ import annotations

import re

import orjson

from app.broker.errors import InvalidRecordError
from app.error_codes import ErrorCode
from app.errors_base import TidelogError

__all__ = [
    "DEFAULT_MAX_JSON_DEPTH",
    "JSON_INT_MAX",
    "JSON_INT_MIN",
    "NumberOutOfRangeError",
    "ValueTooDeepError",
    "check_json_text",
    "dump_json",
    "json_depth",
    "may_hold_big_numbers",
]

DEFAULT_MAX_JSON_DEPTH = 64
JSON_INT_MIN = -(2**63)
JSON_INT_MAX = 2**64 - 1


class ValueTooDeepError(TidelogError):
    """A JSON key or value nested deeper than ``max_json_depth`` (422, 42221)."""

    code = ErrorCode.VALUE_TOO_DEEP


class NumberOutOfRangeError(TidelogError):
    """A JSON number no reader can hold: an integer beyond 64 bits, a float beyond a double (422, 42222)."""

    code = ErrorCode.NUMBER_OUT_OF_RANGE


# A JSON string, unrolled so that long strings do not cost one alternation per character.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_INNERMOST = re.compile(rb"\[\]|\{\}")
# Only where these occur can a number be out of range: 19 digits (2**63 has 19) or an
# exponent of three digits (a double ends near 1.8e308).
_CANDIDATE = re.compile(rb"\d{19}|[eE][+-]?\d{3}")
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?', re.DOTALL)


def json_depth(text: bytes, stop_above: int | None = None) -> int:
    """The nesting depth of valid JSON ``text`` (0 for a scalar); stops counting past ``stop_above``.

    Strings are removed, then every innermost ``[]``/``{}`` pair, once per level: each pass lowers
    the height of every bracket tree by exactly one, so the passes counted are the depth.
    """
    brackets = _STRING.sub(b"", text).translate(None, _NOT_BRACKETS)
    depth = 0
    while brackets:
        brackets = _INNERMOST.sub(b"", brackets)
        depth += 1
        if stop_above is not None and depth > stop_above:
            break
    return depth


def may_hold_big_numbers(text: bytes) -> bool:
    """False when ``text`` certainly holds no number out of range (a fast filter for whole bodies)."""
    return _CANDIDATE.search(text) is not None


def check_json_text(text: bytes, where: str, max_depth: int, *, numbers: bool = True) -> None:
    """Raise ``ValueTooDeepError`` or ``NumberOutOfRangeError`` for valid JSON ``text`` found at ``where``."""
    if text.count(b"[") + text.count(b"{") > max_depth and json_depth(text, max_depth) > max_depth:
        raise ValueTooDeepError(
            f"{where} nests arrays and objects more than {max_depth} levels deep (max_json_depth)",
            field=where,
            limit=max_depth,
        )
    if numbers and _CANDIDATE.search(text) is not None:
        for match in _TOKEN.finditer(text):
            token = match.group()
            if token[0] != 0x22 and _out_of_range(token):  # 0x22: a string, skipped
                shown = token if len(token) <= 40 else token[:20] + b"..." + token[-10:]
                raise NumberOutOfRangeError(
                    f"{where} holds the number {shown.decode('ascii')} ({len(token)} characters), which "
                    "not every reader can hold: integers must lie in -2**63..2**64-1 and floats "
                    "within a double's range; send it as a string",
                    field=where,
                )


def _out_of_range(token: bytes) -> bool:
    if b"." in token or b"e" in token or b"E" in token:
        return float(token) in (float("inf"), float("-inf"))
    digits = len(token) - (token[0] == 0x2D)  # 0x2D: a minus sign
    return digits > 20 or not JSON_INT_MIN <= int(token) <= JSON_INT_MAX


def dump_json(data: object, where: str, max_depth: int) -> bytes:
    """The compact JSON of a parsed key or value, checked as ``check_json_text`` checks text."""
    try:
        text = orjson.dumps(data)
    except TypeError as exc:  # orjson.JSONEncodeError
        message = str(exc)
        if "ecursion" in message:
            raise ValueTooDeepError(
                f"{where} nests arrays and objects more than {max_depth} levels deep (max_json_depth)",
                field=where,
                limit=max_depth,
            ) from None
        if "64-bit" in message:
            raise NumberOutOfRangeError(
                f"{where} holds an integer beyond 64 bits, which not every reader can hold; "
                "send it as a string",
                field=where,
            ) from None
        raise InvalidRecordError(f"{where} cannot be stored as JSON: {message}") from None
    check_json_text(text, where, max_depth)
    return text
