"""Verified credentials, cached so argon2 and RS256 are not paid per request.

Keyed by HMAC(pepper, credential): the cache never holds a credential itself, and a memory dump
of it gives nothing to replay. An entry lives until min(the credential's own expiry, now +
``auth_cache_ttl_s``); ``clear`` drops every entry at once (the revocation clock moved). Bounded:
past ``max_entries`` the oldest entries go first.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from app.security.principal import Principal

__all__ = ["CredentialCache"]


class CredentialCache:
    def __init__(
        self, *, ttl_s: float, max_entries: int = 100_000, clock: Callable[[], float] = time.time
    ) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[bytes, tuple[Principal, float]] = OrderedDict()

    def get(self, digest: bytes) -> Principal | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        principal, until = entry
        if self._clock() >= until:
            del self._entries[digest]
            return None
        return principal

    def put(self, digest: bytes, principal: Principal, *, expires_at_s: float | None = None) -> None:
        """Caches ``principal`` until min(``expires_at_s`` (epoch seconds), now + ttl)."""
        if self.ttl_s <= 0:
            return
        until = self._clock() + self.ttl_s
        if expires_at_s is not None:
            until = min(until, expires_at_s)
        self._entries[digest] = (principal, until)
        self._entries.move_to_end(digest)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
