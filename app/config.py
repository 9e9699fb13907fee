"""Broker settings: one field per ``tidelog serve`` flag and ``TIDELOG_*`` environment variable.

``Settings()`` is built by ``create_app`` or the CLI, never at import time. A field ``data_dir`` is the
flag ``--data-dir`` and the variable ``TIDELOG_DATA_DIR``. The ``log_*``/``message_max_bytes``/
``num_partitions``/``min_insync_replicas`` fields are the broker-wide defaults of topic configs, named
after Kafka's broker configs (``log.retention.ms`` → ``log_retention_ms``).
"""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
DAY_MS = 24 * 60 * 60 * 1000


def parse_connection_overrides(text: str) -> dict[str, int]:
    """Kafka's ``max.connections.per.ip.overrides`` format, ``host:count,host:count`` → {address: count}.

    An IPv6 address is written in brackets (``[::1]:50``); the count is a non-negative integer.
    """
    overrides: dict[str, int] = {}
    for entry in filter(None, (e.strip() for e in text.split(","))):
        host, sep, count = entry.rpartition(":")
        host = host.strip().removeprefix("[").removesuffix("]")
        try:
            if not sep or not count.strip().isdigit():
                raise ValueError(entry)
            address = str(ipaddress.ip_address(host))
        except ValueError:
            raise ValueError(
                f"max_connections_per_ip_overrides: {entry!r} is not <ip address>:<count>"
            ) from None
        overrides[address] = int(count)
    return overrides


class Settings(BaseSettings):
    """Everything a broker process can be configured with; see docs/configuration.md."""

    model_config = SettingsConfigDict(env_prefix="TIDELOG_", extra="forbid", validate_default=True)

    # --- network and identity
    host: str = Field("127.0.0.1", description="Interface to listen on.")
    port: int = Field(8080, ge=1, le=65535, description="TCP port to listen on.")
    data_dir: Path = Field(Path("./data"), description="Directory of the partition logs.")
    catalog_url: str | None = Field(
        None, description="SQLAlchemy URL of the catalog; default sqlite:///<data_dir>/catalog.db."
    )
    broker_id: int = Field(0, ge=0, description="This broker's id in the cluster.")
    advertised_url: str | None = Field(
        None, description="Base URL clients reach this broker at; default http://<host>:<port>."
    )

    # --- browsers on other origins (CORS, docs/configuration.md); off unless origins are listed
    cors_allow_origins: str = Field(
        "", description="Comma-separated origins whose pages may call the broker (`*`: any); empty: CORS off."
    )
    cors_allow_methods: str = Field(
        "GET,HEAD,POST,PUT,PATCH,DELETE", description="Comma-separated methods a cross-origin page may use."
    )
    cors_allow_headers: str = Field(
        "Content-Type,Accept,Idempotency-Key,Last-Event-ID",
        description="Comma-separated request headers a cross-origin page may send.",
    )
    cors_max_age_s: int = Field(600, ge=0, description="How long a browser may cache a preflight answer.")

    # --- authentication (docs/security.md); off by default, zero-config on loopback
    auth_enabled: bool = Field(
        False, description="Require a credential (API key, password, JWT, session) on every API request."
    )
    insecure_allow_public: bool = Field(
        False, description="Serve a non-loopback address without authentication (else turned on at start)."
    )
    auth_pepper_file: Path | None = Field(
        None, description="File of the pepper: 'id:secret' lines, the current first; same on every broker."
    )
    auth_pepper: SecretStr | None = Field(
        None, description="The pepper as 'id:secret[,id:secret...]' (instead of auth_pepper_file)."
    )
    auth_public_health: bool = Field(True, description="/healthz and /readyz answer without a credential.")
    auth_public_metrics: bool = Field(False, description="/metrics answers without a credential.")
    auth_public_docs: bool = Field(
        True, description="/docs, /openapi.json and the console's static files answer without a credential."
    )
    auth_failure_limit: int = Field(
        20, ge=1, description="Failed authentications from one address per window before 429."
    )
    auth_failure_window_s: int = Field(60, ge=1, description="The window of auth_failure_limit (seconds).")
    auth_cache_ttl_s: int = Field(60, ge=0, le=3600, description="How long a verified credential is cached.")
    auth_poll_interval_ms: int = Field(
        200, ge=10, description="How often revocations are read from the catalog (cached credentials drop)."
    )
    inter_broker_principal: str = Field(
        "User:broker", description="The principal brokers of a cluster call each other as."
    )
    password_time_cost: int = Field(3, ge=1, description="argon2id time cost of new password hashes.")
    password_memory_cost_kib: int = Field(
        65536, ge=8, description="argon2id memory cost (KiB) of new password hashes."
    )
    # JWT bearer tokens (Kafka's KIP-768 sasl.oauthbearer.* settings); off unless a key source is set
    oauthbearer_jwks_endpoint_url: str | None = Field(
        None, description="sasl.oauthbearer.jwks.endpoint.url: the JWKS of the token issuer."
    )
    oauthbearer_jwks_endpoint_refresh_ms: int = Field(
        3_600_000,
        ge=1000,
        description="sasl.oauthbearer.jwks.endpoint.refresh.ms: the JWKS is refetched at most this often.",
    )
    oauthbearer_public_key_file: Path | None = Field(
        None, description="A static PEM public key to verify tokens with (instead of a JWKS URL)."
    )
    oauthbearer_algorithms: str = Field(
        "RS256", description="Comma-separated JWS algorithms accepted (asymmetric only: RS*, PS*, ES*, EdDSA)"
    )
    oauthbearer_expected_audience: str | None = Field(
        None, description="sasl.oauthbearer.expected.audience: the aud a token must carry."
    )
    oauthbearer_expected_issuer: str | None = Field(
        None, description="sasl.oauthbearer.expected.issuer: the iss a token must carry."
    )
    oauthbearer_sub_claim_name: str = Field(
        "sub", description="sasl.oauthbearer.sub.claim.name: the claim naming the principal."
    )
    oauthbearer_clock_skew_seconds: int = Field(
        30, ge=0, le=300, description="sasl.oauthbearer.clock.skew.seconds: leeway on exp and nbf."
    )
    # the console's session cookie (POST /v1/sessions)
    session_max_age_s: int = Field(8 * 3600, ge=60, description="How long a session cookie is valid.")
    session_cookie_samesite: Literal["strict", "lax", "none"] = Field(
        "strict", description="SameSite of the session cookie (none only under TLS)."
    )

    # TLS (uvicorn's settings) and mTLS; every listener, inter-broker traffic included, when set
    ssl_certfile: Path | None = Field(None, description="PEM certificate (chain) of this broker: HTTPS.")
    ssl_keyfile: Path | None = Field(None, description="PEM private key of ssl_certfile.")
    ssl_ca_certs: Path | None = Field(
        None, description="PEM CA bundle: client certificates are then required and verified (mTLS)."
    )
    ssl_principal_mapping_rules: str = Field(
        "DEFAULT", description="Kafka's ssl.principal.mapping.rules (KIP-371): certificate subject → name."
    )

    # --- the web console at /ui (docs/console.md)
    ui_enabled: bool = Field(True, description="Serve the web console at /ui.")
    ui_messages_enabled: bool = Field(
        True, description="The console shows record keys, values and headers (off: offsets and counts only)."
    )
    ui_export_enabled: bool = Field(True, description="The console offers export of the rows it shows.")

    # --- what callers may do, how much, and the audit trail (docs/security-acls.md)
    authorizer_enabled: bool = Field(
        False, description="Enforce ACLs (Kafka's StandardAuthorizer); off: every caller may do everything."
    )
    super_users: str = Field(
        "", description="Kafka's super.users: principals allowed everything, 'User:a;User:b'."
    )
    allow_everyone_if_no_acl_found: bool = Field(
        False, description="Kafka's allow.everyone.if.no.acl.found: a resource without any ACL is open."
    )
    acl_refresh_interval_ms: int = Field(
        200, ge=10, le=60_000, description="How often the ACL and quota cache checks the catalog for changes."
    )
    quotas_enabled: bool = Field(
        False, description="Enforce the client quotas of /v1/quotas (per principal, per broker)."
    )
    audit_enabled: bool = Field(
        False, description="Record every mutation and every denial to the __audit topic."
    )
    audit_file: Path | None = Field(
        None, description="Also append each audit record, one JSON line, to this file."
    )
    # --- tidelog connect (docs/connect.md)
    connect: bool = Field(False, description="Embed one tidelog connect worker in this broker (development).")
    connect_worker_session_timeout_ms: int = Field(
        10_000, ge=1000, le=300_000,
        description="A connect worker silent this long loses its tasks to the other workers.",
    )

    # --- background work
    log_retention_check_interval_ms: int = Field(
        300_000, ge=100, description="How often retention and compaction run."
    )

    # --- request limits
    max_request_bytes: int = Field(16 * MiB, ge=1 * KiB, description="Largest request body accepted (413).")
    max_partitions_per_topic: int = Field(1000, ge=1, description="Most partitions a topic may have.")
    max_records_per_request: int = Field(100_000, ge=1, description="Most records in one produce request.")
    max_json_depth: int = Field(
        64, ge=1, le=200,  # orjson serialises at most 255 levels
        description="Levels of arrays and objects a record's JSON key or value may nest (422 42221 beyond).",
    )
    raw_produce_route: bool = Field(
        True, description="Plain produce requests skip FastAPI's per-request work (app/routes/raw.py)."
    )
    batch_max_decompressed_bytes: int = Field(
        64 * MiB, ge=1 * KiB, description="Most bytes a compressed binary batch may decompress to (413)."
    )
    fetch_max_wait_ms: int = Field(30_000, ge=0, description="Largest max_wait_ms a fetch may ask for.")
    fetch_max_records: int = Field(100_000, ge=1, description="Largest max_records a fetch may ask for.")
    fetch_max_bytes: int = Field(64 * MiB, ge=1, description="Largest max_bytes a fetch may ask for.")
    idempotency_key_window_ms: int = Field(
        DAY_MS, ge=0, description="How long an Idempotency-Key's first answer is replayed."
    )
    max_inflight_requests: int = Field(
        1024, ge=1, description="Requests served at once; beyond it the broker answers 503 with Retry-After."
    )
    max_parked_requests: int = Field(
        10_000, ge=1, description="Long polls (max_wait_ms > 0) waiting at once, beside the in-flight limit."
    )
    max_parked_requests_per_client: int = Field(
        1000, ge=1, description="Long polls one client address may have waiting at once (429 beyond)."
    )
    max_sse_streams: int = Field(
        2000, ge=1, description="Server-Sent Events streams open at once (503 beyond)."
    )
    max_sse_streams_per_client: int = Field(
        100, ge=1, description="Event streams one client address may have open at once (429 beyond)."
    )
    sse_max_buffer_bytes: int = Field(
        256 * KiB, ge=4 * KiB, le=64 * MiB,
        description="Bytes of records an event stream reads and renders at a time (its chunk size).",
    )
    sse_send_timeout_ms: int = Field(
        30_000, ge=100,
        description="A client that reads nothing of an answer (an event stream) this long is disconnected.",
    )
    overload_retry_after_s: int = Field(1, ge=1, description="Retry-After (seconds) of an overload answer.")

    # --- connections (Kafka's socket-server settings; enforced by tidelog serve's HTTP protocol)
    max_connections: int = Field(
        10_000, ge=1, description="Kafka's max.connections: open connections at once (503 beyond)."
    )
    max_connections_per_ip: int = Field(
        1000, ge=1, description="Kafka's max.connections.per.ip: connections from one address (429 beyond)."
    )
    max_connections_per_ip_overrides: str = Field(
        "", description="Kafka's max.connections.per.ip.overrides: 'host:count,host:count' (IP addresses)."
    )
    connections_max_idle_ms: int = Field(
        60_000, ge=100, description="Kafka's connections.max.idle.ms: close a connection idle this long."
    )
    request_header_timeout_ms: int = Field(
        10_000, ge=100, description="A request's line and headers must arrive within this time (else 408)."
    )
    request_body_min_rate_bytes_per_s: int = Field(
        1024, ge=0, description="After the grace, a body slower than this is cut off (408); 0: no minimum."
    )
    request_body_grace_ms: int = Field(
        5000, ge=0, description="Time a body may take before its minimum rate applies."
    )
    forwarded_allow_ips: str = Field(
        "", description="Proxies (IPs, CIDRs, or *) whose X-Forwarded-For names the client; empty: none."
    )
    graceful_shutdown_timeout_s: float = Field(
        10.0, ge=0, description="On SIGTERM, how long open requests and streams may finish before cancelling."
    )

    # --- consumer groups
    group_min_session_timeout_ms: int = Field(6000, ge=1, description="Smallest session timeout allowed.")
    group_max_session_timeout_ms: int = Field(1_800_000, ge=1, description="Largest session timeout allowed.")
    offsets_retention_minutes: int = Field(
        10_080, ge=1, description="How long committed offsets of an empty group are kept."
    )

    # --- defaults of topic configs (Kafka broker config names)
    num_partitions: int = Field(1, ge=1, description="Partitions of a topic created without a count.")
    log_retention_ms: int = Field(7 * DAY_MS, ge=-1, description="Default retention.ms (-1: forever).")
    log_retention_bytes: int = Field(-1, ge=-1, description="Default retention.bytes (-1: unlimited).")
    log_segment_bytes: int = Field(1 * GiB, ge=14, description="Default segment.bytes.")
    log_segment_ms: int = Field(7 * DAY_MS, ge=1, description="Default segment.ms.")
    log_cleanup_policy: Literal["delete", "compact", "compact,delete"] = Field(
        "delete", description="Default cleanup.policy."
    )
    log_cleaner_delete_retention_ms: int = Field(DAY_MS, ge=0, description="Default delete.retention.ms.")
    log_cleaner_min_cleanable_ratio: float = Field(
        0.5, ge=0.0, le=1.0, description="Default min.cleanable.dirty.ratio."
    )
    message_max_bytes: int = Field(1_048_588, ge=0, description="Default max.message.bytes.")
    log_message_timestamp_type: Literal["CreateTime", "LogAppendTime"] = Field(
        "CreateTime", description="Default message.timestamp.type."
    )
    log_flush_interval_messages: int | None = Field(
        None, ge=1, description="Default flush.messages (unset: leave flushing to the page cache)."
    )
    log_flush_interval_ms: int | None = Field(
        None, ge=0, description="Default flush.ms (unset: leave flushing to the page cache)."
    )
    min_insync_replicas: int = Field(1, ge=1, description="Default min.insync.replicas.")

    # --- clustered mode (docs/cluster.md); off unless ``cluster`` is set, with a PostgreSQL catalog
    cluster: bool = Field(False, description="Run as one broker of a cluster sharing a PostgreSQL catalog.")
    broker_session_timeout_ms: int = Field(
        9000, ge=100, description="A broker without a heartbeat for this long is fenced."
    )
    broker_heartbeat_interval_ms: int = Field(
        2000, ge=10, description="How often a broker heartbeats (and the controller checks the cluster)."
    )
    replica_lag_time_max_ms: int = Field(
        30_000, ge=100, description="A follower not caught up for this long leaves the ISR."
    )
    replica_fetch_wait_max_ms: int = Field(
        500, ge=0, description="How long a follower's fetch waits at the leader for new data."
    )

    @property
    def connection_overrides(self) -> dict[str, int]:
        """``max_connections_per_ip_overrides`` parsed: address → limit."""
        return parse_connection_overrides(self.max_connections_per_ip_overrides)

    @model_validator(mode="after")
    def _check(self) -> Settings:
        parse_connection_overrides(self.max_connections_per_ip_overrides)  # refuses a malformed value
        for entry in filter(None, (e.strip() for e in self.forwarded_allow_ips.split(","))):
            if entry != "*":
                try:
                    ipaddress.ip_network(entry, strict=False)
                except ValueError:
                    raise ValueError(
                        f"forwarded_allow_ips: {entry!r} is not an IP address or network"
                    ) from None
        for user in filter(None, (u.strip() for u in self.super_users.split(";"))):
            if not user.startswith("User:") or len(user) == len("User:"):
                raise ValueError(f"super_users: {user!r} is not User:<name> (separate principals with ';')")
        if self.group_min_session_timeout_ms > self.group_max_session_timeout_ms:
            raise ValueError("group_min_session_timeout_ms is larger than group_max_session_timeout_ms")
        from app.security.authn.jwt import check_algorithms

        check_algorithms(self.oauthbearer_algorithms)
        from app.security.authn.tls import parse_rules

        parse_rules(self.ssl_principal_mapping_rules)
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise ValueError("TLS needs both ssl_certfile and ssl_keyfile")
        if self.ssl_ca_certs is not None and self.ssl_certfile is None:
            raise ValueError("ssl_ca_certs (client certificates) needs ssl_certfile and ssl_keyfile")
        if self.session_cookie_samesite == "none" and self.ssl_certfile is None:
            raise ValueError("session_cookie_samesite=none needs TLS (browsers drop it without Secure)")
        if self.oauthbearer_jwks_endpoint_url and self.oauthbearer_public_key_file:
            raise ValueError("set oauthbearer_jwks_endpoint_url or oauthbearer_public_key_file, not both")
        if self.auth_pepper is not None and self.auth_pepper_file is not None:
            raise ValueError("set auth_pepper_file or auth_pepper, not both")
        if self.cluster and self.auth_enabled and self.auth_pepper is None and self.auth_pepper_file is None:
            raise ValueError(
                "authentication in cluster mode needs auth_pepper_file or TIDELOG_AUTH_PEPPER, "
                "the same on every broker"
            )
        if self.cluster:
            if not (self.catalog_url or "").startswith(("postgresql", "postgres:")):
                raise ValueError("cluster mode needs a PostgreSQL catalog_url (postgresql://...)")
            if self.broker_heartbeat_interval_ms >= self.broker_session_timeout_ms:
                raise ValueError(
                    "broker_heartbeat_interval_ms must be smaller than broker_session_timeout_ms"
                )
        return self

    @property
    def effective_catalog_url(self) -> str:
        """The catalog URL, defaulting to the SQLite file ``<data_dir>/catalog.db``."""
        if self.catalog_url:
            return self.catalog_url
        return f"sqlite:///{(self.data_dir.resolve() / 'catalog.db').as_posix()}"

    @property
    def tls(self) -> bool:
        """Whether the broker serves HTTPS (and its inter-broker clients use it)."""
        return self.ssl_certfile is not None

    @property
    def is_loopback(self) -> bool:
        """Whether ``host`` is a loopback address (or ``localhost``): only this machine can connect."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    @property
    def effective_advertised_url(self) -> str:
        """The URL clients should use to reach this broker."""
        if self.advertised_url:
            return self.advertised_url.rstrip("/")
        host = self.host
        if host in ("0.0.0.0", "::", ""):
            host = socket.getfqdn()
        if ":" in host:
            host = f"[{host}]"
        scheme = "https" if self.ssl_certfile is not None else "http"
        return f"{scheme}://{host}:{self.port}"
