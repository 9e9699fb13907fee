"""What ``tidelog serve`` holds before the app starts: the data directory's lock and the listening socket.

Both are taken before the lifespan opens anything, so a start that cannot succeed is refused with one
clear sentence (``StartRefused``) instead of a traceback from the middle of start-up:

- ``<data_dir>/.broker.lock``: an exclusive ``flock`` held for the life of the process (the kernel
  drops it when the process dies, even by SIGKILL, so a crash never leaves a stale lock). It holds the
  pid of its owner, for the message. Each partition log also locks its own directory (storage/log.py);
  this lock covers the whole directory, catalog and empty data directories included.
- the listening socket, bound with ``SO_REUSEADDR`` as uvicorn binds it, handed to uvicorn.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DATA_DIR_LOCK", "DataDirLock", "StartRefused", "bind_listener", "lock_data_dir"]

DATA_DIR_LOCK = ".broker.lock"


class StartRefused(Exception):
    """The broker cannot start; the message is one sentence for the person starting it."""


@dataclass(slots=True)
class DataDirLock:
    fd: int

    def release(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


def lock_data_dir(data_dir: Path) -> DataDirLock:
    """Take the data directory's lock, or raise ``StartRefused`` naming the broker holding it."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(data_dir / DATA_DIR_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StartRefused(f"cannot use the data directory {data_dir}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        os.close(fd)
        by = f" (pid {owner})" if owner.isdigit() else ""
        raise StartRefused(f"the data directory {data_dir} is in use by another broker{by}") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return DataDirLock(fd)


def bind_listener(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (not yet listening), or ``StartRefused`` saying why not."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise StartRefused(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    family, kind, proto, _name, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        reason = "the port is already in use" if exc.errno == errno.EADDRINUSE else exc.strerror
        raise StartRefused(f"cannot listen on {host}:{port}: {reason}") from None
    sock.set_inheritable(True)
    return sock
