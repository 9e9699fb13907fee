"""A task's local state: one SQLite file with every store's entries and their changelog checkpoint.

``<state_dir>/<application-id>/<task>.sqlite`` holds ``entries(store, key, value)`` (key and value
as JSON text) and ``checkpoint(store, position)``: the changelog offset the entries reflect. A flush
writes the changed entries and the new positions in one transaction, after the offsets commit, so
the file never reflects more than the group committed (the changelog holds the rest). A file that
cannot be read is deleted and the task restores from the changelog alone.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["LocalState"]

log = logging.getLogger("tidelog.streams")


class LocalState:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = self._open()
        except sqlite3.DatabaseError:
            log.warning("local state %s is unreadable: restoring from the changelog", path)
            path.unlink(missing_ok=True)
            self._db = self._open()

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute(
            "CREATE TABLE IF NOT EXISTS entries (store TEXT, key TEXT, value TEXT, PRIMARY KEY (store, key))"
        )
        db.execute("CREATE TABLE IF NOT EXISTS checkpoint (store TEXT PRIMARY KEY, position INTEGER)")
        db.execute("SELECT count(*) FROM entries").fetchone()
        return db

    def checkpoints(self) -> dict[str, int]:
        return {store: int(pos) for store, pos in self._db.execute("SELECT store, position FROM checkpoint")}

    def entries(self, store: str) -> Iterable[tuple[str, Any]]:
        for key, value in self._db.execute("SELECT key, value FROM entries WHERE store = ?", (store,)):
            yield key, json.loads(value)

    def flush(self, changes: Mapping[str, list[tuple[str, Any]]], positions: Mapping[str, int]) -> None:
        """Write ``changes`` (store -> [(key, value or None)]) and ``positions`` atomically."""
        db = self._db
        db.execute("BEGIN")
        try:
            for store, items in changes.items():
                for key, value in items:
                    if value is None:
                        db.execute("DELETE FROM entries WHERE store = ? AND key = ?", (store, key))
                    else:
                        db.execute(
                            "INSERT OR REPLACE INTO entries VALUES (?, ?, ?)",
                            (store, key, json.dumps(value, separators=(",", ":"))),
                        )
            for store, position in positions.items():
                db.execute("INSERT OR REPLACE INTO checkpoint VALUES (?, ?)", (store, position))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def wipe(self) -> None:
        self._db.execute("DELETE FROM entries")
        self._db.execute("DELETE FROM checkpoint")

    def close(self) -> None:
        self._db.close()
