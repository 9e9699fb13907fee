"""``tidelog serve``, ``tidelog migrate`` and ``tidelog openapi``: thin commands over the broker.

Only click and the standard library are imported at module level: the client commands of ``tidelog``
load this module too and must not pay for FastAPI, SQLAlchemy or the storage engine. Every ``serve``
flag is a ``Settings`` field (``--data-dir`` → ``data_dir`` → ``TIDELOG_DATA_DIR``); a flag left out
falls back to the environment variable, then to the default.
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import sys
from typing import Any

import click

__all__ = ["SERVE_SETTINGS_OPTIONS", "migrate", "openapi", "serve"]

_POLICIES = click.Choice(["delete", "compact", "compact,delete"])
_TIMESTAMP_TYPES = click.Choice(["CreateTime", "LogAppendTime"])
_SAMESITE = click.Choice(["strict", "lax", "none"])

#: (flag, type, help) of every Settings field, in docs/configuration.md's order.
SERVE_SETTINGS_OPTIONS: tuple[tuple[str, Any, str], ...] = (
    ("--host", str, "Interface to listen on [127.0.0.1]."),
    ("--port", click.IntRange(1, 65535), "TCP port [8080]."),
    ("--data-dir", click.Path(file_okay=False), "Directory of the partition logs [./data]."),
    ("--catalog-url", str, "SQLAlchemy URL of the catalog [sqlite:///<data-dir>/catalog.db]."),
    ("--broker-id", click.IntRange(min=0), "This broker's id [0]."),
    ("--advertised-url", str, "Base URL clients reach this broker at [http://<host>:<port>]."),
    ("--cors-allow-origins", str, "Comma-separated origins of allowed pages; `*`: any [off]."),
    ("--cors-allow-methods", str, "Methods a cross-origin page may use [GET,HEAD,POST,PUT,PATCH,DELETE]."),
    ("--cors-allow-headers", str, "Request headers a cross-origin page may send [Content-Type,Accept,...]."),
    ("--cors-max-age-s", click.IntRange(min=0), "How long a browser caches a preflight answer [600]."),
    ("--auth-enabled", bool, "Require a credential on every API request (a switch) [off]."),
    ("--insecure-allow-public", bool, "Serve a non-loopback address without authentication [off]."),
    ("--auth-pepper-file", click.Path(dir_okay=False), "Pepper file, id:secret lines [in --data-dir]."),
    ("--auth-pepper", str, "The pepper, 'id:secret[,id:secret]' (prefer TIDELOG_AUTH_PEPPER) []."),
    ("--auth-public-health", bool, "/healthz and /readyz answer without a credential [on]."),
    ("--auth-public-metrics", bool, "/metrics answers without a credential [off]."),
    ("--auth-public-docs", bool, "/docs, /openapi.json and /ui files answer without a credential [on]."),
    ("--auth-failure-limit", click.IntRange(min=1), "Failed authentications per address per window [20]."),
    ("--auth-failure-window-s", click.IntRange(min=1), "Window of --auth-failure-limit [60]."),
    ("--auth-cache-ttl-s", click.IntRange(0, 3600), "How long a verified credential is cached [60]."),
    ("--auth-poll-interval-ms", click.IntRange(min=10), "How often revocations are read [200]."),
    ("--inter-broker-principal", str, "The principal brokers call each other as [User:broker]."),
    ("--password-time-cost", click.IntRange(min=1), "argon2id time cost [3]."),
    ("--password-memory-cost-kib", click.IntRange(min=8), "argon2id memory cost, KiB [65536]."),
    ("--oauthbearer-jwks-endpoint-url", str, "JWKS URL of the JWT issuer (KIP-768) []."),
    ("--oauthbearer-jwks-endpoint-refresh-ms", click.IntRange(min=1000), "Least JWKS refetch period [1 h]."),
    ("--oauthbearer-public-key-file", click.Path(dir_okay=False), "Static PEM key for JWTs []."),
    ("--oauthbearer-algorithms", str, "Accepted JWS algorithms, asymmetric only [RS256]."),
    ("--oauthbearer-expected-audience", str, "The aud a JWT must carry []."),
    ("--oauthbearer-expected-issuer", str, "The iss a JWT must carry []."),
    ("--oauthbearer-sub-claim-name", str, "The JWT claim naming the principal [sub]."),
    ("--oauthbearer-clock-skew-seconds", click.IntRange(0, 300), "Leeway on exp and nbf [30]."),
    ("--session-max-age-s", click.IntRange(min=60), "Lifetime of a console session [28800]."),
    ("--session-cookie-samesite", _SAMESITE, "SameSite of the session cookie [strict]."),
    ("--ssl-certfile", click.Path(dir_okay=False), "PEM certificate of this broker: serve HTTPS []."),
    ("--ssl-keyfile", click.Path(dir_okay=False), "PEM private key of --ssl-certfile []."),
    ("--ssl-ca-certs", click.Path(dir_okay=False), "CA bundle: client certificates required (mTLS) []."),
    ("--ssl-principal-mapping-rules", str, "Certificate subject → principal, KIP-371 rules [DEFAULT]."),
    ("--ui-enabled", bool, "Serve the web console at /ui (`--ui-enabled false`: off) [on]."),
    ("--ui-messages-enabled", bool, "The console shows record contents [on]."),
    ("--ui-export-enabled", bool, "The console offers export of the rows it shows [on]."),
    ("--authorizer-enabled", bool, "Enforce ACLs (docs/security-acls.md) [off]."),
    ("--super-users", str, "Principals allowed everything, 'User:a;User:b' []."),
    ("--allow-everyone-if-no-acl-found", bool, "A resource without any ACL is open to all [off]."),
    ("--acl-refresh-interval-ms", click.IntRange(min=10, max=60_000), "ACL/quota cache poll period [200]."),
    ("--quotas-enabled", bool, "Enforce the client quotas of /v1/quotas, per broker [off]."),
    ("--audit-enabled", bool, "Record mutations and denials to the __audit topic [off]."),
    ("--audit-file", click.Path(dir_okay=False), "Also append audit records to this file [unset]."),
    ("--connect", bool, "Embed one tidelog connect worker (a switch; development) [off]."),
    ("--connect-worker-session-timeout-ms", click.IntRange(1000, 300_000),
     "A silent connect worker loses its tasks after this long [10000]."),
    ("--log-retention-check-interval-ms", click.IntRange(min=100), "Retention/compaction period [300000]."),
    ("--max-request-bytes", click.IntRange(min=1024), "Largest request body [16 MiB]."),
    ("--max-partitions-per-topic", click.IntRange(min=1), "Most partitions per topic [1000]."),
    ("--max-records-per-request", click.IntRange(min=1), "Most records per produce request [100000]."),
    ("--max-json-depth", click.IntRange(1, 200), "Nesting levels of a JSON key or value [64]."),
    ("--raw-produce-route", bool, "Plain produce requests skip FastAPI's per-request work [on]."),
    ("--batch-max-decompressed-bytes", click.IntRange(min=1024), "Binary batch decompressed bound [64 MiB]."),
    ("--fetch-max-wait-ms", click.IntRange(min=0), "Largest fetch max_wait_ms [30000]."),
    ("--fetch-max-records", click.IntRange(min=1), "Largest fetch max_records [100000]."),
    ("--fetch-max-bytes", click.IntRange(min=1), "Largest fetch max_bytes [64 MiB]."),
    ("--idempotency-key-window-ms", click.IntRange(min=0), "Idempotency-Key replay window [24 h]."),
    ("--max-inflight-requests", click.IntRange(min=1), "Requests served at once before 503 [1024]."),
    ("--max-parked-requests", click.IntRange(min=1), "Long polls waiting at once [10000]."),
    ("--max-parked-requests-per-client", click.IntRange(min=1), "Long polls waiting per client [1000]."),
    ("--max-sse-streams", click.IntRange(min=1), "Event streams open at once [2000]."),
    ("--max-sse-streams-per-client", click.IntRange(min=1), "Event streams open per client [100]."),
    ("--sse-max-buffer-bytes", click.IntRange(4096, 64 * 1024 * 1024), "Bytes a stream holds [256 KiB]."),
    ("--sse-send-timeout-ms", click.IntRange(min=100), "Drop a client reading nothing this long [30000]."),
    ("--overload-retry-after-s", click.IntRange(min=1), "Retry-After of an overload answer [1]."),
    ("--max-connections", click.IntRange(min=1), "Kafka's max.connections [10000]."),
    ("--max-connections-per-ip", click.IntRange(min=1), "Kafka's max.connections.per.ip [1000]."),
    ("--max-connections-per-ip-overrides", str, "Kafka's max.connections.per.ip.overrides, ip:n,… []."),
    ("--connections-max-idle-ms", click.IntRange(min=100), "Kafka's connections.max.idle.ms [60000]."),
    ("--request-header-timeout-ms", click.IntRange(min=100), "Deadline for a request's headers [10000]."),
    ("--request-body-min-rate-bytes-per-s", click.IntRange(min=0), "Slowest body accepted [1024]."),
    ("--request-body-grace-ms", click.IntRange(min=0), "Before the body rate applies [5000]."),
    ("--forwarded-allow-ips", str, "Proxies whose X-Forwarded-For is trusted (IPs, CIDRs, *) []."),
    ("--graceful-shutdown-timeout-s", click.FloatRange(min=0), "Wait for open requests on SIGTERM [10]."),
    ("--group-min-session-timeout-ms", click.IntRange(min=1), "Smallest group session timeout [6000]."),
    ("--group-max-session-timeout-ms", click.IntRange(min=1), "Largest group session timeout [1800000]."),
    ("--offsets-retention-minutes", click.IntRange(min=1), "Committed offsets kept for [10080]."),
    ("--num-partitions", click.IntRange(min=1), "Default partitions of a new topic [1]."),
    ("--log-retention-ms", click.IntRange(min=-1), "Default retention.ms [7 days]."),
    ("--log-retention-bytes", click.IntRange(min=-1), "Default retention.bytes [-1]."),
    ("--log-segment-bytes", click.IntRange(min=14), "Default segment.bytes [1 GiB]."),
    ("--log-segment-ms", click.IntRange(min=1), "Default segment.ms [7 days]."),
    ("--log-cleanup-policy", _POLICIES, "Default cleanup.policy [delete]."),
    ("--log-cleaner-delete-retention-ms", click.IntRange(min=0), "Default delete.retention.ms [1 day]."),
    ("--log-cleaner-min-cleanable-ratio", click.FloatRange(0, 1), "Default min.cleanable.dirty.ratio [0.5]."),
    ("--message-max-bytes", click.IntRange(min=0), "Default max.message.bytes [1048588]."),
    ("--log-message-timestamp-type", _TIMESTAMP_TYPES, "Default message.timestamp.type [CreateTime]."),
    ("--log-flush-interval-messages", click.IntRange(min=1), "Default flush.messages [unset]."),
    ("--log-flush-interval-ms", click.IntRange(min=0), "Default flush.ms [unset]."),
    ("--min-insync-replicas", click.IntRange(min=1), "Default min.insync.replicas [1]."),
    ("--cluster", bool, "Clustered mode (a switch): needs a PostgreSQL --catalog-url [off]."),
    ("--broker-session-timeout-ms", click.IntRange(min=100), "Fence a broker silent this long [9000]."),
    ("--broker-heartbeat-interval-ms", click.IntRange(min=10), "Broker heartbeat period [2000]."),
    ("--replica-lag-time-max-ms", click.IntRange(min=100), "Drop a lagging follower from the ISR [30000]."),
    ("--replica-fetch-wait-max-ms", click.IntRange(min=0), "Follower fetch long-poll wait [500]."),
)


def _settings_options(command: Any) -> Any:
    for flag, kind, help_text in reversed(SERVE_SETTINGS_OPTIONS):
        if kind is bool:
            # A switch: `--cluster` alone means true; `--cluster true|false` still works (an alias
            # kept for scripts written before it was a switch).
            option = click.option(flag, type=bool, default=None, is_flag=False, flag_value=True,
                                  metavar="[true|false]", help=help_text)
        else:
            option = click.option(flag, type=kind, default=None, help=help_text)
        command = option(command)
    return command


def _build_settings(options: dict[str, Any]) -> Any:
    from pydantic import ValidationError

    from app.config import Settings

    given = {name: value for name, value in options.items() if value is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:
        lines = [f"  {'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']}" for e in exc.errors()]
        raise click.UsageError("invalid settings:\n" + "\n".join(lines)) from exc


@click.command(
    epilog="Every flag above except --log-level and --access-log is also an environment variable: "
    "--data-dir is TIDELOG_DATA_DIR, --cors-allow-origins is TIDELOG_CORS_ALLOW_ORIGINS, and so on "
    "(docs/configuration.md). A flag wins over its variable."
)
@_settings_options
@click.option(
    "--log-level",
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    default="info",
    show_default=True,
    help="Log level of the broker and of uvicorn.",
)
@click.option("--access-log/--no-access-log", default=False, show_default=True, help="Log every request.")
def serve(log_level: str, access_log: bool, **options: Any) -> None:
    """Run the broker (uvicorn) until SIGTERM or Ctrl-C, then close every log cleanly.

    A start that cannot succeed (the port taken, the data directory used by another broker) is
    refused with one line on stderr and exit status 3, before anything is opened.
    """
    settings = _build_settings(options)
    _configure_logging(log_level)
    from app.serving import StartRefused, bind_listener, lock_data_dir

    try:
        data_lock = lock_data_dir(settings.data_dir)
        listener = bind_listener(settings.host, settings.port)
    except StartRefused as exc:
        click.echo(f"tidelog serve: {exc}", err=True)
        sys.exit(3)
    import uvicorn

    from app.main import begin_shutdown, create_app
    from app.server import ConnectionGuard, check_fd_budget, protocol_class
    from storage.dirlock import DirectoryInUseError, DirectoryLock

    try:
        # The storage engine's own lock on the directory, handed to the app (which would otherwise
        # take it itself); a second broker was already refused by ``lock_data_dir`` above.
        data_dir_lock = DirectoryLock.acquire(settings.data_dir)
    except DirectoryInUseError as exc:
        raise click.ClickException(str(exc)) from None
    except OSError as exc:
        detail = f"cannot use the data directory {settings.data_dir}: {exc.strerror}"
        raise click.ClickException(detail) from None
    settings = check_fd_budget(settings)  # RLIMIT_NOFILE against max_connections and the logs
    from app.security.authn.bootstrap import SUPER_KEY_FILE, secure_public_start

    try:
        secured, generated_key = secure_public_start(settings)
    except ValueError as exc:
        click.echo(f"tidelog serve: {exc}", err=True)
        sys.exit(3)
    if secured.auth_enabled and not settings.auth_enabled:
        logging.getLogger("tidelog.app").warning(
            "listening on %s, not a loopback address: authentication is on (--insecure-allow-public "
            "to serve without it)", settings.host)
    settings = secured
    if generated_key is not None:
        # Printed once, on the start that made it; the file keeps it (mode 0600).
        click.echo(f"A super user's API key was generated (also in {settings.data_dir / SUPER_KEY_FILE}, "
                   f"mode 0600):\n\n    {generated_key}\n\nUse it as: tidelog --api-key <key> ...\n")
    app = create_app(settings, data_dir_lock=data_dir_lock)
    logger = logging.getLogger("tidelog.app")

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            begin_shutdown(app)  # streams end now; /readyz answers 503 while requests drain
            super().handle_exit(sig, frame)

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:  # the lifespan succeeded and the socket is listening
                logger.info("broker %d ready on %s (data in %s)", settings.broker_id,
                            settings.effective_advertised_url, settings.data_dir)

    config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=access_log,
        lifespan="on",
        timeout_graceful_shutdown=settings.graceful_shutdown_timeout_s,  # type: ignore[arg-type]
        server_header=False,
        # Header deadline, body rate, connection limits and problem+json for malformed requests
        # (app/server.py); uvicorn's keep-alive timeout is connections.max.idle.ms.
        http=protocol_class(ConnectionGuard(settings)),
        timeout_keep_alive=settings.connections_max_idle_ms / 1000,  # type: ignore[arg-type]  # float s
        proxy_headers=False,  # create_app applies forwarded_allow_ips itself
        backlog=min(4096, settings.max_connections),
        # TLS for the listener; with a CA bundle, client certificates are required (mTLS).
        ssl_certfile=str(settings.ssl_certfile) if settings.ssl_certfile else None,
        ssl_keyfile=str(settings.ssl_keyfile) if settings.ssl_keyfile else None,
        ssl_ca_certs=str(settings.ssl_ca_certs) if settings.ssl_ca_certs else None,
        ssl_cert_reqs=ssl.CERT_REQUIRED if settings.ssl_ca_certs else ssl.CERT_NONE,
    )
    server = Server(config)
    try:
        server.run(sockets=[listener])
    finally:
        listener.close()
        data_lock.release()
    if not server.started:
        # The lifespan failed (catalog unreachable, data dir unwritable…): uvicorn logged why.
        sys.exit(3)


def _configure_logging(log_level: str) -> None:
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    # Alembic announces each of its autogenerate plugins at INFO on every start; only its
    # "Running upgrade" lines say something about this broker.
    logging.getLogger("alembic.runtime.plugins").setLevel(max(logging.WARNING, logging.root.level))


@click.command()
@click.option("--catalog-url", type=str, default=None, help="SQLAlchemy URL of the catalog.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None, help="Used for the default URL.")
@click.option("--revision", default="head", show_default=True, help="Alembic revision to upgrade to.")
def migrate(catalog_url: str | None, data_dir: str | None, revision: str) -> None:
    """Apply the catalog's migrations (the broker also does this at start-up)."""
    settings = _build_settings({"catalog_url": catalog_url, "data_dir": data_dir})
    from sqlalchemy.exc import SQLAlchemyError

    from app.catalog import Catalog

    catalog = Catalog(settings.effective_catalog_url)
    try:
        catalog.migrate(revision)
        click.echo(f"catalog at revision {catalog.current_revision()}")
    except SQLAlchemyError as exc:
        raise click.ClickException(f"cannot migrate the catalog: {exc}") from exc
    finally:
        catalog.close()


@click.command()
@click.option(
    "--spec-version",
    type=click.Choice(["3.1", "3.2"]),
    default="3.1",
    show_default=True,
    help="3.1: what code generators read (openapi/openapi.json); 3.2: the same with itemSchema "
    "for streamed bodies (openapi/openapi-3.2.json).",
)
def openapi(spec_version: str) -> None:
    """Print the broker's OpenAPI document (JSON) to stdout."""
    from app.config import Settings
    from app.main import create_app
    from app.openapi import openapi_3_2

    spec = create_app(Settings()).openapi()
    if spec_version == "3.2":
        spec = openapi_3_2(spec)
    click.echo(json.dumps(spec, indent=2, ensure_ascii=False))
