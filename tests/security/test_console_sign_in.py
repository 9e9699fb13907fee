"""The console's sign-in page against a broker with authentication on, in a real browser: the
password exchanged for the HttpOnly session cookie, the pages then load, sign-out ends it."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.broker_process import BrokerProcess
from tests.e2e.test_cors_browser import CHROMIUM, CHROMIUM_ARGS, _require_chromium

pytestmark = pytest.mark.e2e

PEPPER = "p1:" + "u" * 40


def test_sign_in_with_a_password_then_sign_out(tmp_path: Path) -> None:
    _require_chromium()
    from playwright.sync_api import sync_playwright

    from app.config import Settings
    from app.security.authn.bootstrap import create_super_key

    data = tmp_path / "data"
    broker = BrokerProcess(data, settings={"auth_enabled": "true", "auth_pepper": PEPPER,
                                           "password_time_cost": 1, "password_memory_cost_kib": 64}).start()
    try:
        admin = create_super_key(settings=Settings(data_dir=data, auth_pepper=PEPPER))
        headers = {"Authorization": f"Bearer {admin}"}
        with httpx.Client(base_url=broker.url, headers=headers) as client:
            dora = {"name": "dora", "password": "explorer map"}
            assert client.post("/v1/users", json=dora).status_code == 201
            assert client.post("/v1/topics", json={"name": "visible"}).status_code == 201
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.set_default_timeout(15_000)
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{broker.url}/ui/#/topics")
            page.wait_for_selector("#login")
            page.fill("#login input[name=username]", "dora")
            page.fill("#login input[name=password]", "wrong password")
            page.click("#login button[type=submit]")
            page.wait_for_selector("#login-status :text('wrong password')")
            page.fill("#login input[name=password]", "explorer map")
            page.click("#login button[type=submit]")
            page.wait_for_selector("#principal:text('User:dora')")
            page.wait_for_selector("text=visible")  # the topics page, over the cookie
            assert page.evaluate("document.cookie") == ""  # HttpOnly: the page cannot read it
            page.click("#sign-out")
            page.wait_for_selector("#login")
            browser.close()
        assert errors == []
    finally:
        broker.stop()
