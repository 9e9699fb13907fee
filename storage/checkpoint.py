"""Small checkpoint files of a partition directory, written atomically.

Every checkpoint is one line of text ``<version> <value> <crc32c-hex>\\n``: the CRC-32C covers
``"<version> <value>"``, so a torn or half-written file (possible when it was renamed into place
without an fsync) reads as absent rather than as a wrong value. Writers go through a ``.tmp`` file
and ``os.replace``; with ``fsync=True`` the file and the directory are fsynced, so the new value
survives a power loss.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

import crc32c

from storage.fileops import OS_FILE_OPS, FileOps, write_all

__all__ = ["fsync_dir", "read_offset_checkpoint", "write_atomic", "write_offset_checkpoint"]

log = logging.getLogger(__name__)

_VERSION = 0


def fsync_dir(directory: Path, ops: FileOps = OS_FILE_OPS) -> None:
    """Fsync a directory so renames, creations and unlinks in it are durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        ops.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, *, fsync: bool = True, ops: FileOps = OS_FILE_OPS) -> None:
    """Replace ``path`` with ``data`` in one rename (fsynced first when asked).

    A failed write (a full disk) leaves ``path`` as it was and removes the temporary file.
    """
    tmp = path.with_name(path.name + ".tmp")
    fd = ops.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        try:
            write_all(ops, fd, data)
            if fsync:
                ops.fsync(fd)
        finally:
            os.close(fd)
        ops.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if fsync:
        fsync_dir(path.parent, ops)


def write_offset_checkpoint(
    path: Path, value: int, *, fsync: bool = True, ops: FileOps = OS_FILE_OPS
) -> None:
    """Write one integer checkpoint (see the module docstring for the format)."""
    body = f"{_VERSION} {value}"
    write_atomic(path, f"{body} {crc32c.crc32c(body.encode()):08x}\n".encode(), fsync=fsync, ops=ops)


def read_offset_checkpoint(path: Path) -> int | None:
    """Read an integer checkpoint; None when missing or unreadable (a warning is logged)."""
    try:
        text = path.read_text("ascii")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("ignoring unreadable checkpoint %s: %s", path, exc)
        return None
    parts = text.split()
    if len(parts) == 3 and parts[0] == str(_VERSION):
        body = f"{parts[0]} {parts[1]}"
        try:
            if int(parts[2], 16) == crc32c.crc32c(body.encode()):
                return int(parts[1])
        except ValueError:
            pass
    log.warning("ignoring corrupt checkpoint %s", path)
    return None
