"""The broker under test: a real `tidelog serve` process on a free loopback port with a fresh data dir."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType

import httpx


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def tidelog_executable() -> str:
    """The `tidelog` console script of the interpreter running the suite (the project's venv)."""
    candidate = Path(sys.executable).with_name("tidelog")
    return str(candidate) if candidate.exists() else "tidelog"


def process_tree_rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and all its descendants, from /proc (Linux)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    total = 0
    todo = [pid]
    while todo:
        current = todo.pop()
        todo.extend(children.get(current, []))
        try:
            with open(f"/proc/{current}/status", encoding="ascii", errors="replace") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            continue
    return total


class BrokerProcess:
    """Start `tidelog serve` and wait until /healthz answers; stop it with SIGTERM (SIGKILL if it hangs).

    A watchdog kills the broker if its resident memory passes ``memory_limit_bytes``: the machine is
    shared, and a broker that leaks must fail its benchmark, not starve everyone else.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        log_path: Path,
        start_timeout_s: float = 60.0,
        memory_limit_bytes: int = 4 * 1024**3,
    ) -> None:
        self.data_dir = data_dir
        self.memory_limit_bytes = memory_limit_bytes
        self.killed_for_memory: str | None = None
        self.peak_rss_bytes = 0
        self._watchdog_stop = threading.Event()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log_path = log_path
        self._start_timeout_s = start_timeout_s
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("broker not started")
        return self._process.pid

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [
            tidelog_executable(),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
        ]
        log = self._log_path.open("ab")
        try:
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()
        deadline = time.monotonic() + self._start_timeout_s
        last_error = "no answer"
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"`{' '.join(command)}` exited with {self._process.returncode}; see {self._log_path}"
                )
            try:
                response = httpx.get(f"{self.url}/healthz", timeout=1.0)
                if response.status_code == 200:
                    threading.Thread(target=self._watch_memory, name="broker-watchdog", daemon=True).start()
                    return
                last_error = f"/healthz answered {response.status_code}"
            except httpx.HTTPError as exc:
                last_error = repr(exc)
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"broker did not become healthy in {self._start_timeout_s:.0f} s: {last_error}")

    def rss_bytes(self) -> int:
        return process_tree_rss_bytes(self.pid)

    def _watch_memory(self) -> None:
        process = self._process
        while process is not None and process.poll() is None and not self._watchdog_stop.wait(0.5):
            rss = process_tree_rss_bytes(process.pid)
            self.peak_rss_bytes = max(self.peak_rss_bytes, rss)
            if rss > self.memory_limit_bytes:
                self.killed_for_memory = (
                    f"broker killed: resident memory {rss / 1024**2:,.0f} MiB passed the "
                    f"{self.memory_limit_bytes / 1024**2:,.0f} MiB limit"
                )
                print(f"  {self.killed_for_memory}", flush=True)
                process.kill()
                return

    def stop(self) -> None:
        self._watchdog_stop.set()
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def __enter__(self) -> BrokerProcess:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
