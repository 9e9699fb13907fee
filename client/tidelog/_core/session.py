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
from tidelog._errors import NotAcceptableError, NotLeaderError, UnsupportedMediaTypeError
from tidelog._leaders import LeaderCache
from tidelog._records import OutgoingRecord, check_format, encode_record
from tidelog._types import FetchResult, ProduceResult, TopicPartition

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
        batch_format: bool = True,
        basic: tuple[str, str] | None = None,
        bearer_token: str | None = None,
    ) -> None:
        self.url = resolve_url(url)
        # Produce and fetch in the binary batch format (docs/records.md) until the broker answers
        # 415/406 for it; then JSON for the rest of this client's life.
        self.batch_format = batch_format
        self.timeout = timeout
        self.retry = RetryPolicy(retries=retries, backoff_ms=backoff_ms)
        self._headers = {"User-Agent": USER_AGENT, **(headers or {})}
        self._auth = resolve_auth(
            api_key=api_key, token=token, username=username, password=password, auth=auth,
            basic=basic, bearer_token=bearer_token,
        )
        self.leaders = LeaderCache()
        self._router = Router(self.url, self.leaders)

    def _fetch_call(
        self,
        topic: str,
        partition: int,
        offset: int,
        *,
        max_records: int | None,
        max_bytes: int | None,
        max_wait_ms: int | None,
        min_bytes: int | None,
        key_format: str | None,
        value_format: str | None,
        header_format: str | None,
    ) -> _api.Call[FetchResult]:
        """The binary fetch while the broker takes it and no format conversion is asked, else JSON."""
        binary = self.batch_format and key_format in (None, "binary") and value_format in (None, "binary")
        build = _api.fetch_batches if binary else _api.fetch
        return build(
            topic,
            partition,
            offset,
            max_records=max_records,
            max_bytes=max_bytes,
            max_wait_ms=max_wait_ms,
            min_bytes=min_bytes,
            key_format=key_format,
            value_format=value_format,
            header_format=header_format,
        )

    def _fetch_many_calls(
        self, offsets: Mapping[TopicPartition, int], options: Mapping[str, Any]
    ) -> list[_api.Call[dict[TopicPartition, FetchResult | Exception]]]:
        """One ``POST /v1/fetch`` per broker: the partitions grouped by the leader the client knows
        (those it does not know go to its own broker), as Kafka's Fetcher groups by leader."""
        groups: dict[str | None, dict[TopicPartition, int]] = {}
        for tp, offset in offsets.items():
            groups.setdefault(self.leaders.leader_url(tp.topic, tp.partition), {})[tp] = offset
        return [_api.fetch_many(group, binary=self.batch_format, **options) for group in groups.values()]

    def _fetch_many_retry(
        self, results: Mapping[TopicPartition, FetchResult | Exception], offsets: Mapping[TopicPartition, int]
    ) -> dict[TopicPartition, int]:
        """The partitions to ask again at once: those answered "not the leader here" with the leader
        named (KIP-951), whose leader the client now knows."""
        again: dict[TopicPartition, int] = {}
        for tp, result in results.items():
            if isinstance(result, NotLeaderError):
                body = result.body if isinstance(result.body, Mapping) else {}
                url, leader_id = body.get("leader_url"), body.get("leader_id")
                if isinstance(url, str) and url:
                    self.leaders.learn(
                        tp.topic, tp.partition, url, leader_id if isinstance(leader_id, int) else None
                    )
                    again[tp] = offsets[tp]
        return again

    def _format_refused(self, call: _api.Call[Any], error: Exception) -> bool:
        """True when ``error`` is a broker refusing the binary format of ``call``: use JSON from now on."""
        binary = call.raw or call.content is not None
        if binary and isinstance(error, NotAcceptableError | UnsupportedMediaTypeError):
            self.batch_format = False
            return True
        return False

    def _call_state(self, call: _api.Call[Any], retries: int | None) -> CallState:
        attempts = 1 + (self.retry.retries if retries is None else retries)
        return CallState(call, self._router, self.retry, attempts)

    def _request_options(self, call: _api.Call[Any], timeout: float | None) -> dict[str, Any]:
        if call.content is not None:
            return {
                "content": call.content,
                "headers": call.headers or None,
                "timeout": timeout_for(call, self.timeout, timeout),
                "follow_redirects": False,
            }
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
