"""Errors of clustered mode (no HTTP here; app/errors.py and app/cluster/http.py answer them).

::

    TidelogError
     ├── NotLeaderError            50304 the partition is led by another broker (retriable; the
     │                                   answer carries leader_id and leader_url, see docs/cluster.md)
     ├── NotEnoughReplicasError    50301 the ISR is smaller than min.insync.replicas (retriable;
     │                                   nothing was appended)
     ├── NotEnoughReplicasAfterAppendError 50305 appended on the leader, not acknowledged by the
     │                                   ISR: the records may have been written (retriable; names
     │                                   the leader as data, never a redirect)
     └── OffsetOutOfRangeError     41601 a follower asked for an offset the leader does not have
"""

from __future__ import annotations

from app.error_codes import ErrorCode
from app.errors_base import TidelogError

__all__ = [
    "NotEnoughReplicasAfterAppendError",
    "NotEnoughReplicasError",
    "NotLeaderError",
    "ReplicaOffsetOutOfRangeError",
]


class NotLeaderError(TidelogError):
    """This broker does not lead (or cannot serve) the partition; ``leader_url`` says who does."""

    code = ErrorCode.NOT_LEADER
    retriable = True

    def __init__(
        self, detail: str, *, leader_id: int | None, leader_url: str | None, **extra: object
    ) -> None:
        super().__init__(detail, leader_id=leader_id, leader_url=leader_url, **extra)
        self.leader_id = leader_id
        self.leader_url = leader_url


class NotEnoughReplicasError(TidelogError):
    code = ErrorCode.NOT_ENOUGH_REPLICAS
    retriable = True


class NotEnoughReplicasAfterAppendError(TidelogError):
    """The leader appended the records but could not get them acknowledged by the ISR.

    Never answered as a redirect: a 307 would tell an HTTP client that nothing was done and to send
    the request again, which appends it twice. The body carries ``leader_id`` and ``leader_url`` as
    data (KIP-951's idea), for a client that wants to route its retry.
    """

    code = ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND
    retriable = True


class ReplicaOffsetOutOfRangeError(TidelogError):
    code = ErrorCode.OFFSET_OUT_OF_RANGE
