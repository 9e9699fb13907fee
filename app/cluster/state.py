"""What the parts of a broker's cluster membership share: its view of the cluster and its timings.

One :class:`ClusterState` per broker, built by ``ClusterManager`` and handed to each part
(``lifecycle``, ``controller_loop``, ``partition``, ``fetcher``). Every field is read and written on
the event loop only; catalog transactions run in worker threads through :meth:`ClusterState.begin`
and return values, they do not touch the fields.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import httpx
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.catalog import Catalog
from app.catalog.cluster import BrokerRow
from app.cluster.replica import Replica
from app.config import Settings

if TYPE_CHECKING:
    from app.broker import Broker

__all__ = ["INTERNAL_PREFIX", "ClusterState"]

#: Where the broker-to-broker endpoints live (``app/cluster/http.py``).
INTERNAL_PREFIX = "/internal/v1/replication"


class ClusterState:
    """This broker's view of the cluster (see the module docstring)."""

    def __init__(self, settings: Settings, catalog: Catalog) -> None:
        self.settings = settings
        self.catalog = catalog
        self._broker: Broker | None = None
        self.me = settings.broker_id
        self.url = settings.effective_advertised_url
        #: This broker's replicas by (topic, partition), in the role the catalog last gave them.
        self.replicas: dict[tuple[str, int], Replica] = {}
        #: Every registered broker, as of the last metadata read.
        self.brokers: dict[int, BrokerRow] = {}
        self.controller_id: int | None = None
        #: min.insync.replicas overrides by topic.
        self.min_insync: dict[str, int] = {}
        #: Fenced until the first heartbeat says otherwise; a fenced broker accepts no writes.
        self.fenced = True
        #: When this broker's last heartbeat succeeded (monotonic seconds).
        self.last_heartbeat = 0.0
        self.session_s = settings.broker_session_timeout_ms / 1000
        self.heartbeat_s = settings.broker_heartbeat_interval_ms / 1000
        self.lag_max_s = settings.replica_lag_time_max_ms / 1000
        self.refresh_s = max(0.05, min(self.heartbeat_s / 2, 0.5))
        #: Set to re-read leadership now rather than at the next tick of the metadata loop.
        self.refresh_wanted = asyncio.Event()
        self.closing = False
        #: The HTTP client of broker-to-broker calls (open between start and close).
        self.client: httpx.AsyncClient | None = None

    def bind(self, broker: Broker) -> None:
        """The Broker whose partitions these are (given when the manager starts: the Broker is
        built with the manager as its replication, so it exists only after the manager)."""
        self._broker = broker

    @property
    def broker(self) -> Broker:
        if self._broker is None:
            raise RuntimeError("the cluster manager has not started")
        return self._broker

    def http(self) -> httpx.AsyncClient:
        """The broker-to-broker HTTP client (only between the manager's start and close)."""
        if self.client is None:
            raise RuntimeError("the cluster manager has not started")
        return self.client

    def url_of(self, broker_id: int | None) -> str | None:
        """The advertised URL of another broker (None for this one or one not known)."""
        if broker_id is None or broker_id == self.me:
            return None
        row = self.brokers.get(broker_id)
        return None if row is None else row.url

    def min_insync_of(self, topic: str) -> int:
        return self.min_insync.get(topic, self.settings.min_insync_replicas)

    def session_lapsed(self) -> bool:
        """True while this broker may not act as a leader: fenced, or its session unconfirmed."""
        return self.fenced or time.monotonic() - self.last_heartbeat > self.session_s

    @contextlib.contextmanager
    def begin(self) -> Iterator[Session]:
        """A catalog transaction (worker threads) that a paused broker cannot hold for long.

        On PostgreSQL it sets ``lock_timeout`` and ``idle_in_transaction_session_timeout``, so a
        broker stopped (SIGSTOP) inside one cannot hold a row lock the others wait for.
        """
        with self.catalog.begin() as session:
            if self.catalog.dialect == "postgresql":
                idle = max(1000, int(self.settings.broker_session_timeout_ms))
                session.execute(text("SET LOCAL lock_timeout = '2000ms'"))
                session.execute(text(f"SET LOCAL idle_in_transaction_session_timeout = '{idle}ms'"))
            yield session
