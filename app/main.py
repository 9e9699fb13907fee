"""``create_app(settings)``: the broker's FastAPI application and its lifespan.

The lifespan opens the catalog and migrates it, starts the Broker (which opens every partition log),
starts the retention scheduler, and marks the app ready; on the way out (SIGTERM through uvicorn, or
a test leaving its client) it stops them in reverse order in ``finally``, so every log is closed with
its clean-shutdown marker. Nothing is created at import time: tests build as many apps as they like,
each with its own settings and data directory.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from anyio import to_thread
from fastapi import FastAPI

from app.accept import AcceptMiddleware
from app.api_docs import install_api_docs
from app.broker.memory import give_back_memory_soon
from app.broker.storage_health import StorageHealth
from app.catalog import Catalog
from app.catalog.db import sqlite_directory
from app.config import Settings
from app.cors import CorsPolicy, install_cors
from app.errors import install_error_handlers
from app.limits import RequestLimits
from app.metrics import Metrics
from app.middleware import LimitsMiddleware, MetricsMiddleware, operation_id
from app.openapi import install_openapi
from app.scheduler import RetentionScheduler
from app.security.authorizer_middleware import Security, SecurityMiddleware
from app.topics import TopicService
from storage.dirlock import DirectoryLock

if TYPE_CHECKING:
    from app.broker import Broker
    from app.cluster.manager import ClusterManager
    from app.groups.service import GroupService
    from app.security.authn import Authenticator
    from tidelog.connect.worker import Worker

__all__ = ["begin_shutdown", "create_app", "operation_id"]

logger = logging.getLogger("tidelog.app")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tidelog")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
        return "0.0.0"


def _include_routers(app: FastAPI) -> None:
    # One router per resource. Registering a new one is a one-line addition here.
    from app.routes import (
        acls,
        cluster,
        connect,
        connect_workers,
        events,
        fetch_many,
        groups,
        health,
        keys,
        log_dirs,
        offsets,
        producers,
        quotas,
        raw,
        records,
        sessions,
        topics,
        users,
    )
    from app.ui import router as ui_router

    for router in (health.router, cluster.router, log_dirs.router, topics.router, records.router,
                   fetch_many.router, offsets.router, producers.router, groups.router, events.router,
                   keys.router, users.router, sessions.router, acls.router, quotas.router, connect.router,
                   connect_workers.router):
        app.include_router(router)
    if app.state.settings.ui_enabled:
        app.include_router(ui_router)
    if app.state.settings.raw_produce_route:
        # Ahead of the FastAPI produce routes, which serve what the raw ones do not take (app/routes/raw.py).
        app.router.routes[0:0] = raw.raw_produce_routes()


def begin_shutdown(app: FastAPI) -> None:
    """Mark the app as stopping: ``/readyz`` answers 503 and ``app.state.stopping`` (an
    ``asyncio.Event``) is set, so endless streams (SSE) end now instead of holding the shutdown for
    the whole grace period. Safe to call from a signal handler (``tidelog serve`` does on SIGTERM)."""
    state = app.state
    state.phase = "stopping"
    loop: asyncio.AbstractEventLoop | None = getattr(state, "loop", None)
    stopping: asyncio.Event | None = getattr(state, "stopping", None)
    if loop is not None and stopping is not None and not loop.is_closed():
        loop.call_soon_threadsafe(stopping.set)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    state = app.state
    settings: Settings = state.settings
    state.phase = "starting"
    state.loop = asyncio.get_running_loop()
    state.stopping = asyncio.Event()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # Before anything touches the data directory: two brokers must never share it.
    held: DirectoryLock | None = state.data_dir_lock
    own_lock = held is None
    data_dir_lock = DirectoryLock.acquire(settings.data_dir) if held is None else held
    try:
        catalog = Catalog(settings.effective_catalog_url)
    except BaseException:
        if own_lock:
            data_dir_lock.release()
        raise
    state.catalog = catalog
    broker: Broker | None = None
    scheduler: RetentionScheduler | None = None
    group_service: GroupService | None = None
    cluster: ClusterManager | None = None
    authenticator: Authenticator | None = None
    connect_worker: Worker | None = None
    metrics: Metrics = state.metrics
    security: Security = state.security
    security_started = False
    try:
        await to_thread.run_sync(catalog.migrate)
        from app.security.authn import Authenticator
        from app.security.authn.admin import CredentialAdmin

        authenticator = Authenticator(settings, catalog)
        await authenticator.start()
        state.authenticator = authenticator
        state.credential_admin = CredentialAdmin(authenticator)
        from app.broker import Broker
        from app.broker.replication import Replication, SingleNode

        replication: Replication = SingleNode()
        if settings.cluster:  # clustered mode (docs/cluster.md): membership, leadership, replication
            from app.cluster.manager import ClusterManager

            cluster = replication = ClusterManager(settings, catalog)
        broker = Broker(settings, catalog, state.storage_health, replication)
        await broker.start()
        state.broker = broker
        state.topic_service = TopicService(settings, catalog, broker, replication)
        if cluster is not None:
            await cluster.start(broker)
            state.cluster = cluster
        metrics.set_partition_source(broker.partition_sizes)
        from app.groups.service import GroupService

        group_service = GroupService(settings, catalog, broker)
        await group_service.start()
        state.group_service = group_service
        security_started = True
        await security.start(catalog, broker, state.topic_service)
        from app.connect import ConnectService

        state.connect_service = ConnectService(
            catalog, worker_session_timeout_ms=settings.connect_worker_session_timeout_ms
        )
        scheduler = RetentionScheduler(broker, metrics, interval_ms=settings.log_retention_check_interval_ms)
        state.retention_scheduler = scheduler
        scheduler.start()
        state.phase = "ready"
        logger.info("broker %d started, data in %s", settings.broker_id, settings.data_dir)
        if settings.connect:  # `tidelog serve --connect`: one worker in this process, over HTTP
            from tidelog.connect.worker import Worker

            worker_id = f"broker-{settings.broker_id}"
            connect_worker = Worker(settings.effective_advertised_url, worker_id=worker_id)
            connect_worker.start_background()
        yield
    finally:
        state.phase = "stopping"
        state.stopping.set()
        metrics.set_partition_source(None)
        try:
            if connect_worker is not None:
                await connect_worker.stop()
            if scheduler is not None:
                await scheduler.stop()
            if security_started:
                await security.close()
            if group_service is not None:
                await group_service.close()
            if cluster is not None:
                await cluster.close()
            if broker is not None:
                await broker.close()
            if authenticator is not None:
                await authenticator.close()
        finally:
            catalog.close()
            if own_lock:
                data_dir_lock.release()
            state.phase = "stopped"
            logger.info("broker %d stopped", settings.broker_id)


def _storage_health(settings: Settings) -> StorageHealth:
    """The data directory and, when it is elsewhere, the SQLite catalog's directory."""
    directories = [settings.data_dir]
    catalog_dir = sqlite_directory(settings.effective_catalog_url)
    if catalog_dir is not None:
        directories.append(catalog_dir)
    return StorageHealth(directories)


def create_app(settings: Settings | None = None, *, data_dir_lock: DirectoryLock | None = None) -> FastAPI:
    """The broker application for ``settings`` (default: from ``TIDELOG_*`` variables).

    ``data_dir_lock`` is the lock on ``settings.data_dir`` when the caller took it already
    (``tidelog serve`` does, to refuse a second broker with one line before uvicorn starts) and
    keeps it for the process's life; otherwise the lifespan takes it and releases it at the end.
    """
    settings = settings if settings is not None else Settings()
    metrics = Metrics()
    app = FastAPI(
        title="tidelog",
        version=_version(),
        summary="An HTTP-first event-streaming broker: partitioned, durable commit logs over REST and SSE.",
        lifespan=_lifespan,
        generate_unique_id_function=operation_id,
        # /docs and /redoc are served by app.api_docs with their assets from the broker, not a CDN.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.storage_health = _storage_health(settings)
    app.state.data_dir_lock = data_dir_lock
    app.state.phase = "created"
    app.state.cluster = None
    security = Security(settings)
    app.state.security = security
    install_error_handlers(app)
    _include_routers(app)
    from app.cluster.http import install_cluster_handlers

    install_cluster_handlers(app)  # internal replication endpoints (not in the spec), leader redirects
    install_openapi(app)
    install_api_docs(app)
    limits = RequestLimits(
        max_inflight=settings.max_inflight_requests,
        max_parked=settings.max_parked_requests,
        max_parked_per_client=settings.max_parked_requests_per_client,
        max_streams=settings.max_sse_streams,
        max_streams_per_client=settings.max_sse_streams_per_client,
        on_streams_idle=give_back_memory_soon,
    )
    app.state.limits = limits
    app.state.authenticator = None  # the lifespan sets it once the catalog is open
    from app.security.authn import AuthenticationMiddleware

    # Innermost: ACLs, quotas and audit see the principal authentication left in the scope.
    app.add_middleware(SecurityMiddleware, security=security)
    # Inside the limits (an unauthenticated flood is refused like any other), outside every route
    # and the authorizer.
    app.add_middleware(AuthenticationMiddleware, settings=settings)
    metrics.parked_requests.set_function(lambda: limits.parked.total)
    metrics.sse_streams.set_function(lambda: limits.streams.total)
    # Added last = outermost: metrics see every answer, including the limits' refusals.
    app.add_middleware(
        LimitsMiddleware,
        limits=limits,
        max_body_bytes=settings.max_request_bytes,
        retry_after_s=settings.overload_retry_after_s,
        metrics=metrics,
    )
    app.add_middleware(AcceptMiddleware)  # 406 before a request takes a slot of any pool
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    install_cors(app, CorsPolicy.from_settings(settings))  # outermost: refusals carry CORS headers too
    # Outermost of all: the client address every limit sees is the forwarded one when the peer is a
    # trusted proxy (forwarded_allow_ips), the peer's otherwise.
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.forwarded_allow_ips)
    return app
