"""``/docs`` and ``/redoc`` work offline: every asset they reference is served by the broker itself.

Each page is fetched, every URL it references (``src``, ``href``, ``spec-url``, Swagger UI's ``url``)
is fetched from the same app and must answer 200, and no page names another host (no CDN, no Google
Fonts, no online validator).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from app.api_docs import PUBLIC_PATHS

_REFERENCE = re.compile(r"""(?:src|href|spec-url)=["']([^"']+)["']|\burl:\s*'([^']+)'""")
_EXTERNAL = re.compile(r"""(?:https?:)?//[a-z0-9.-]+""", re.IGNORECASE)


def _references(html: str) -> list[str]:
    return [a or b for a, b in _REFERENCE.findall(html)]


@pytest.mark.parametrize(("page", "expected"), [
    ("/docs", {"/api-docs-assets/swagger-ui-bundle.js", "/api-docs-assets/swagger-ui.css", "/openapi.json"}),
    ("/redoc", {"/api-docs-assets/redoc.standalone.js", "/openapi.json"}),
])
def test_docs_pages_load_everything_from_the_broker(client: Any, page: str, expected: set[str]) -> None:
    answer = client.get(page)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    html = answer.text
    references = _references(html)
    assert expected <= set(references), references
    for url in references:
        assert url.startswith("/"), f"{page} references {url}, not a path of the broker"
        fetched = client.get(url)
        assert fetched.status_code == 200, (url, fetched.status_code)
        assert fetched.content, url
    assert _EXTERNAL.findall(html) == [], f"{page} names another host"
    assert "validatorUrl\": null" in html or page == "/redoc"  # Swagger UI's online validator is off
    # Scripts may still name other hosts (ReDoc's logo): the browser is told to load only from here.
    policy = answer.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "img-src 'self' data:" in policy
    assert "http" not in policy


def test_both_openapi_renditions_are_served(client: Any) -> None:
    assert client.get("/openapi.json").json()["openapi"].startswith("3.1")
    assert client.get("/openapi-3.2.json").json()["openapi"] == "3.2.0"


def test_every_docs_path_is_listed_as_public(client: Any) -> None:
    for path in PUBLIC_PATHS:
        probe = path + "/favicon.png" if path == "/api-docs-assets" else path
        assert client.get(probe).status_code == 200, path
