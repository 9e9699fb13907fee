"""A real browser on another origin: Debian's chromium, driven by Playwright, loads a page from a
second local HTTP server (another port, so another origin) and talks to a real broker process.

From the allowed origin the page produces with ``fetch`` (a JSON body, so the browser sends a
preflight first), follows the topic with ``EventSource`` and joins a group through the group SSE
stream. From an origin that is not listed, the same ``fetch`` is blocked by the browser.
"""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.broker_process import BrokerProcess, free_port

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-dev-shm-usage", "--no-first-run", "--disable-extensions"]

PAGE = """<!doctype html>
<meta charset="utf-8"><title>tidelog from another origin</title>
<script>
const broker = new URLSearchParams(location.search).get("broker");
function firstEvents(url, name, count) {
  return new Promise((resolve) => {
    const got = [];
    const source = new EventSource(url);
    const done = (error) => { source.close(); resolve({events: got, error}); };
    source.addEventListener(name, (event) => {
      got.push({id: event.lastEventId, data: JSON.parse(event.data)});
      if (got.length === count) done(null);
    });
    source.onerror = () => done("EventSource error, readyState " + source.readyState);
    setTimeout(() => done("timed out"), 20000);
  });
}
window.result = (async () => {
  const out = {};
  try {
    const answer = await fetch(broker + "/v1/topics/web/records", {
      method: "POST",
      headers: {"Content-Type": "application/json", "Idempotency-Key": "page-1"},
      body: JSON.stringify({records: [{key: "a", value: {n: 1}}, {key: "b", value: {n: 2}}]}),
    });
    out.produce = {status: answer.status, body: await answer.json()};
  } catch (error) {
    out.produceError = String(error);
    return out;
  }
  out.topic = await firstEvents(broker + "/v1/topics/web/events?from=earliest", "record", 2);
  out.group = await firstEvents(
    broker + "/v1/groups/web-page/events?topics=web&auto_offset_reset=earliest", "record", 2);
  return out;
})();
</script>
"""


def _require_chromium() -> None:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium "
                    "(`apt-get update && apt-get install -y chromium`; .ci/run does this)")


@pytest.fixture
def page_server(tmp_path: Path) -> Iterator[int]:
    """A static HTTP server on its own port serving ``index.html``: the page's origin."""
    root = tmp_path / "site"
    root.mkdir()
    (root / "index.html").write_text(PAGE)
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def _run_page(url: str) -> dict[str, Any]:
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(url)
            result: dict[str, Any] = page.evaluate("window.result")
            return result
        finally:
            browser.close()


def test_page_of_an_allowed_origin_produces_and_subscribes(
    broker_factory: Callable[..., BrokerProcess], page_server: int
) -> None:
    origin = f"http://127.0.0.1:{page_server}"
    broker = broker_factory("broker", cors_allow_origins=origin)
    with broker.client() as client:
        assert client.post("/v1/topics", json={"name": "web", "partitions": 1}).status_code == 201

    result = _run_page(f"{origin}/index.html?broker={broker.url}")

    assert "produceError" not in result, result
    assert result["produce"]["status"] == 200, result
    assert [r["offset"] for r in result["produce"]["body"]["results"]] == [0, 1], result
    assert result["topic"]["error"] is None, result
    assert [e["data"]["value"] for e in result["topic"]["events"]] == [{"n": 1}, {"n": 2}]
    assert all(e["id"] for e in result["topic"]["events"])  # cursors a reconnect resumes from
    assert result["group"]["error"] is None, result
    assert [e["data"]["key"] for e in result["group"]["events"]] == ["a", "b"]


def test_page_of_another_origin_is_blocked(
    broker_factory: Callable[..., BrokerProcess], page_server: int
) -> None:
    # localhost:<port> is another origin than 127.0.0.1:<port>, though the same server serves both.
    broker = broker_factory("broker", cors_allow_origins=f"http://127.0.0.1:{page_server}")
    with broker.client() as client:
        assert client.post("/v1/topics", json={"name": "web", "partitions": 1}).status_code == 201

    result = _run_page(f"http://localhost:{page_server}/index.html?broker={broker.url}")

    assert "Failed to fetch" in result.get("produceError", ""), result
    with broker.client() as client:  # the preflight failed, so the POST was never sent
        offsets = client.get("/v1/topics/web/partitions/0/offsets").json()
    assert offsets["high_watermark"] == 0, offsets

