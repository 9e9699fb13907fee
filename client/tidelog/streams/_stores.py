"""State stores: key-value, window and versioned stores, each logging its changes for a changelog.

A store is an in-memory dict that remembers which keys changed since the last ``drain_changes()``;
the task turns those into changelog records (the store's compacted topic
``<application-id>-<store>-changelog``) and, after a commit, flushes the same state to its local
SQLite file (``_local.py``). Restore is ``restore(key, value)`` for every changelog record in order.

Keys inside a store are Python values as the DSL sees them; in the changelog and the SQLite file they
are their canonical JSON text (``encode_key``), so a window store's ``(key, start)`` and a plain key
round-trip alike.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterator
from typing import Any

__all__ = ["KeyValueStore", "Store", "VersionedStore", "decode_key", "encode_key"]


def encode_key(key: Any) -> str:
    """The canonical text of a store key (sorted JSON, tuples as lists)."""
    return json.dumps(key, sort_keys=True, separators=(",", ":"))


def decode_key(text: str) -> Any:
    value = json.loads(text)
    return _tuples(value)


def _tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


class Store:
    """The base of every store: a name and the set of keys changed since the last drain."""

    kind = "kv"

    def __init__(self, name: str, *, logged: bool = True) -> None:
        self.name = name
        self.logged = logged
        self._dirty: dict[str, Any] = {}

    def _changed(self, key: Any, value: Any) -> None:
        if self.logged:
            self._dirty[encode_key(key)] = value

    def drain_changes(self) -> list[tuple[str, Any]]:
        """Return (encoded key, value or None) for every key changed since the last call."""
        changes = list(self._dirty.items())
        self._dirty.clear()
        return changes

    def latest(self, key: Any) -> Any:  # pragma: no cover - abstract
        """The current value of ``key`` (``None`` when absent)."""
        raise NotImplementedError

    def restore(self, encoded_key: str, value: Any) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def snapshot(self) -> Iterator[tuple[str, Any]]:  # pragma: no cover - abstract
        raise NotImplementedError

    def clear(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class KeyValueStore(Store):
    """A key-value store (``KeyValueStore`` in Kafka Streams); ``None`` deletes."""

    def __init__(self, name: str, *, logged: bool = True) -> None:
        super().__init__(name, logged=logged)
        self._data: dict[Any, Any] = {}

    def get(self, key: Any) -> Any:
        return self._data.get(key)

    def latest(self, key: Any) -> Any:
        return self._data.get(key)

    def put(self, key: Any, value: Any) -> None:
        if value is None:
            self.delete(key)
            return
        self._data[key] = value
        self._changed(key, value)

    def delete(self, key: Any) -> Any:
        old = self._data.pop(key, None)
        self._changed(key, None)
        return old

    def all(self) -> Iterator[tuple[Any, Any]]:
        """Every entry, in key order where keys compare, else insertion order."""
        try:
            keys = sorted(self._data)
        except TypeError:
            keys = list(self._data)
        for key in keys:
            yield key, self._data[key]

    def range(self, low: Any, high: Any) -> Iterator[tuple[Any, Any]]:
        """Entries with ``low <= key <= high`` in key order (keys must compare)."""
        for key in sorted(k for k in self._data if low <= k <= high):
            yield key, self._data[key]

    def __len__(self) -> int:
        return len(self._data)

    def restore(self, encoded_key: str, value: Any) -> None:
        key = decode_key(encoded_key)
        if value is None:
            self._data.pop(key, None)
        else:
            self._data[key] = value

    def snapshot(self) -> Iterator[tuple[str, Any]]:
        for key, value in self._data.items():
            yield encode_key(key), value

    def clear(self) -> None:
        self._data.clear()
        self._dirty.clear()


class VersionedStore(Store):
    """A versioned key-value store (KIP-889): every value with the timestamp it became valid.

    ``get(key, as_of)`` gives the latest value with a timestamp ``<= as_of``, which is what a
    stream-table join looks up, so a late stream record joins the table as it was at its own time.
    History older than ``history_retention`` ms behind the newest timestamp is dropped.
    """

    kind = "versioned"

    def __init__(self, name: str, *, history_retention: int, logged: bool = True) -> None:
        super().__init__(name, logged=logged)
        self.history_retention = history_retention
        self._versions: dict[Any, list[tuple[int, Any]]] = {}

    def put(self, key: Any, value: Any, timestamp: int) -> None:
        versions = self._versions.setdefault(key, [])
        index = bisect.bisect_right([t for t, _ in versions], timestamp)
        if index > 0 and versions[index - 1][0] == timestamp:
            versions[index - 1] = (timestamp, value)
        else:
            versions.insert(index, (timestamp, value))
        horizon = versions[-1][0] - self.history_retention
        # Keep the newest version at or before the horizon: it is still the value as of the horizon.
        keep_from = max(0, bisect.bisect_right([t for t, _ in versions], horizon) - 1)
        del versions[:keep_from]
        self._changed(key, [[t, v] for t, v in versions])

    def get(self, key: Any, as_of: int | None = None) -> Any:
        versions = self._versions.get(key)
        if not versions:
            return None
        if as_of is None:
            return versions[-1][1]
        index = bisect.bisect_right([t for t, _ in versions], as_of)
        return versions[index - 1][1] if index else None

    def latest(self, key: Any) -> Any:
        return self.get(key)

    def restore(self, encoded_key: str, value: Any) -> None:
        key = decode_key(encoded_key)
        if value is None:
            self._versions.pop(key, None)
        else:
            self._versions[key] = [(int(t), v) for t, v in value]

    def snapshot(self) -> Iterator[tuple[str, Any]]:
        for key, versions in self._versions.items():
            yield encode_key(key), [[t, v] for t, v in versions]

    def clear(self) -> None:
        self._versions.clear()
        self._dirty.clear()
