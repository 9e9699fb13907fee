"""Raw-socket clients for the robustness tests: many connections from one loopback address, and a
well-behaved producer whose latency is measured while they misbehave.

Attackers connect from 127.0.0.2 (any 127/8 address is the loopback on Linux), so the per-address
limits that stop them do not apply to the producer on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from dataclasses import dataclass, field

import httpx

ATTACKER = "127.0.0.2"

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def open_many(port: int, count: int, *, source: str = ATTACKER, first: bytes = b"") -> list[Connection]:
    """``count`` connections to 127.0.0.1:``port`` from ``source``, each having sent ``first``."""
    opened: list[Connection] = []
    for start in range(0, count, 100):
        batch = await asyncio.gather(
            *(asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
              for _ in range(start, min(count, start + 100)))
        )
        for reader, writer in batch:
            if first:
                writer.write(first)
            opened.append((reader, writer))
        await asyncio.gather(*(w.drain() for _, w in batch))
    return opened


async def close_all(connections: list[Connection]) -> None:
    for _, writer in connections:
        writer.close()
    for _, writer in connections:
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def answer_or_eof(reader: asyncio.StreamReader, timeout_s: float) -> bytes | None:
    """What the server sent before closing (b"" for a bare close); None if still open at the timeout."""
    try:
        return await asyncio.wait_for(reader.read(-1), timeout_s)
    except TimeoutError:
        return None
    except ConnectionError:
        return b""


def error_code(answer: bytes) -> int | None:
    """The ``error_code`` of a raw problem+json answer."""
    _, _, body = answer.partition(b"\r\n\r\n")
    try:
        return int(json.loads(body)["error_code"])
    except (ValueError, KeyError, TypeError):
        return None


def status_of(answer: bytes) -> int | None:
    match = re.match(rb"HTTP/1\.1 (\d{3})", answer)
    return int(match.group(1)) if match else None


@dataclass
class Latencies:
    statuses: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    @property
    def worst(self) -> float:
        return max(self.seconds)


async def produce_for(url: str, topic: str, duration_s: float, *, pause_s: float = 0.05) -> Latencies:
    """Produce one record at a time for ``duration_s`` from 127.0.0.1, timing each answer."""
    out = Latencies()
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        deadline = time.monotonic() + duration_s
        while time.monotonic() < deadline:
            start = time.monotonic()
            try:
                answer = await client.post(f"/v1/topics/{topic}/records", json={"records": [{"value": 1}]})
                out.statuses.append(answer.status_code)
            except httpx.HTTPError:
                out.statuses.append(0)
            out.seconds.append(time.monotonic() - start)
            await asyncio.sleep(pause_s)
    return out


async def metric(url: str, name: str) -> float:
    """The value of an unlabelled gauge or counter of ``/metrics``."""
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        text = (await client.get("/metrics")).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")
