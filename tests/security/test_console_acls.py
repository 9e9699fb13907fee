"""The console shows only the controls its caller's ACLs allow (``authorized_operations``), and its
pages still load when the caller may not describe the cluster's log directories (real browser)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.catalog import Catalog
from app.catalog.acls import create_acls
from app.security.acl import AclBinding, Operation, PatternType, Permission, ResourceType
from tests.broker_process import BrokerProcess
from tests.e2e.test_cors_browser import CHROMIUM, CHROMIUM_ARGS, _require_chromium

pytestmark = pytest.mark.e2e


def _grant(operation: Operation) -> AclBinding:
    return AclBinding("User:ANONYMOUS", "*", ResourceType.TOPIC, PatternType.LITERAL, "orders",
                      operation, Permission.ALLOW)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[BrokerProcess]:
    data = tmp_path / "data"
    data.mkdir()
    catalog = Catalog(f"sqlite:///{data / 'catalog.db'}")
    try:
        catalog.migrate()
        with catalog.begin() as session:  # the anonymous console user may create and read "orders"
            create_acls(session, bindings=[_grant(Operation.CREATE), _grant(Operation.READ)])
    finally:
        catalog.close()
    process = BrokerProcess(data, settings={"authorizer_enabled": True}).start()
    with process.client() as client:
        assert client.post("/v1/topics", json={"name": "orders"}).status_code == 201
        assert client.post("/v1/topics/orders/records", json={"records": [{"value": "x"}]}).status_code == 403
    yield process
    process.stop()


@pytest.fixture
def page() -> Iterator[Any]:
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context()
        page = context.new_page()
        page.set_default_timeout(10_000)
        yield page
        browser.close()


def test_controls_follow_the_callers_acls(broker: BrokerProcess, page: Any) -> None:
    page.goto(f"{broker.url}/ui/#/topics/orders")
    page.wait_for_selector("#partitions")
    assert page.query_selector("#messages-link") is not None  # READ
    assert page.query_selector("#tail-link") is not None
    assert page.query_selector("#produce-link") is None  # no WRITE
    assert page.query_selector("#add-partitions") is None  # no ALTER
    assert page.query_selector("#delete-topic") is None  # no DELETE
    page.goto(f"{broker.url}/ui/#/topics")
    page.wait_for_selector("text=orders")
    assert page.query_selector("#create-topic") is None  # no CLUSTER DESCRIBE: no cluster operations
    page.goto(f"{broker.url}/ui/#/")
    page.wait_for_selector("#brokers")
