"""Redis Streams through redis-py: pipelined XADD, XREAD COUNT, XREAD BLOCK.

Durability: the project's Redis runs with `appendonly no` and `save ""` (it keeps nothing on disk), so an
acknowledged XADD lives in the server's memory only and is lost when the server process dies — weaker than
tidelog's acks=1, which has handed the record to the kernel's page cache (it survives a broker crash).
The suite reads those settings back with CONFIG GET and prints them in the report. For tidelog's acks=all
it starts a redis-server of its own with `appendfsync always` (PrivateRedisServer).
"""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import redis

from ._events import Throughput

LEFTOVER_TTL_S = 3600


class RedisStreams:
    def __init__(self, url: str) -> None:
        self.url = url
        self.prefix = f"tidelog-bench:{uuid.uuid4().hex[:12]}"
        self._keys: set[str] = set()
        self.client = redis.Redis.from_url(url, socket_timeout=30, socket_connect_timeout=2)

    def check(self) -> str:
        """Return the server's version and persistence settings; raises when Redis does not answer."""
        self.client.ping()
        info: dict[str, Any] = self.client.info("server")
        settings: dict[Any, Any] = {}
        for name in ("appendonly", "appendfsync", "save"):
            settings.update(self.client.config_get(name))
        persistence = ", ".join(f"{k}={v!r}" for k, v in sorted(settings.items()))
        return f"Redis {info.get('redis_version', '?')} ({persistence})"

    def key(self, name: str) -> str:
        key = f"{self.prefix}:{name}"
        self._keys.add(key)
        return key

    def produce(
        self, key: str, batch: Sequence[dict[str, Any]], *, total: int, time_cap_s: float
    ) -> Throughput:
        """XADD ``total`` entries, one pipeline (no MULTI) of ``len(batch)`` commands per round trip."""
        value_bytes = sum(len(orjson.dumps(value)) for value in batch)
        sent = 0
        sent_bytes = 0
        started = time.perf_counter()
        deadline = started + time_cap_s
        while sent < total and time.perf_counter() < deadline:
            pipe = self.client.pipeline(transaction=False)
            for value in batch:
                pipe.xadd(key, {"v": orjson.dumps(value)})
            ids = pipe.execute()
            if len(ids) != len(batch):
                raise RuntimeError(f"XADD pipeline returned {len(ids)} ids for {len(batch)} entries")
            sent += len(batch)
            sent_bytes += value_bytes
        elapsed = time.perf_counter() - started
        # The shared server outlives the suite: should the suite die before cleanup(), the data expires.
        self.client.expire(key, LEFTOVER_TTL_S)
        return Throughput(sent, sent_bytes, elapsed)

    def consume(
        self, key: str, total: int, *, value_size: int, time_cap_s: float, count: int = 1000
    ) -> Throughput:
        """XREAD COUNT ``count`` from the start of the stream; values decoded to Python objects."""
        last_id = "0-0"
        got = 0
        started = time.perf_counter()
        deadline = started + time_cap_s
        while got < total and time.perf_counter() < deadline:
            answer: Any = self.client.xread({key: last_id}, count=count)
            if not answer:
                raise RuntimeError(f"XREAD after {last_id} returned nothing")
            entries = answer[0][1]
            values = [orjson.loads(fields[b"v"]) for _, fields in entries]
            got += len(values)
            last_id = entries[-1][0]
        return Throughput(got, got * value_size, time.perf_counter() - started)

    def cleanup(self) -> None:
        if self._keys:
            self.client.delete(*self._keys)
            self._keys.clear()

    def close(self) -> None:
        try:
            self.cleanup()
        finally:
            self.client.close()


class PrivateRedisServer:
    """A redis-server of the suite's own, on a free port, with every write fsynced before its answer.

    `appendonly yes` + `appendfsync always` is Redis's counterpart of tidelog's acks=all. The shared
    server on 6379 is left as it is configured; this one lives in the suite's work directory.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            raise RuntimeError("redis-server is not installed")
        from ._broker import free_port

        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        command = [
            executable, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.directory),
            "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no",
            "--logfile", str(self.directory / "redis.log"),
        ]  # fmt: skip
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self._process.returncode}")
            try:
                with redis.Redis.from_url(self.url, socket_connect_timeout=0.5) as probe:
                    probe.ping()
                return
            except redis.RedisError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("redis-server did not answer within 15 s")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
