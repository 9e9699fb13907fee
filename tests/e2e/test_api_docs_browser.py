"""``/docs`` and ``/redoc`` render in a real browser with nothing but the broker reachable.

Debian's chromium (through Playwright) opens both pages of a real broker process while every request
to another host is refused; each page must render the API (Swagger UI's operations, ReDoc's
operation titles) and no request may have left the broker.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.broker_process import BrokerProcess

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-dev-shm-usage", "--no-first-run", "--disable-extensions"]


@pytest.mark.parametrize(("page_path", "rendered"), [
    ("/docs", ".opblock-summary-path"),
    ("/redoc", "h2"),
])
def test_docs_pages_render_offline(broker_process: BrokerProcess, page_path: str, rendered: str) -> None:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium "
                    "(`apt-get update && apt-get install -y chromium`; .ci/run does this)")
    from playwright.sync_api import Route, sync_playwright

    broker_host = urlsplit(broker_process.url).netloc
    elsewhere: list[str] = []
    requested: list[str] = []
    refused: list[str] = []  # what the page's Content-Security-Policy kept from being requested

    def only_the_broker(route: Route) -> None:
        url = route.request.url
        requested.append(url)
        if urlsplit(url).scheme in ("data", "blob") or urlsplit(url).netloc == broker_host:
            route.continue_()
        else:
            elsewhere.append(url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.route("**/*", only_the_broker)
            page.on("console", lambda message: refused.append(message.text)
                    if "Content Security Policy" in message.text else None)
            page.goto(broker_process.url + page_path)
            page.wait_for_selector(rendered, timeout=60_000)
            texts = page.eval_on_selector_all(rendered, "nodes => nodes.map(n => n.textContent)")
        finally:
            browser.close()
    assert elsewhere == [], f"{page_path} asked other hosts: {elsewhere}"
    # Only images from another host may be refused (ReDoc's logo, which it hides when it fails).
    assert all("img-src" in text for text in refused), refused
    assert any(url.endswith("/openapi.json") for url in requested), requested
    joined = " ".join(texts)
    assert "/v1/topics" in joined if page_path == "/docs" else len(texts) > 10, joined[:500]
