"""The layout of a data directory: partition directories, their ``partition.metadata``, tombstones.

    <data-dir>/
        .lock                          the broker's lock on the whole directory (storage/dirlock.py)
        <topic>-<partition>/           one partition log (docs/storage-format.md)
            partition.metadata         which topic incarnation the directory belongs to (below)
        <topic>-<partition>.<hex>-delete/   a deleted partition, being removed in the background

``partition.metadata`` (Kafka's PartitionMetadataFile, KIP-516), text, written atomically (temporary
file, fsync, rename, directory fsync) when the directory is created::

    version: 0
    topic_id: <the topic's UUID, as the catalog has it>

A topic deleted and re-created under the same name gets a new id, so a directory left behind by
the old one (a crash during deletion, a broker that was down meanwhile) is recognised and never
opened: the broker removes it at start.

Deletion is crash-safe as in Kafka: each partition directory is renamed to a ``-delete`` tombstone in
one ``rename`` (atomic), the data directory is fsynced, and the tombstones are removed afterwards, in
the background. A crash at any point leaves either the live directory (which start-up removes if the
catalog no longer knows it) or a tombstone (which start-up removes); never a directory that a
re-created topic of the same name would open.
"""

from __future__ import annotations

import logging
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from storage.checkpoint import fsync_dir, write_atomic
from storage.fileops import OS_FILE_OPS, FileOps

__all__ = [
    "DELETE_SUFFIX",
    "PARTITION_METADATA_FILE",
    "PartitionDir",
    "partition_dir_name",
    "read_topic_id",
    "remove_tombstones",
    "scan_data_dir",
    "tombstone",
    "tombstone_all",
    "write_topic_id",
]

log = logging.getLogger(__name__)

PARTITION_METADATA_FILE = "partition.metadata"
DELETE_SUFFIX = "-delete"
_VERSION = "0"
_PARTITION_DIR = re.compile(r"^(?P<topic>[a-zA-Z0-9._-]+)-(?P<partition>\d+)$")


@dataclass(frozen=True, slots=True)
class PartitionDir:
    """A live partition directory found in the data directory."""

    path: Path
    topic: str
    partition: int


def partition_dir_name(topic: str, partition: int) -> str:
    return f"{topic}-{partition}"


def write_topic_id(directory: Path, topic_id: str, ops: FileOps = OS_FILE_OPS) -> None:
    """Write ``partition.metadata`` with ``topic_id`` (atomically, fsynced)."""
    body = f"version: {_VERSION}\ntopic_id: {topic_id}\n"
    write_atomic(directory / PARTITION_METADATA_FILE, body.encode("ascii"), ops=ops)


def read_topic_id(directory: Path) -> str | None:
    """The topic id in ``partition.metadata``; None when the file is missing.

    Raises ``ValueError`` for a file that is not a valid version-0 metadata file.
    """
    try:
        text = (directory / PARTITION_METADATA_FILE).read_text("ascii")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{directory / PARTITION_METADATA_FILE} is not text") from exc
    fields = dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)
    if fields.get("version") != _VERSION or "topic_id" not in fields:
        raise ValueError(f"{directory / PARTITION_METADATA_FILE} is not a version {_VERSION} metadata file")
    return fields["topic_id"].strip()


def scan_data_dir(data_dir: Path) -> tuple[list[PartitionDir], list[Path]]:
    """(live partition directories, tombstones) of ``data_dir``; other entries are ignored."""
    live: list[PartitionDir] = []
    tombstones: list[Path] = []
    if not data_dir.is_dir():
        return live, tombstones
    for path in sorted(data_dir.iterdir()):
        if not path.is_dir():
            continue
        if path.name.endswith(DELETE_SUFFIX):
            tombstones.append(path)
            continue
        m = _PARTITION_DIR.match(path.name)
        if m:
            live.append(PartitionDir(path, m.group("topic"), int(m.group("partition"))))
    return live, tombstones


def tombstone(directory: Path) -> Path:
    """Rename a partition directory to a unique ``-delete`` tombstone (one atomic rename).

    The caller fsyncs the parent once after renaming every directory it deletes (``fsync_dir``).
    """
    target = directory.with_name(f"{directory.name}.{uuid.uuid4().hex}{DELETE_SUFFIX}")
    directory.rename(target)
    return target


def tombstone_all(directories: list[Path], data_dir: Path) -> list[Path]:
    """Tombstone every directory that still exists, then fsync ``data_dir`` once."""
    out = [tombstone(d) for d in directories if d.exists()]
    if out:
        fsync_dir(data_dir)
    return out


def remove_tombstones(tombstones: list[Path]) -> None:
    """Remove tombstoned directories (a failure is logged; start-up tries again)."""
    for path in tombstones:
        try:
            shutil.rmtree(path)
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("could not remove %s (removed at the next start): %s", path, exc)
