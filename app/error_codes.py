"""The integer ``error_code`` of every problem answer, five digits, Confluent REST style.

The first three digits are the HTTP status the code is answered with; the last two number
the cases within it. ``@unique`` makes two codes with one value an import-time error instead
of a silent alias. ``docs/errors.md`` lists them for users; the client mirrors them.
"""

from enum import IntEnum, unique


@unique
class ErrorCode(IntEnum):
    # 400: the request is well-formed HTTP but its content is wrong.
    INVALID_REQUEST = 40001  # malformed JSON, wrong types, missing fields
    INVALID_RECORD = 40002  # a record that cannot be decoded in its declared format (bad base64, …)
    MALFORMED_HTTP_REQUEST = 40003  # bytes that are not an HTTP/1.1 request (answered by the server)
    CORRUPT_BATCH = 40020  # a binary produce batch with a bad frame, magic, CRC-32C or header field
    INVALID_BATCH_RECORDS = 40021  # a binary produce batch whose records fail the broker's checks
    # 401: no credential, or one the broker refused (docs/security.md); answered with WWW-Authenticate
    AUTHENTICATION_REQUIRED = 40101  # authentication is on and the request carried no credential
    AUTHENTICATION_FAILED = 40102  # a wrong, unknown, expired or revoked credential
    # 403
    CSRF_CHECK_FAILED = 40390  # a cookie-authenticated unsafe request from another origin
    # 403: the caller is known but its ACLs do not allow the operation (docs/security-acls.md)
    TOPIC_AUTHORIZATION_FAILED = 40311  # may DESCRIBE the topic, not do this to it
    GROUP_AUTHORIZATION_FAILED = 40312  # may DESCRIBE the group, not do this to it
    CLUSTER_AUTHORIZATION_FAILED = 40313  # a cluster-level operation (create, ACLs, quotas, replication)
    # 404
    UNKNOWN_TOPIC = 40401
    UNKNOWN_PARTITION = 40402
    UNKNOWN_MEMBER = 40403  # unknown or expired group member: it must rejoin
    UNKNOWN_GROUP = 40404
    UNKNOWN_PRODUCER = 40405
    UNKNOWN_API_KEY = 40420  # no API key with this id
    UNKNOWN_USER = 40421  # no password user with this name
    UNKNOWN_CONNECTOR = 40430  # no connector of that name (tidelog connect, docs/connect.md)
    UNKNOWN_CONNECTOR_TASK = 40431  # the connector has no task of that id
    UNKNOWN_CONNECTOR_PLUGIN = 40432  # no installed connector type of that name
    NOT_FOUND = 40499  # a path that names no resource
    # 405 / 406
    METHOD_NOT_ALLOWED = 40501
    NOT_ACCEPTABLE = 40601
    # 408: the connection was closed by a deadline (docs/guarantees.md, "Limits")
    REQUEST_HEADER_TIMEOUT = 40801  # headers not received within request_header_timeout_ms
    REQUEST_BODY_TOO_SLOW = 40802  # body slower than request_body_min_rate_bytes_per_s
    # 409
    TOPIC_EXISTS = 40901
    ILLEGAL_GENERATION = 40902  # stale generation, or a partition the member does not own
    GROUP_NOT_EMPTY = 40903
    REBALANCE_IN_PROGRESS = 40904
    PRODUCER_FENCED = 40905  # an older producer epoch (Kafka's InvalidProducerEpoch / ProducerFenced)
    OUT_OF_ORDER_SEQUENCE = 40906  # a gap in an idempotent producer's sequence numbers
    IDEMPOTENCY_KEY_REUSED = 40907  # the same Idempotency-Key with a different request body
    USER_EXISTS = 40920  # a password user with this name already exists
    CONNECTOR_EXISTS = 40930  # POST /v1/connectors with a name already taken
    CONNECTOR_NOT_STOPPED = 40931  # offsets are altered or reset only while the connector is STOPPED
    STALE_TASK_GENERATION = 40932  # a worker reported for a task assignment that is no longer current
    # 413
    RECORD_TOO_LARGE = 41301  # one batch over max.message.bytes
    REQUEST_TOO_LARGE = 41302  # a body over the broker's request size limit
    BATCH_DECOMPRESSED_TOO_LARGE = 41303  # a binary batch that decompresses past batch_max_decompressed_bytes
    # 415
    UNSUPPORTED_MEDIA_TYPE = 41501
    # 416
    OFFSET_OUT_OF_RANGE = 41601
    # 422
    INVALID_CONFIG = 42201
    INVALID_TOPIC_NAME = 42202
    INVALID_PARTITIONS = 42203
    INVALID_PARAMETER = 42204  # a query or body value outside its documented limits
    INVALID_REPLICATION_FACTOR = 42205
    NO_COMMITTED_OFFSET = 42206  # auto_offset_reset=none and no usable committed offset
    INVALID_SESSION_TIMEOUT = 42207
    INVALID_TIMESTAMP = 42210  # a record timestamp outside message.timestamp.before/after.max.ms (KIP-937)
    INVALID_TOPIC_PATTERN = 42220  # a topic_pattern RE2 cannot compile, or longer than the limit
    VALUE_TOO_DEEP = 42221  # a JSON key or value nested deeper than MAX_JSON_DEPTH
    NUMBER_OUT_OF_RANGE = 42222  # a JSON number no reader can hold (integer beyond 64 bits, 1e400)
    INVALID_CONNECTOR_CONFIG = 42230  # a connector config that does not validate (see its `errors`)
    # 429
    TOO_MANY_REQUESTS = 42901
    TOO_MANY_CONNECTIONS_PER_IP = 42902  # max_connections_per_ip (or its override) reached
    TOO_MANY_WAITERS_PER_CLIENT = 42903  # max_parked_requests_per_client long polls already parked
    TOO_MANY_STREAMS_PER_CLIENT = 42904  # max_sse_streams_per_client event streams already open
    TOO_MANY_AUTHENTICATION_FAILURES = 42910  # this address failed too often lately: slowed, never locked
    QUOTA_EXCEEDED = 42911  # the principal's quota (bytes/s, requests/s, streams); retry_after_ms says when
    # 500
    INTERNAL_ERROR = 50001
    STORAGE_ERROR = 50002
    STORAGE_WRITE_FAILED = 50003  # a write failed with an I/O error; nothing was written (retriable)
    PARTITION_READ_ONLY = 50004  # an fsync failed: writes refused until the log is re-validated (retriable)
    # 503
    NOT_ENOUGH_REPLICAS = 50301
    NOT_READY = 50302  # starting up or shutting down
    OVERLOADED = 50303
    NOT_LEADER = 50304  # the partition is led by another broker
    # Appended on the leader but not acknowledged by the ISR (leadership moved, the ISR shrank, or
    # replication timed out): the records may have been written. Kafka's NOT_ENOUGH_REPLICAS_AFTER_APPEND.
    NOT_ENOUGH_REPLICAS_AFTER_APPEND = 50305
    TOO_MANY_CONNECTIONS = 50310  # max_connections open connections
    TOO_MANY_WAITERS = 50311  # max_parked_requests long polls parked
    TOO_MANY_STREAMS = 50312  # max_sse_streams event streams open
    # 507
    INSUFFICIENT_STORAGE = 50701  # the data directory's or the catalog's disk is full (retriable)

    @property
    def http_status(self) -> int:
        """The HTTP status this code is answered with (its first three digits)."""
        return int(self) // 100
