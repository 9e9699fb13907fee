"""``ClientBase``: what ``Client`` and ``AsyncClient`` share, with no I/O of its own.

The URL, timeouts, retry policy, the one credential (``tidelog._core.credentials``), the leader
cache and its ``Router``, the httpx options both shells open their connection pool with, and the
request building of the endpoint methods (``_api``'s ``Call`` objects). The shells add the sending.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from tidelog import _api
from tidelog._core.connection import USER_AGENT, CallState, RetryPolicy, Router, resolve_url, timeout_for
from tidelog._core.credentials import resolve_auth
from tidelog._leaders import LeaderCache
from tidelog._records import OutgoingRecord, check_format, encode_record
from tidelog._types import ProduceResult

__all__ = ["ClientBase"]


class ClientBase:
    """What both shells share: the URL, timeouts, retry policy, credentials, leader routing, and the
    request building of their endpoint methods."""

    def __init__(
        self,
        url: str | None,
        timeout: float,
        retries: int,
        backoff_ms: int,
        headers: Mapping[str, str] | None,
        *,
        api_key: str | None,
        token: str | None,
        username: str | None,
        password: str | None,
        auth: httpx.Auth | tuple[str, str] | None,
        basic: tuple[str, str] | None = None,
        bearer_token: str | None = None,
    ) -> None:
        self.url = resolve_url(url)
        self.timeout = timeout
        self.retry = RetryPolicy(retries=retries, backoff_ms=backoff_ms)
        self._headers = {"User-Agent": USER_AGENT, **(headers or {})}
        self._auth = resolve_auth(
            api_key=api_key, token=token, username=username, password=password, auth=auth,
            basic=basic, bearer_token=bearer_token,
        )
        self.leaders = LeaderCache()
        self._router = Router(self.url, self.leaders)

    def _call_state(self, call: _api.Call[Any], retries: int | None) -> CallState:
        attempts = 1 + (self.retry.retries if retries is None else retries)
        return CallState(call, self._router, self.retry, attempts)

    def _request_options(self, call: _api.Call[Any], timeout: float | None) -> dict[str, Any]:
        return {
            "json": call.json,
            "headers": call.headers or None,
            "timeout": timeout_for(call, self.timeout, timeout),
            "follow_redirects": False,
        }

    def _http_options(self, max_connections: int) -> dict[str, Any]:
        return {
            "base_url": self.url,
            "timeout": self.timeout,
            "headers": self._headers,
            "auth": self._auth,
            "limits": httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
        }

    @staticmethod
    def _encode(
        records: Sequence[Any],
        key_format: str,
        value_format: str,
    ) -> tuple[list[OutgoingRecord], list[int | None]]:
        out: list[OutgoingRecord] = []
        partitions: list[int | None] = []
        for item in records:
            rec = item if isinstance(item, Mapping) else {"value": item}
            out.append(
                encode_record(
                    key=rec.get("key"),
                    value=rec.get("value"),
                    headers=rec.get("headers"),
                    timestamp=rec.get("timestamp"),
                    key_format=key_format,
                    value_format=value_format,
                )
            )
            part = rec.get("partition")
            partitions.append(part if isinstance(part, int) else None)
        return out, partitions

    def _produce_call(
        self,
        topic: str,
        records: Sequence[Any],
        partition: int | None,
        acks: int | str,
        key_format: str,
        value_format: str,
        idempotency_key: str | None,
    ) -> _api.Call[ProduceResult]:
        out, parts = self._encode(
            records, check_format(key_format, "key_format"), check_format(value_format, "value_format")
        )
        return _api.produce(
            topic,
            out,
            partition=partition,
            acks=_api.normalize_acks(acks),
            key_format=key_format,
            value_format=value_format,
            idempotency_key=idempotency_key,
            record_partitions=parts if partition is None else None,
        )
