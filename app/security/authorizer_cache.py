"""Each broker's copy of the catalog's ACLs and quotas, kept fresh by polling one counter.

Every change to the ``acls`` or ``client_quotas`` tables bumps ``security_version`` in the same
transaction (``app.catalog.acls``). :class:`SecurityCache` reads that integer every
``acl_refresh_interval_ms`` (200 ms by default) off the event loop and reloads both tables only when
it moved, so a binding created or deleted on one broker is enforced by every broker of the cluster
within about a second (a poll, a reload, and the catalog's round trips). A change made through this
broker's own ``/v1/acls`` or ``/v1/quotas`` is reloaded before the answer is sent.

A failed poll (the catalog unreachable for a moment) keeps the last snapshot: the rules in force do
not fall open, and the next poll tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from anyio import to_thread

from app.catalog import Catalog
from app.catalog.acls import ClientQuota, load_security, security_version
from app.security.authorizer import AclSnapshot

__all__ = ["SecurityCache"]

logger = logging.getLogger("tidelog.security")


class SecurityCache:
    """The current :class:`AclSnapshot` and quota entries; ``snapshot`` is what the authorizer reads."""

    def __init__(self, *, refresh_interval_ms: int = 200) -> None:
        self._catalog: Catalog | None = None
        self._interval_s = refresh_interval_ms / 1000
        self._snapshot = AclSnapshot(())
        self.quotas: dict[str, ClientQuota] = {}
        self._task: asyncio.Task[None] | None = None
        self._listeners: list[Callable[[], None]] = []

    def snapshot(self) -> AclSnapshot:
        """The bindings in force now."""
        return self._snapshot

    @property
    def version(self) -> int:
        return self._snapshot.version

    def on_change(self, listener: Callable[[], None]) -> None:
        """Calls ``listener`` after each reload (the quota manager re-reads its limits)."""
        self._listeners.append(listener)

    def _read(self) -> Catalog:
        if self._catalog is None:
            raise RuntimeError("the security cache has not been started")
        return self._catalog

    def load(self) -> None:
        """Reads the tables now (blocking; call off the event loop)."""
        with self._read().read() as session:
            version, bindings, quotas = load_security(session)
        self._snapshot = AclSnapshot(bindings, version)
        self.quotas = {quota.principal: quota for quota in quotas}
        for listener in self._listeners:
            listener()

    def _poll(self) -> None:
        if self._catalog is None:  # not started: authorization and quotas are off
            return
        with self._catalog.read() as session:
            version = security_version(session)
        if version != self._snapshot.version:
            self.load()

    async def refresh(self) -> None:
        """Reloads at once when the counter moved (after a change made through this broker)."""
        await to_thread.run_sync(self._poll)

    async def start(self, catalog: Catalog) -> None:
        self._catalog = catalog
        await to_thread.run_sync(self.load)
        self._task = asyncio.create_task(self._run(), name="tidelog-acl-cache")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await to_thread.run_sync(self._poll)
            except Exception:  # the catalog unreachable: keep the rules in force, retry next time
                logger.warning("could not refresh ACLs and quotas from the catalog", exc_info=True)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
