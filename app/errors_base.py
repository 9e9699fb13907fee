"""The root of every domain error of the broker service. No HTTP here: ``app/errors.py`` translates.

    TidelogError                       code → (HTTP status, error_code) in app/errors.py
     ├── InvalidRequestError           40001 malformed or ill-typed request content
     ├── InvalidParameterError         42204 a value outside its documented limits
     ├── UnknownTopicError             40401
     ├── UnknownPartitionError         40402
     ├── NotReadyError                 50302 starting up or shutting down (retriable)
     └── OverloadedError               50303 too many requests in flight (retriable)

Each domain package (topics, broker, groups) subclasses ``TidelogError`` for its own cases and sets
``code``. Keyword arguments given to the constructor end up as extra members of the problem JSON
(for example ``log_start_offset`` on an out-of-range fetch), so they must be JSON-serialisable.
"""

from __future__ import annotations

from typing import ClassVar

from app.error_codes import ErrorCode

__all__ = [
    "InvalidParameterError",
    "InvalidRequestError",
    "NotReadyError",
    "OverloadedError",
    "TidelogError",
    "UnknownPartitionError",
    "UnknownTopicError",
]


class TidelogError(Exception):
    """A failure the client caused or can act on; carries its ``ErrorCode`` and problem extras."""

    code: ClassVar[ErrorCode] = ErrorCode.INTERNAL_ERROR
    #: True when the same request may succeed if retried later unchanged.
    retriable: ClassVar[bool] = False

    def __init__(self, detail: str, **extra: object) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra: dict[str, object] = extra


class InvalidRequestError(TidelogError):
    code = ErrorCode.INVALID_REQUEST


class InvalidParameterError(TidelogError):
    code = ErrorCode.INVALID_PARAMETER


class UnknownTopicError(TidelogError):
    code = ErrorCode.UNKNOWN_TOPIC


class UnknownPartitionError(TidelogError):
    code = ErrorCode.UNKNOWN_PARTITION


class NotReadyError(TidelogError):
    code = ErrorCode.NOT_READY
    retriable = True


class OverloadedError(TidelogError):
    code = ErrorCode.OVERLOADED
    retriable = True
