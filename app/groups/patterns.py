"""Topic-pattern subscriptions: compiled with RE2, matched in linear time.

A ``topic_pattern`` is matched against whole topic names. Python's ``re`` backtracks: ``(a+)+b``
against a topic named with a long run of ``a`` takes exponential time while holding the GIL, so one
join request would stop every other request of the broker. Kafka's KIP-848 moved regex
subscriptions to the broker with RE2/J for exactly this reason; this module does the same with
``google-re2``, whose matching time is linear in the name's length whatever the pattern.
RE2's syntax is Perl's without backreferences and lookaround; a pattern RE2 cannot compile, or one
longer than ``MAX_TOPIC_PATTERN_LENGTH``, is refused with 422 (42220).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import lru_cache

import re2

from app.error_codes import ErrorCode
from app.errors_base import TidelogError

__all__ = ["MAX_TOPIC_PATTERN_LENGTH", "InvalidTopicPatternError", "compile_topic_pattern", "matching"]

#: The longest pattern accepted (characters); RE2's program size also stays under ``_MAX_MEM``.
MAX_TOPIC_PATTERN_LENGTH = 1000
#: RE2's memory budget for one compiled pattern (bytes): a pattern past it fails to compile (422).
_MAX_MEM = 8 << 20


class InvalidTopicPatternError(TidelogError):
    code = ErrorCode.INVALID_TOPIC_PATTERN


def _options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # a client's bad pattern is answered 422, not logged by RE2 to stderr
    options.max_mem = _MAX_MEM
    return options


@lru_cache(maxsize=1024)
def _compile(pattern: str) -> Callable[[str], object]:
    return re2.compile(pattern, _options()).fullmatch  # type: ignore[no-any-return]


def compile_topic_pattern(pattern: str) -> Callable[[str], object]:
    """The whole-name matcher of ``pattern`` (truthy on a match); raises ``InvalidTopicPatternError``."""
    if len(pattern) > MAX_TOPIC_PATTERN_LENGTH:
        raise InvalidTopicPatternError(
            f"topic_pattern is {len(pattern)} characters long; the limit is {MAX_TOPIC_PATTERN_LENGTH}",
            field="topic_pattern",
            limit=MAX_TOPIC_PATTERN_LENGTH,
        )
    try:
        return _compile(pattern)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        message = reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)
        raise InvalidTopicPatternError(
            f"topic_pattern {pattern!r} is not an RE2 regular expression: {message}", field="topic_pattern"
        ) from None


def matching(pattern: str, names: Iterable[str]) -> list[str]:
    """The names ``pattern`` matches whole, in the order given."""
    match = compile_topic_pattern(pattern)
    return [name for name in names if match(name)]
