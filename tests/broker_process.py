"""A real broker process for end-to-end tests: ``tidelog serve`` on a free loopback port.

``BrokerProcess`` starts the CLI in a child process with its own data directory (and, unless told
otherwise, its own SQLite catalog), waits for ``/readyz``, and can stop it with SIGTERM (clean
shutdown), kill it with SIGKILL (crash), and restart it on the same port and data. Its stdout and
stderr go to a file, ``log_text()`` returns them for assertions.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

__all__ = ["BrokerProcess", "free_port"]

_SERVE = "import sys; from tidelog.cli import main; sys.argv[0] = 'tidelog'; main()"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class BrokerProcess:
    """One ``tidelog serve`` child process; every setting is a ``--flag`` (``data_dir`` → ``--data-dir``)."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        settings: Mapping[str, object] | None = None,
        env: Mapping[str, str] | None = None,
        extra_args: Sequence[str] = (),
        startup_timeout_s: float = 90.0,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.settings = dict(settings or {})
        self.env = dict(env or {})
        self.extra_args = list(extra_args)
        self.startup_timeout_s = startup_timeout_s
        self.log_path = self.data_dir.parent / f"broker-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        args = [sys.executable, "-c", _SERVE, "serve", "--host", "127.0.0.1", "--port", str(self.port),
                "--data-dir", str(self.data_dir)]
        for name, value in self.settings.items():
            args += [f"--{name.replace('_', '-')}", str(value)]
        return args + self.extra_args

    def start(self) -> BrokerProcess:
        """Start the process and wait until ``/readyz`` answers 200."""
        if self.running:
            raise RuntimeError("the broker is already running")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # Only what the test asked for: a TIDELOG_* variable of the outer shell must not leak in.
        env = {k: v for k, v in os.environ.items() if not k.startswith("TIDELOG_")}
        env.update(self.env)
        self.starts += 1
        with open(self.log_path, "ab") as log:
            log.write(f"--- start {self.starts}: {' '.join(self.command()[3:])}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
            )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.startup_timeout_s
        with httpx.Client(timeout=1.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    code = self.process.returncode
                    raise RuntimeError(f"broker exited with {code} before it was ready:\n{self.log_text()}")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(f"{self.url}/readyz").status_code == 200:
                        return
                time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"broker not ready after {self.startup_timeout_s} s:\n{self.log_text()}")

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self, timeout_s: float = 20.0) -> int:
        """SIGTERM, then wait for a clean exit; returns the exit code (SIGKILL and raise on a hang)."""
        return self._signal(signal.SIGTERM, timeout_s)

    def kill(self) -> int:
        """SIGKILL: a crash, no clean shutdown."""
        return self._signal(signal.SIGKILL, 10.0)

    def _signal(self, sig: signal.Signals, timeout_s: float) -> int:
        process = self.process
        if process is None:
            return 0
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
                log = self.log_text()
                raise RuntimeError(f"broker ignored {sig.name} for {timeout_s} s:\n{log}") from None
        return int(process.returncode)

    def restart(self, *, kill: bool = False) -> BrokerProcess:
        """Stop (SIGTERM, or SIGKILL with ``kill``) and start again on the same port and data."""
        if kill:
            self.kill()
        else:
            self.stop()
        return self.start()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def client(self, **kwargs: object) -> httpx.Client:
        """An httpx client on this broker's URL."""
        return httpx.Client(base_url=self.url, **kwargs)  # type: ignore[arg-type]
