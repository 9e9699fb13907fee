"""Refusals of the authorizer and of quotas; ``app/errors.py`` answers them like any domain error.

    TidelogError
     ├── TopicAuthorizationError     40311 may DESCRIBE the topic, not do this to it
     ├── GroupAuthorizationError     40312 may DESCRIBE the group, not do this to it
     ├── ClusterAuthorizationError   40313 a cluster-level operation
     └── QuotaExceededError          42911 retriable: ``Retry-After`` and ``retry_after_ms``

A resource the caller may not even DESCRIBE is answered as unknown (40401, 40404), never with
these: its existence is not disclosed.
"""

from __future__ import annotations

from typing import ClassVar

from app.error_codes import ErrorCode
from app.errors_base import TidelogError

__all__ = [
    "ClusterAuthorizationError",
    "GroupAuthorizationError",
    "QuotaExceededError",
    "TopicAuthorizationError",
]


class TopicAuthorizationError(TidelogError):
    code = ErrorCode.TOPIC_AUTHORIZATION_FAILED


class GroupAuthorizationError(TidelogError):
    code = ErrorCode.GROUP_AUTHORIZATION_FAILED


class ClusterAuthorizationError(TidelogError):
    code = ErrorCode.CLUSTER_AUTHORIZATION_FAILED


class QuotaExceededError(TidelogError):
    code = ErrorCode.QUOTA_EXCEEDED
    retriable: ClassVar[bool] = True
