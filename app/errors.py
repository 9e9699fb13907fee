"""The one table from errors to HTTP answers, and the exception handlers that apply it.

Every error answer is ``application/problem+json`` (RFC 9457) with ``type``, ``title``, ``status``,
``detail`` and the integer ``error_code`` of ``app.error_codes``, plus any extras the error carries
(``log_start_offset`` on an out-of-range fetch, ``errors`` on a validation failure, …).

- ``TidelogError`` subclasses (``app.errors_base``) carry their ``ErrorCode``; the status is its first
  three digits.
- ``storage.errors`` classes map through ``STORAGE_ERROR_CODES`` (the most specific class wins).
- Request validation: malformed JSON → 400 40001; any other validation failure → 422 42204.
- Unknown routes → 404 40499; wrong method → 405 40501; any other Starlette HTTPException by status.
- A full disk → 507 50701, whether the log (``StorageFullError``, an ``OSError`` ENOSPC) or the
  catalog (SQLITE_FULL, PostgreSQL's disk_full) found it; an I/O error of the catalog → 500 50003.
  Both mark the broker's ``StorageHealth`` as failing (``/readyz`` answers 503 until a probe write
  succeeds).
- Anything else → 500 50001, logged with its traceback (bad input never gets here).
Retriable answers (503, 507 and the storage 500s 50003/50004) carry ``Retry-After``.
"""

from __future__ import annotations

import errno
import logging
import re
import sqlite3
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from app.error_codes import ErrorCode
from app.errors_base import TidelogError
from storage import errors as storage_errors

__all__ = [
    "PROBLEM_JSON",
    "STORAGE_ERROR_CODES",
    "CodedHTTPException",
    "Problem",
    "UnsupportedMediaTypeError",
    "error_responses",
    "install_error_handlers",
    "problem_response",
]

logger = logging.getLogger("tidelog.errors")

PROBLEM_JSON = "application/problem+json"
ERROR_TYPE_BASE = "https://tidelog.dev/errors/"


class UnsupportedMediaTypeError(TidelogError):
    code = ErrorCode.UNSUPPORTED_MEDIA_TYPE


class RequestTooLargeError(TidelogError):
    code = ErrorCode.REQUEST_TOO_LARGE


class CodedHTTPException(StarletteHTTPException):
    """An HTTPException with its own error code, for refusals raised from inside ``receive`` (FastAPI
    turns any other exception raised while it reads a body into a 400)."""

    def __init__(self, code: ErrorCode, detail: str, *, retry_after_s: int = 1) -> None:
        headers = {"Retry-After": str(retry_after_s)} if code in _RETRIABLE else None
        super().__init__(code.http_status, detail, headers=headers)
        self.error_code = code


#: storage error class → error code; looked up along the exception's MRO, so subclasses come first.
STORAGE_ERROR_CODES: Mapping[type[Exception], ErrorCode] = {
    storage_errors.StorageFullError: ErrorCode.INSUFFICIENT_STORAGE,
    storage_errors.StorageWriteError: ErrorCode.STORAGE_WRITE_FAILED,
    storage_errors.LogReadOnlyError: ErrorCode.PARTITION_READ_ONLY,
    storage_errors.RecordTooLargeError: ErrorCode.RECORD_TOO_LARGE,
    storage_errors.InvalidRecordError: ErrorCode.INVALID_RECORD,
    storage_errors.UnsupportedCompressionError: ErrorCode.INVALID_PARAMETER,
    storage_errors.OffsetOutOfRangeError: ErrorCode.OFFSET_OUT_OF_RANGE,
    storage_errors.OutOfOrderSequenceError: ErrorCode.OUT_OF_ORDER_SEQUENCE,
    storage_errors.ProducerFencedError: ErrorCode.PRODUCER_FENCED,
    storage_errors.UnknownProducerIdError: ErrorCode.UNKNOWN_PRODUCER,
    storage_errors.LogClosedError: ErrorCode.NOT_READY,
    storage_errors.CorruptRecordError: ErrorCode.STORAGE_ERROR,
    storage_errors.StorageError: ErrorCode.STORAGE_ERROR,
}

#: HTTP status of a framework HTTPException → the error code it is answered with.
_STATUS_CODES: Mapping[int, ErrorCode] = {
    400: ErrorCode.INVALID_REQUEST,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    406: ErrorCode.NOT_ACCEPTABLE,
    413: ErrorCode.REQUEST_TOO_LARGE,
    415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    422: ErrorCode.INVALID_PARAMETER,
    429: ErrorCode.TOO_MANY_REQUESTS,
    503: ErrorCode.NOT_READY,
}

_RETRIABLE = frozenset({ErrorCode.NOT_READY, ErrorCode.OVERLOADED, ErrorCode.NOT_ENOUGH_REPLICAS,
                        ErrorCode.NOT_LEADER, ErrorCode.TOO_MANY_REQUESTS, ErrorCode.REBALANCE_IN_PROGRESS,
                        ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
                        ErrorCode.INSUFFICIENT_STORAGE, ErrorCode.STORAGE_WRITE_FAILED,
                        ErrorCode.PARTITION_READ_ONLY,
                        ErrorCode.TOO_MANY_CONNECTIONS, ErrorCode.TOO_MANY_CONNECTIONS_PER_IP,
                        ErrorCode.TOO_MANY_WAITERS, ErrorCode.TOO_MANY_WAITERS_PER_CLIENT,
                        ErrorCode.TOO_MANY_STREAMS, ErrorCode.TOO_MANY_STREAMS_PER_CLIENT,
                        ErrorCode.TOO_MANY_AUTHENTICATION_FAILURES, ErrorCode.QUOTA_EXCEEDED})
#: Seconds a client should wait before retrying a write refused by a full or failing disk.
STORAGE_RETRY_AFTER_S = 5
_STORAGE_CODES = frozenset({ErrorCode.INSUFFICIENT_STORAGE, ErrorCode.STORAGE_WRITE_FAILED,
                            ErrorCode.PARTITION_READ_ONLY})
_SQLITE_FULL = 13  # sqlite3.SQLITE_FULL (named in the module only from Python 3.11 on some builds)
_SQLITE_IOERR = 10
_PG_DISK_FULL = "53100"  # SQLSTATE disk_full


class Problem(BaseModel):
    """An error answer (RFC 9457 problem details) with tidelog's integer ``error_code``."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "example": {
                "type": "https://tidelog.dev/errors/unknown-topic",
                "title": "Unknown topic",
                "status": 404,
                "detail": "topic 'orders' does not exist",
                "error_code": 40401,
            }
        },
    )

    type: str
    title: str
    status: int
    detail: str
    error_code: int


def error_slug(code: ErrorCode) -> str:
    """``unknown-topic`` for ``ErrorCode.UNKNOWN_TOPIC``."""
    return code.name.lower().replace("_", "-")


def error_title(code: ErrorCode) -> str:
    """``Unknown topic`` for ``ErrorCode.UNKNOWN_TOPIC``."""
    return code.name.replace("_", " ").capitalize()


def problem_body(code: ErrorCode, detail: str, **extra: object) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": ERROR_TYPE_BASE + error_slug(code),
        "title": error_title(code),
        "status": code.http_status,
        "detail": detail,
        "error_code": int(code),
    }
    for key, value in extra.items():
        body.setdefault(key, value)
    return body


#: An absolute file-system path of two or more parts (``/srv/tidelog/data/orders-0/00000.log``).
_PATH = re.compile(r"""(?<![\w.])/(?:[^\s/'"]+/)+[^\s'",;)]*""")


def without_paths(text: str) -> str:
    """``text`` with absolute file-system paths replaced by ``<path>``: a 5xx answer says what failed,
    the broker's log says where (a client has no business knowing the data directory's layout)."""
    return _PATH.sub("<path>", text)


def problem_response(
    code: ErrorCode,
    detail: str,
    *,
    extra: Mapping[str, object] | None = None,
    headers: Mapping[str, str] | None = None,
    retry_after_s: int = 1,
) -> Response:
    """The problem+json answer for ``code``; retriable codes get ``Retry-After``; a 5xx answer
    never holds a file-system path."""
    if code.http_status >= 500:
        detail = without_paths(detail)
        extra = {k: without_paths(v) if isinstance(v, str) else v for k, v in (extra or {}).items()}
    all_headers = dict(headers or {})
    if code in _RETRIABLE:
        wait = max(retry_after_s, STORAGE_RETRY_AFTER_S) if code in _STORAGE_CODES else retry_after_s
        all_headers.setdefault("Retry-After", str(wait))
    return JSONResponse(
        jsonable_encoder(problem_body(code, detail, **(extra or {}))),
        status_code=code.http_status,
        media_type=PROBLEM_JSON,
        headers=all_headers,
    )


def storage_error_code(exc: Exception) -> ErrorCode:
    for cls in type(exc).__mro__:
        code = STORAGE_ERROR_CODES.get(cls)
        if code is not None:
            return code
    return ErrorCode.STORAGE_ERROR


def storage_error_extras(exc: Exception) -> dict[str, object]:
    if isinstance(exc, storage_errors.OffsetOutOfRangeError):
        return {"offset": exc.offset, "log_start_offset": exc.log_start_offset,
                "log_end_offset": exc.log_end_offset}
    if isinstance(exc, storage_errors.RecordTooLargeError):
        return {"size": exc.size, "limit": exc.limit}
    return {}


def _sanitise_validation_errors(errors: Any) -> list[dict[str, Any]]:
    out = []
    for error in errors:
        out.append({"loc": [str(part) for part in error.get("loc", ())], "msg": str(error.get("msg", "")),
                    "type": str(error.get("type", ""))})
    return out


def _describe(errors: list[dict[str, Any]]) -> str:
    parts = []
    for error in errors[:5]:
        loc = ".".join(part for part in error["loc"])
        parts.append(f"{loc}: {error['msg']}" if loc else error["msg"])
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(parts) + more


def catalog_storage_failure(exc: DBAPIError) -> ErrorCode | None:
    """INSUFFICIENT_STORAGE for a catalog error that says the disk is full, STORAGE_WRITE_FAILED for
    one that says it cannot write, None for any other database error."""
    orig = exc.orig
    if isinstance(orig, sqlite3.Error):
        code = getattr(orig, "sqlite_errorcode", None)
        primary = None if code is None else code & 0xFF
        if primary == _SQLITE_FULL or "database or disk is full" in str(orig):
            return ErrorCode.INSUFFICIENT_STORAGE
        if primary == _SQLITE_IOERR or "disk I/O error" in str(orig):
            return ErrorCode.STORAGE_WRITE_FAILED
        return None
    if getattr(orig, "sqlstate", None) == _PG_DISK_FULL:
        return ErrorCode.INSUFFICIENT_STORAGE
    return None


def _note_storage_failure(request: Request, where: str, detail: str) -> None:
    request.app.state.storage_health.write_failed(where, detail)  # set by create_app


async def _database_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DBAPIError)
    code = catalog_storage_failure(exc)
    if code is None:
        return await _unexpected_error(request, exc)
    detail = str(exc.orig).strip() or type(exc.orig).__name__
    _note_storage_failure(request, "the catalog", detail)
    logger.error("catalog write failed on %s %s: %s", request.method, request.url.path, detail)
    full = code is ErrorCode.INSUFFICIENT_STORAGE
    what = "the catalog's disk is full" if full else "the catalog cannot write"
    return problem_response(code, f"{what} ({detail}); nothing was changed: retry once space is freed")


async def _os_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OSError)
    if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
        return await _unexpected_error(request, exc)
    _note_storage_failure(request, "the data directory", exc.strerror or "no space left")
    return problem_response(
        ErrorCode.INSUFFICIENT_STORAGE, "no space left on the broker's disk; retry once space is freed"
    )


async def _tidelog_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TidelogError)
    return problem_response(exc.code, exc.detail, extra=exc.extra)


async def _storage_error(request: Request, exc: Exception) -> Response:
    code = storage_error_code(exc)
    if code is ErrorCode.STORAGE_ERROR:
        logger.error("storage error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(code, str(exc), extra=storage_error_extras(exc))


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = _sanitise_validation_errors(exc.errors())
    if any(error["type"] == "json_invalid" for error in errors):
        detail = "the request body is not valid JSON"
        return problem_response(ErrorCode.INVALID_REQUEST, detail, extra={"errors": errors})
    return problem_response(ErrorCode.INVALID_PARAMETER, _describe(errors), extra={"errors": errors})


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = exc.error_code if isinstance(exc, CodedHTTPException) else _STATUS_CODES.get(exc.status_code)
    detail = str(exc.detail)
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no resource at {request.url.path}"
    elif exc.status_code == 405:
        detail = f"{request.method} is not allowed on {request.url.path}"
    headers = dict(exc.headers or {})
    if code is None:
        # A status without a code of its own: answer it as is, with the closest generic code.
        generic = ErrorCode.INTERNAL_ERROR if exc.status_code >= 500 else ErrorCode.INVALID_REQUEST
        body = problem_body(generic, detail)
        body["status"] = exc.status_code
        return JSONResponse(body, status_code=exc.status_code, media_type=PROBLEM_JSON, headers=headers)
    return problem_response(code, detail, headers=headers)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(ErrorCode.INTERNAL_ERROR, "internal error; see the broker's log")


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers of this module on ``app``."""
    app.add_exception_handler(TidelogError, _tidelog_error)
    app.add_exception_handler(storage_errors.StorageError, _storage_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(OSError, _os_error)
    app.add_exception_handler(Exception, _unexpected_error)


def error_responses(*codes: ErrorCode, common: bool = True) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route answering ``codes``, plus (with ``common``) the 401 (with
    authentication on), 422, 500 and 503 (overloaded, not ready) that any API route can give; probes
    pass ``common=False``."""
    every = {*codes, ErrorCode.INTERNAL_ERROR}
    if common:
        every |= {ErrorCode.INVALID_PARAMETER, ErrorCode.NOT_READY, ErrorCode.OVERLOADED,
                  ErrorCode.AUTHENTICATION_REQUIRED, ErrorCode.AUTHENTICATION_FAILED}
    by_status: dict[int, list[ErrorCode]] = {}
    for code in sorted(every):
        by_status.setdefault(code.http_status, []).append(code)
    responses: dict[int | str, dict[str, Any]] = {}
    for status, status_codes in sorted(by_status.items()):
        listed = ", ".join(f"{int(c)} {error_title(c).lower()}" for c in status_codes)
        responses[status] = {
            "model": Problem,
            "description": f"error_code {listed}",
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
    return responses
