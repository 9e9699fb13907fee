"""The client's exceptions: one class per broker ``error_code``, plus transport failures.

Every class has a ``retriable`` flag: ``True`` where the same request may succeed if sent again after
a pause (overload, a broker starting up, a rebalance in progress, a lost connection). The client's
retry loop and the producer use it; applications can too.

Exception tree::

    TidelogError
    ├── TransportError                 the request did not get an answer (retriable)
    │   ├── ConnectError               could not connect: nothing was sent
    │   ├── TimeoutError               no answer in time: the broker may have acted on it
    │   └── ProtocolError              an answer that is not what the API documents
    ├── ClientStateError               misuse of the client: closed producer, unknown partition count, ...
    └── BrokerError                    the broker answered with an error (problem+json)
        ├── BadRequestError (400)
        │   ├── InvalidRequestError            40001
        │   ├── InvalidRecordError             40002
        │   ├── CorruptBatchError              40020  a binary produce batch's frame, CRC or header
        │   └── InvalidBatchRecordsError       40021  a binary produce batch's records
        ├── AuthenticationError (401)      no or a refused credential (see Client's credentials)
        │   ├── AuthenticationRequiredError    40101  no credential sent
        │   └── AuthenticationFailedError      40102  wrong, unknown, expired or revoked
        ├── AuthorizationError (403)       the credential's principal may not do this
        │   └── CsrfCheckFailedError           40390  a cookie-authenticated request from another origin
        │   ├── TopicAuthorizationError        40311
        │   ├── GroupAuthorizationError        40312
        │   └── ClusterAuthorizationError      40313
        ├── NotFoundError (404)
        │   ├── UnknownTopicError              40401
        │   ├── UnknownPartitionError          40402
        │   ├── UnknownMemberError             40403  the member must rejoin
        │   ├── UnknownGroupError              40404
        │   ├── UnknownProducerError           40405
        │   ├── UnknownApiKeyError             40420
        │   ├── UnknownUserError               40421
        │   ├── UnknownConnectorError          40430
        │   ├── UnknownConnectorTaskError      40431
        │   ├── UnknownConnectorPluginError    40432
        │   └── ResourceNotFoundError          40499
        ├── MethodNotAllowedError              40501
        ├── NotAcceptableError                 40601
        ├── ConflictError (409)
        │   ├── TopicExistsError               40901
        │   ├── IllegalGenerationError         40902
        │   ├── GroupNotEmptyError             40903
        │   ├── RebalanceInProgressError       40904  retriable
        │   ├── ProducerFencedError            40905
        │   ├── OutOfOrderSequenceError        40906
        │   ├── IdempotencyKeyReusedError      40907
        │   └── UserExistsError                40920
        │   ├── ConnectorExistsError           40930
        │   ├── ConnectorNotStoppedError       40931
        │   └── StaleTaskGenerationError       40932
        ├── TooLargeError (413)
        │   ├── RecordTooLargeError            41301
        │   ├── RequestTooLargeError           41302
        │   └── BatchDecompressedTooLargeError 41303
        ├── UnsupportedMediaTypeError          41501
        ├── OffsetOutOfRangeError              41601  carries log_start_offset, high_watermark
        ├── InvalidInputError (422)
        │   ├── InvalidConfigError             42201
        │   ├── InvalidTopicNameError          42202
        │   ├── InvalidPartitionsError         42203
        │   ├── InvalidParameterError          42204
        │   ├── InvalidReplicationFactorError  42205
        │   ├── NoCommittedOffsetError         42206
        │   ├── InvalidSessionTimeoutError     42207
        │   ├── InvalidTimestampError          42210  a timestamp outside the topic's KIP-937 bounds
        │   └── InvalidConnectorConfigError    42230  carries errors (setting → messages)
        ├── TooManyRequestsError               42901  retriable, honours Retry-After
        │   ├── TooManyAuthenticationFailuresError 42910  this address failed too often lately
        │   └── QuotaExceededError             42911  the principal's quota; carries retry_after_ms
        ├── ServerError (500)
        │   ├── InternalServerError            50001
        │   ├── StorageError                   50002
        │   ├── StorageWriteFailedError        50003  retriable: nothing was written
        │   └── PartitionReadOnlyError         50004  retriable: an fsync failed, re-validation pending
        ├── ServiceUnavailableError (503)      retriable, honours Retry-After
        │   ├── NotEnoughReplicasError         50301
        │   ├── NotReadyError                  50302
        │   ├── OverloadedError                50303
        │   ├── NotLeaderError                 50304
        │   └── NotEnoughReplicasAfterAppendError 50305  appended, not acknowledged: may be written
        └── InsufficientStorageError (507)     50701  retriable, honours Retry-After: the disk is full

The numbers are the broker's ``error_code`` values (``docs/errors.md``); an answer whose code this
client does not know maps to the class of its HTTP status.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

__all__ = [
    "AuthenticationError",
    "AuthenticationFailedError",
    "AuthenticationRequiredError",
    "AuthorizationError",
    "BadRequestError",
    "BatchDecompressedTooLargeError",
    "BrokerError",
    "ClientStateError",
    "ClusterAuthorizationError",
    "ConflictError",
    "ConnectError",
    "ConnectorExistsError",
    "ConnectorNotStoppedError",
    "CorruptBatchError",
    "CsrfCheckFailedError",
    "GroupAuthorizationError",
    "GroupNotEmptyError",
    "IdempotencyKeyReusedError",
    "IllegalGenerationError",
    "InsufficientStorageError",
    "InternalServerError",
    "InvalidBatchRecordsError",
    "InvalidConfigError",
    "InvalidConnectorConfigError",
    "InvalidInputError",
    "InvalidParameterError",
    "InvalidPartitionsError",
    "InvalidRecordError",
    "InvalidReplicationFactorError",
    "InvalidRequestError",
    "InvalidSessionTimeoutError",
    "InvalidTimestampError",
    "InvalidTopicNameError",
    "InvalidTopicPatternError",
    "MalformedRequestError",
    "MethodNotAllowedError",
    "NoCommittedOffsetError",
    "NotAcceptableError",
    "NotEnoughReplicasAfterAppendError",
    "NotEnoughReplicasError",
    "NotFoundError",
    "NotLeaderError",
    "NotReadyError",
    "NumberOutOfRangeError",
    "OffsetOutOfRangeError",
    "OutOfOrderSequenceError",
    "OverloadedError",
    "PartitionReadOnlyError",
    "ProducerFencedError",
    "ProtocolError",
    "QuotaExceededError",
    "RebalanceInProgressError",
    "RecordTooLargeError",
    "RequestBodyTooSlowError",
    "RequestHeaderTimeoutError",
    "RequestTimeoutError",
    "RequestTooLargeError",
    "ResourceNotFoundError",
    "ServerError",
    "ServiceUnavailableError",
    "StaleTaskGenerationError",
    "StorageError",
    "StorageWriteFailedError",
    "TidelogError",
    "TimeoutError",
    "TooLargeError",
    "TooManyAuthenticationFailuresError",
    "TooManyConnectionsError",
    "TooManyConnectionsPerIpError",
    "TooManyRequestsError",
    "TooManyStreamsError",
    "TooManyStreamsPerClientError",
    "TooManyWaitersError",
    "TooManyWaitersPerClientError",
    "TopicAuthorizationError",
    "TopicExistsError",
    "TransportError",
    "UnknownApiKeyError",
    "UnknownConnectorError",
    "UnknownConnectorPluginError",
    "UnknownConnectorTaskError",
    "UnknownGroupError",
    "UnknownMemberError",
    "UnknownPartitionError",
    "UnknownProducerError",
    "UnknownTopicError",
    "UnknownUserError",
    "UnsupportedMediaTypeError",
    "UserExistsError",
    "ValueTooDeepError",
    "error_from_response",
]


class TidelogError(Exception):
    """Base of every exception the client raises."""

    retriable: ClassVar[bool] = False


class TransportError(TidelogError):
    """The request got no usable answer."""

    retriable = True


class ConnectError(TransportError):
    """The connection could not be made, so the broker never saw the request."""


class TimeoutError(TransportError):
    """No answer within the timeout; the broker may or may not have acted on the request."""


class ProtocolError(TransportError):
    """An answer that does not follow the documented API (not JSON, missing fields)."""

    retriable = False


class ClientStateError(TidelogError):
    """The client was used in a way its state does not allow (closed, not subscribed, ...)."""


class BrokerError(TidelogError):
    """The broker answered with an ``application/problem+json`` error."""

    status: ClassVar[int] = 0
    error_code: int

    def __init__(
        self,
        detail: str,
        *,
        status: int | None = None,
        error_code: int | None = None,
        title: str | None = None,
        type: str | None = None,
        body: Mapping[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.http_status = status if status is not None else (self.__class__.status or 500)
        self.error_code = error_code if error_code is not None else self.http_status * 100
        self.title = title or self.__class__.__name__
        self.type = type or "about:blank"
        self.body: dict[str, Any] = dict(body or {})
        self.retry_after = retry_after

    def __str__(self) -> str:
        return f"{self.title} ({self.error_code}): {self.detail}"


class BadRequestError(BrokerError):
    status = 400


class InvalidRequestError(BadRequestError):
    pass


class InvalidRecordError(BadRequestError):
    pass


class AuthenticationError(BrokerError):
    """401: the request had no credential, or one the broker refused (expired, revoked, wrong)."""

    status = 401


class AuthenticationRequiredError(AuthenticationError):
    """Authentication is on and the request carried no credential."""


class AuthenticationFailedError(AuthenticationError):
    """The credential was refused: wrong, unknown, expired or revoked."""


class AuthorizationError(BrokerError):
    """403: the caller is known but may not do this (an ACL denies it)."""

    status = 403


class CsrfCheckFailedError(AuthorizationError):
    """A session-cookie request with an unsafe method from an origin that is not the broker's."""
class TopicAuthorizationError(AuthorizationError):
    """The caller may see the topic but not do this to it."""


class GroupAuthorizationError(AuthorizationError):
    """The caller may see the group but not do this to it."""


class ClusterAuthorizationError(AuthorizationError):
    """A cluster-level operation the caller's ACLs do not allow."""


class NotFoundError(BrokerError):
    status = 404


class UnknownTopicError(NotFoundError):
    pass


class UnknownPartitionError(NotFoundError):
    pass


class UnknownMemberError(NotFoundError):
    """The group member is unknown or its session expired: it must join the group again."""


class UnknownGroupError(NotFoundError):
    pass


class UnknownProducerError(NotFoundError):
    pass


class UnknownApiKeyError(NotFoundError):
    pass


class UnknownUserError(NotFoundError):
    pass


class ResourceNotFoundError(NotFoundError):
    pass


class MethodNotAllowedError(BrokerError):
    status = 405


class NotAcceptableError(BrokerError):
    status = 406


class ConflictError(BrokerError):
    status = 409


class TopicExistsError(ConflictError):
    pass


class IllegalGenerationError(ConflictError):
    """A commit with a stale generation, or for a partition the member does not own."""


class GroupNotEmptyError(ConflictError):
    pass


class RebalanceInProgressError(ConflictError):
    retriable = True


class ProducerFencedError(ConflictError):
    pass


class OutOfOrderSequenceError(ConflictError):
    pass


class IdempotencyKeyReusedError(ConflictError):
    pass


class UserExistsError(ConflictError):
    pass


class TooLargeError(BrokerError):
    status = 413


class RecordTooLargeError(TooLargeError):
    pass


class RequestTooLargeError(TooLargeError):
    pass


class UnsupportedMediaTypeError(BrokerError):
    status = 415


class OffsetOutOfRangeError(BrokerError):
    """The offset is below the log start or above the log end; the body tells both ends."""

    status = 416

    @property
    def log_start_offset(self) -> int | None:
        value = self.body.get("log_start_offset")
        return value if isinstance(value, int) else None

    @property
    def high_watermark(self) -> int | None:
        value = self.body.get("high_watermark")
        return value if isinstance(value, int) else None


class InvalidInputError(BrokerError):
    status = 422


class InvalidConfigError(InvalidInputError):
    pass


class InvalidTopicNameError(InvalidInputError):
    pass


class InvalidPartitionsError(InvalidInputError):
    pass


class InvalidParameterError(InvalidInputError):
    pass


class InvalidReplicationFactorError(InvalidInputError):
    pass


class NoCommittedOffsetError(InvalidInputError):
    pass


class InvalidSessionTimeoutError(InvalidInputError):
    pass


class InvalidTimestampError(InvalidInputError):
    """A record timestamp too far from the broker's clock (message.timestamp.before/after.max.ms)."""


class TooManyRequestsError(BrokerError):
    status = 429
    retriable = True


class TooManyAuthenticationFailuresError(TooManyRequestsError):
    """This address failed to authenticate too often lately; wait ``Retry-After`` (never a lockout)."""


class ServerError(BrokerError):
    status = 500


class InternalServerError(ServerError):
    pass


class StorageError(ServerError):
    pass


class StorageWriteFailedError(ServerError):
    retriable = True


class PartitionReadOnlyError(ServerError):
    retriable = True


class InsufficientStorageError(BrokerError):
    status = 507
    retriable = True


class ServiceUnavailableError(BrokerError):
    status = 503
    retriable = True


class NotEnoughReplicasError(ServiceUnavailableError):
    pass


class NotReadyError(ServiceUnavailableError):
    pass


class OverloadedError(ServiceUnavailableError):
    pass


class NotLeaderError(ServiceUnavailableError):
    pass


class NotEnoughReplicasAfterAppendError(ServiceUnavailableError):
    """The leader appended the records but the ISR did not acknowledge them: they may be written.

    Retriable for idempotent producers (the retry is recognised); a plain producer that retries
    may write the records twice.
    """


# The broker's app/error_codes.py, copied by number: the client never imports the broker.


class MalformedRequestError(BadRequestError):
    """The HTTP request itself was malformed (bad request line or headers)."""


class RequestTimeoutError(BrokerError):
    """The broker closed a request it did not receive in time (408); sending it again may work."""

    status = 408
    retriable = True


class RequestHeaderTimeoutError(RequestTimeoutError):
    """The request's headers did not arrive within the broker's header deadline."""


class RequestBodyTooSlowError(RequestTimeoutError):
    """The request's body arrived slower than the broker's minimum body rate."""


class InvalidTopicPatternError(InvalidInputError):
    """A topic_pattern RE2 cannot compile, or one over the length limit."""


class ValueTooDeepError(InvalidInputError):
    """A JSON key or value nested deeper than the broker's limit."""


class NumberOutOfRangeError(InvalidInputError):
    """A JSON number no reader can hold (an integer beyond 64 bits, an infinite float)."""


class CorruptBatchError(BadRequestError):
    """A binary produce batch with a bad frame, magic, CRC-32C or header field (names ``batch``)."""


class InvalidBatchRecordsError(BadRequestError):
    """A binary produce batch whose records fail the broker's checks (names ``batch``)."""


class BatchDecompressedTooLargeError(TooLargeError):
    """A compressed binary produce batch that decompresses past the broker's bound."""




class TooManyConnectionsPerIpError(TooManyRequestsError):
    """This client address has max_connections_per_ip connections open."""


class TooManyWaitersPerClientError(TooManyRequestsError):
    """This client has its share of parked long polls waiting."""


class TooManyStreamsPerClientError(TooManyRequestsError):
    """This client has its share of event streams open."""


class QuotaExceededError(TooManyRequestsError):
    """The principal's quota on this broker is used up; ``retry_after_ms`` says for how long."""


class TooManyConnectionsError(ServiceUnavailableError):
    """The broker has max_connections connections open."""


class TooManyWaitersError(ServiceUnavailableError):
    """The broker has max_parked_requests long polls waiting."""


class TooManyStreamsError(ServiceUnavailableError):
    """The broker has max_sse_streams event streams open."""


class UnknownConnectorError(NotFoundError):
    """No connector of that name."""


class UnknownConnectorTaskError(NotFoundError):
    """The connector has no task of that id."""


class UnknownConnectorPluginError(NotFoundError):
    """No installed connector type of that name."""


class ConnectorExistsError(ConflictError):
    """A connector of that name exists already."""


class ConnectorNotStoppedError(ConflictError):
    """Offsets change only while the connector is STOPPED."""


class StaleTaskGenerationError(ConflictError):
    """The task's assignment is no longer current: stop it."""


class InvalidConnectorConfigError(InvalidInputError):
    """A connector config that does not validate (``errors``)."""


ERROR_CLASSES: dict[int, type[BrokerError]] = {
    40001: InvalidRequestError,
    40002: InvalidRecordError,
    40003: MalformedRequestError,
    40020: CorruptBatchError,
    40021: InvalidBatchRecordsError,
    40101: AuthenticationRequiredError,
    40102: AuthenticationFailedError,
    40390: CsrfCheckFailedError,
    40420: UnknownApiKeyError,
    40421: UnknownUserError,
    40920: UserExistsError,
    42910: TooManyAuthenticationFailuresError,
    40311: TopicAuthorizationError,
    40312: GroupAuthorizationError,
    40313: ClusterAuthorizationError,
    40401: UnknownTopicError,
    40402: UnknownPartitionError,
    40403: UnknownMemberError,
    40404: UnknownGroupError,
    40405: UnknownProducerError,
    40499: ResourceNotFoundError,
    40501: MethodNotAllowedError,
    40601: NotAcceptableError,
    40901: TopicExistsError,
    40902: IllegalGenerationError,
    40903: GroupNotEmptyError,
    40904: RebalanceInProgressError,
    40905: ProducerFencedError,
    40906: OutOfOrderSequenceError,
    40907: IdempotencyKeyReusedError,
    40430: UnknownConnectorError,
    40431: UnknownConnectorTaskError,
    40432: UnknownConnectorPluginError,
    40930: ConnectorExistsError,
    40931: ConnectorNotStoppedError,
    40932: StaleTaskGenerationError,
    42230: InvalidConnectorConfigError,
    40801: RequestHeaderTimeoutError,
    40802: RequestBodyTooSlowError,
    41301: RecordTooLargeError,
    41302: RequestTooLargeError,
    41303: BatchDecompressedTooLargeError,
    41501: UnsupportedMediaTypeError,
    41601: OffsetOutOfRangeError,
    42201: InvalidConfigError,
    42202: InvalidTopicNameError,
    42203: InvalidPartitionsError,
    42204: InvalidParameterError,
    42205: InvalidReplicationFactorError,
    42206: NoCommittedOffsetError,
    42207: InvalidSessionTimeoutError,
    42210: InvalidTimestampError,
    42220: InvalidTopicPatternError,
    42221: ValueTooDeepError,
    42222: NumberOutOfRangeError,
    42901: TooManyRequestsError,
    42902: TooManyConnectionsPerIpError,
    42903: TooManyWaitersPerClientError,
    42904: TooManyStreamsPerClientError,
    42911: QuotaExceededError,
    50001: InternalServerError,
    50002: StorageError,
    50003: StorageWriteFailedError,
    50004: PartitionReadOnlyError,
    50301: NotEnoughReplicasError,
    50302: NotReadyError,
    50303: OverloadedError,
    50304: NotLeaderError,
    50305: NotEnoughReplicasAfterAppendError,
    50310: TooManyConnectionsError,
    50311: TooManyWaitersError,
    50312: TooManyStreamsError,
    50701: InsufficientStorageError,
}

_STATUS_CLASSES: dict[int, type[BrokerError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: AuthorizationError,
    404: NotFoundError,
    405: MethodNotAllowedError,
    406: NotAcceptableError,
    408: RequestTimeoutError,
    409: ConflictError,
    413: TooLargeError,
    415: UnsupportedMediaTypeError,
    416: OffsetOutOfRangeError,
    422: InvalidInputError,
    429: TooManyRequestsError,
    503: ServiceUnavailableError,
    507: InsufficientStorageError,
}


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare from tidelog, fall back to the client's own backoff


def error_from_response(status: int, body: Any, retry_after: str | None = None) -> BrokerError:
    """Build the exception for an error answer: by ``error_code`` first, then by HTTP status."""
    problem: Mapping[str, Any] = body if isinstance(body, Mapping) else {}
    code = problem.get("error_code")
    cls: type[BrokerError] | None = ERROR_CLASSES.get(code) if isinstance(code, int) else None
    if cls is None:
        cls = _STATUS_CLASSES.get(status) or (ServerError if status >= 500 else BrokerError)
    detail = problem.get("detail")
    if not isinstance(detail, str) or not detail:
        detail = str(body)[:500] if body else f"HTTP {status}"
    title = problem.get("title")
    return cls(
        detail,
        status=status,
        error_code=code if isinstance(code, int) else None,
        title=title if isinstance(title, str) else None,
        type=problem.get("type") if isinstance(problem.get("type"), str) else None,
        body=problem,
        retry_after=_parse_retry_after(retry_after),
    )
