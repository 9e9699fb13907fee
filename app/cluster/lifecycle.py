"""The broker's session with the catalog (Kafka's BrokerLifecycleManager): registration, heartbeats,
fencing, and stepping out while this broker's writes fail.

Every ``broker.heartbeat.interval.ms`` the loop records a heartbeat (learning whether the controller
has fenced this broker), then gives the controller loop its pass. While this broker's writes fail
(``Broker.storage_health``: a full disk, a failed fsync) it stops heartbeating and expires its own
session at once, so the controller moves its leaderships and drops it from every ISR (Kafka's
offline log directory, KIP-112); once writes work again it heartbeats and comes back as any
returning broker does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from app.catalog import cluster as cluster_catalog
from app.cluster.state import ClusterState

__all__ = ["BrokerLifecycle"]

logger = logging.getLogger("tidelog.cluster")


class BrokerLifecycle:
    """Registration and heartbeats of one broker (see the module docstring)."""

    def __init__(self, state: ClusterState) -> None:
        self.state = state
        #: Which registration of this broker id this process holds (a newer one fences it out).
        self.incarnation = 0
        self._storage_offline = False

    # -- catalog transactions (worker threads) ------------------------------------------------------

    def register(self) -> int:
        with self.state.begin() as session:
            self.incarnation = cluster_catalog.register_broker(
                session, broker_id=self.state.me, url=self.state.url
            )
            return self.incarnation

    def expire(self) -> None:
        """Tell the controller this broker is gone (its heartbeat expired) without waiting it out."""
        with self.state.begin() as session:
            cluster_catalog.expire_broker(session, broker_id=self.state.me, incarnation=self.incarnation)

    def _heartbeat(self) -> bool | None:
        with self.state.begin() as session:
            return cluster_catalog.heartbeat(session, broker_id=self.state.me, incarnation=self.incarnation)

    # -- the loop -----------------------------------------------------------------------------------

    async def run(self, control: Callable[[], bool]) -> None:
        """Heartbeat, then ``control`` (the controller loop's pass, in a worker thread; True when it
        changed something, which asks for a metadata refresh), once per heartbeat interval."""
        state = self.state
        while True:
            started = time.monotonic()
            try:
                if await self.offline_storage():
                    await asyncio.sleep(state.heartbeat_s)
                    continue
                fenced = await asyncio.to_thread(self._heartbeat)
                if fenced is None:
                    logger.error("broker id %d was registered by another process: stepping down", state.me)
                    state.fenced = True
                else:
                    if fenced != state.fenced:
                        logger.info("broker %d is %s", state.me, "fenced" if fenced else "unfenced")
                    state.fenced = fenced
                    state.last_heartbeat = started
                if await asyncio.to_thread(control):
                    state.refresh_wanted.set()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("heartbeat/controller pass of broker %d failed", state.me, exc_info=True)
            await asyncio.sleep(max(0.0, state.heartbeat_s - (time.monotonic() - started)))

    async def offline_storage(self) -> bool:
        """True while this broker's writes fail: it gives up leaderships and ISRs (KIP-112)."""
        state = self.state
        health = state.broker.storage_health
        if health.ready:
            if self._storage_offline:
                self._storage_offline = False
                logger.warning("broker %d: writes work again; rejoining the cluster", state.me)
            return False
        if not self._storage_offline:
            self._storage_offline = True
            logger.error(
                "broker %d: writes fail (%s); giving up its leaderships and ISRs until they work again",
                state.me, health.reason(),
            )
            await asyncio.to_thread(self.expire)
        state.fenced = True
        return True
