"""Domain errors of topic administration. No HTTP here.

    TidelogError (app.errors_base)
     ├── UnknownTopicError              40401 (app.errors_base)
     ├── TopicExistsError               40901
     ├── InvalidConfigError             42201 unknown config name, wrong type or out of range
     ├── InvalidTopicNameError          42202
     ├── InvalidPartitionsError         42203 out of range, or fewer than the topic has
     └── InvalidReplicationFactorError  42205 more replicas than brokers
"""

from __future__ import annotations

from app.error_codes import ErrorCode
from app.errors_base import TidelogError

__all__ = [
    "InvalidConfigError",
    "InvalidPartitionsError",
    "InvalidReplicationFactorError",
    "InvalidTopicNameError",
    "TopicExistsError",
]


class TopicExistsError(TidelogError):
    code = ErrorCode.TOPIC_EXISTS


class InvalidConfigError(TidelogError):
    code = ErrorCode.INVALID_CONFIG


class InvalidTopicNameError(TidelogError):
    code = ErrorCode.INVALID_TOPIC_NAME


class InvalidPartitionsError(TidelogError):
    code = ErrorCode.INVALID_PARTITIONS


class InvalidReplicationFactorError(TidelogError):
    code = ErrorCode.INVALID_REPLICATION_FACTOR
