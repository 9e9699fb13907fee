"""``LeaderCache``: which broker leads each partition, as the client last learned it.

In clustered mode every partition has a leader; any broker answers a produce (or a fetch it cannot
serve) for a partition led elsewhere with ``307 Temporary Redirect`` to the leader, whose body
(problem+json, error_code 50304) names ``leader_id`` and ``leader_url``. Following each redirect
costs a round trip, so the client remembers the leader (Kafka clients' metadata cache):

- from topic metadata (``GET /v1/topics/{topic}``: each partition's ``leader`` broker id) joined
  with the brokers' URLs (``GET /v1/cluster``), which ``Producer`` loads before its first batch;
- from every redirect it follows (the body names the leader).

An entry is dropped when its broker cannot be reached or answers 50304 itself (the leader moved):
the next request goes to the client's own URL again, whose broker redirects to the new leader.
On a single broker the cache stays empty: requests go to the client's URL as before.

Thread-safe: a ``Producer`` sends from several threads through one ``Client``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["LeaderCache"]


class LeaderCache:
    """Partition → leader URL, and broker id → URL, as last learned from metadata or redirects."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._leaders: dict[tuple[str, int], str] = {}
        self._brokers: dict[int, str] = {}
        self._alive: set[int] = set()

    def leader_url(self, topic: str, partition: int) -> str | None:
        """Return the URL of the partition's leader, or None to ask the client's own broker."""
        with self._lock:
            return self._leaders.get((topic, partition))

    def broker_urls(self) -> dict[int, str]:
        """Return the known brokers' URLs by broker id (from ``/v1/cluster`` and redirects)."""
        with self._lock:
            return dict(self._brokers)

    def alive_broker_urls(self) -> list[str]:
        """Return the URLs of the brokers ``/v1/cluster`` last called alive, by broker id."""
        with self._lock:
            return [url for broker_id, url in sorted(self._brokers.items()) if broker_id in self._alive]

    def learn(self, topic: str, partition: int, url: str, leader_id: int | None = None) -> None:
        """Remember that ``url`` (broker ``leader_id`` if known) leads the partition."""
        url = url.rstrip("/")
        with self._lock:
            self._leaders[(topic, partition)] = url
            if leader_id is not None:
                self._brokers[leader_id] = url

    def forget(self, topic: str, partition: int) -> None:
        """Drop the partition's leader (it moved, or its broker is unreachable)."""
        with self._lock:
            self._leaders.pop((topic, partition), None)

    def forget_url(self, url: str) -> None:
        """Drop every partition led by the broker at ``url`` (it cannot be reached)."""
        url = url.rstrip("/")
        with self._lock:
            for key in [k for k, v in self._leaders.items() if v == url]:
                del self._leaders[key]

    def update_brokers(self, cluster: Mapping[str, Any]) -> None:
        """Take the brokers' URLs and states from a ``GET /v1/cluster`` answer.

        A single broker is not a cluster: its advertised URL may not be the one the client reaches
        it at (a proxy, a mapped port), and it leads everything anyway, so nothing is learned.
        """
        brokers = cluster.get("brokers")
        if not isinstance(brokers, list) or len(brokers) < 2:
            return
        with self._lock:
            for broker in brokers:
                if not isinstance(broker, Mapping):
                    continue
                broker_id, url = broker.get("broker_id"), broker.get("url")
                if isinstance(broker_id, int) and isinstance(url, str) and url:
                    self._brokers[broker_id] = url.rstrip("/")
                    if broker.get("state") == "fenced":
                        self._alive.discard(broker_id)
                    else:
                        self._alive.add(broker_id)

    def update_topic(self, topic: str, leaders: Iterable[tuple[int, int | None]]) -> None:
        """Take each partition's leader broker id from topic metadata: ``(partition, leader)``.

        A partition without a leader (an election in progress), or whose leader's URL is not known,
        is dropped, so its requests go to the client's own broker and wait there for the election;
        so is one whose leader ``/v1/cluster`` called fenced (its successor is being elected).
        """
        with self._lock:
            for partition, leader in leaders:
                url = self._brokers.get(leader) if leader in self._alive else None
                if url is None:
                    self._leaders.pop((topic, partition), None)
                else:
                    self._leaders[(topic, partition)] = url

    def clear(self) -> None:
        with self._lock:
            self._leaders.clear()
