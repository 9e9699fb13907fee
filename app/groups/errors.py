"""Errors of the group coordinator. No HTTP here: ``app/errors.py`` maps each ``code``.

    TidelogError (app/errors_base.py)
     ├── UnknownMemberError          40403 unknown or expired member: it must rejoin
     ├── UnknownGroupError           40404
     ├── IllegalGenerationError      40902 stale generation, or a partition the member does not own
     ├── GroupNotEmptyError          40903 an operation that needs a group without members
     ├── NoCommittedOffsetError      42206 auto_offset_reset=none and no usable committed offset
     └── InvalidSessionTimeoutError  42207 outside group.min/max.session.timeout.ms
"""

from __future__ import annotations

from app.error_codes import ErrorCode
from app.errors_base import TidelogError

__all__ = [
    "GroupNotEmptyError",
    "IllegalGenerationError",
    "InvalidSessionTimeoutError",
    "NoCommittedOffsetError",
    "UnknownGroupError",
    "UnknownMemberError",
]


class UnknownMemberError(TidelogError):
    code = ErrorCode.UNKNOWN_MEMBER


class UnknownGroupError(TidelogError):
    code = ErrorCode.UNKNOWN_GROUP


class IllegalGenerationError(TidelogError):
    code = ErrorCode.ILLEGAL_GENERATION


class GroupNotEmptyError(TidelogError):
    code = ErrorCode.GROUP_NOT_EMPTY


class NoCommittedOffsetError(TidelogError):
    code = ErrorCode.NO_COMMITTED_OFFSET


class InvalidSessionTimeoutError(TidelogError):
    code = ErrorCode.INVALID_SESSION_TIMEOUT
