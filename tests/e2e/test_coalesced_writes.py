"""The broker's HTTP server writes a response's head and body together when its length is known:
a sized answer reaches the transport as one write, and every kind of answer still arrives whole
through a real server (sized, HEAD, chunked NDJSON, SSE, errors)."""

from __future__ import annotations

import httpx
import pytest

from app.server import _CoalescedWrites
from tests.broker_process import BrokerProcess

pytestmark = pytest.mark.e2e


class _RecordingTransport:
    """The transport side of ``_CoalescedWrites``: what reaches it, write by write."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


class _Cycle:
    def __init__(self, method: str, chunked: bool | None) -> None:
        self.scope = {"method": method}
        self.response_started = True
        self.chunked_encoding = chunked
        self.response_complete = False


@pytest.mark.parametrize(
    ("method", "chunked", "expected"),
    [
        ("POST", False, [b"HEAD\r\n\r\nbody"]),  # sized: one write
        ("GET", None, [b"HEAD\r\n\r\n", b"body"]),  # no length known yet: as before
        ("GET", True, [b"HEAD\r\n\r\n", b"body"]),  # chunked stream: the head goes at once
        ("HEAD", False, [b"HEAD\r\n\r\n", b"body"]),  # uvicorn writes no body for HEAD
    ],
)
def test_the_head_waits_for_the_body_only_when_its_length_is_known(
    method: str, chunked: bool | None, expected: list[bytes]
) -> None:
    real = _RecordingTransport()
    writes = _CoalescedWrites(real, _Cycle(method, chunked))  # type: ignore[arg-type]
    writes.write(b"HEAD\r\n\r\n")
    writes.write(b"body")
    assert real.writes == expected
    assert writes.is_closing() is False  # everything else is the real transport's


def test_only_the_head_is_held_so_a_body_in_many_chunks_goes_out_whole() -> None:
    """A file answer arrives in many body writes: after the head went out with the first chunk,
    every later chunk is written at once (holding every other chunk lost the last one)."""
    real = _RecordingTransport()
    writes = _CoalescedWrites(real, _Cycle("GET", False))  # type: ignore[arg-type]
    writes.write(b"HEAD\r\n\r\n")
    for chunk in (b"one", b"two", b"three", b"four"):
        writes.write(chunk)
    assert real.writes == [b"HEAD\r\n\r\none", b"two", b"three", b"four"]


def test_a_held_head_is_written_before_a_close() -> None:
    real = _RecordingTransport()
    writes = _CoalescedWrites(real, _Cycle("GET", False))  # type: ignore[arg-type]
    writes.write(b"HEAD\r\n\r\n")
    writes.close()
    assert real.writes == [b"HEAD\r\n\r\n"] and real.closed


def test_every_kind_of_answer_arrives_whole(broker_process: BrokerProcess) -> None:
    with httpx.Client(base_url=broker_process.url, timeout=15) as client:
        assert client.post("/v1/topics", json={"name": "w", "partitions": 1}).status_code == 201
        produced = client.post("/v1/topics/w/records", json={"records": [{"value": i} for i in range(3)]})
        assert produced.status_code == 200 and len(produced.json()["results"]) == 3
        head = client.head("/healthz")  # a HEAD answer (405 here) carries a length and no body
        assert head.status_code == 405 and head.content == b""
        assert client.get("/healthz").status_code == 200  # the kept-alive connection still works
        ndjson = client.post(
            "/v1/topics/w/records",
            content=b'{"value":1}\n{"value":2}\n',
            headers={"Content-Type": "application/x-ndjson"},
        )
        ndjson_lines = ndjson.content.splitlines()
        assert ndjson.status_code == 200 and len(ndjson_lines) == 3  # two results, then the summary
        assert b'"summary"' in ndjson_lines[-1]
        with client.stream("GET", "/v1/topics/w/events", params={"from": "earliest"}) as stream:
            lines = []
            for line in stream.iter_lines():
                if line.startswith("data:"):
                    lines.append(line)
                if len(lines) == 5:
                    break
        assert len(lines) == 5
        # A static file of 1.5 MB is sent in many body writes: it must arrive whole.
        bundle = client.get("/api-docs-assets/swagger-ui-bundle.js")
        assert bundle.status_code == 200
        assert len(bundle.content) == int(bundle.headers["content-length"]) > 1_000_000
        missing = client.get("/v1/topics/none/partitions/0/records")
        assert missing.status_code == 404 and missing.json()["error_code"] == 40401
