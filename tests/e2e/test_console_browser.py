"""The web console at /ui in a real browser: Debian's chromium driven by Playwright, against a real
broker process. Every page loads without console errors, and what the pages show is checked against
what the API holds (rows at an offset and at a timestamp, filters, export, lag, reset, live tail).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.broker_process import BrokerProcess
from tests.e2e.test_cors_browser import CHROMIUM, CHROMIUM_ARGS, _require_chromium

pytestmark = pytest.mark.e2e

BASE_TS = 1_700_000_000_000


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    process = BrokerProcess(tmp_path_factory.mktemp("console") / "data").start()
    with process.client() as client:
        assert client.post("/v1/topics", json={"name": "orders", "partitions": 2}).status_code == 201
        records = [
            {
                "key": f"k{i}",
                "value": {"n": i, "city": "Lyon" if i % 3 == 0 else "Oslo"},
                "partition": i % 2,
                "timestamp": BASE_TS + i * 1000,
                "headers": [{"key": "source", "value": "web" if i % 5 == 0 else "batch"}],
            }
            for i in range(40)
        ]
        assert client.post("/v1/topics/orders/records", json={"records": records}).status_code == 200
    yield process
    process.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(10_000)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.console_errors = errors
    yield page
    context.close()


def _rows(page: Any, selector: str) -> list[tuple[str, str]]:
    """(partition, offset) of every row of a records table."""
    return [
        tuple(r)
        for r in page.eval_on_selector_all(
            f"{selector} tbody tr", "rows => rows.map(r => [r.dataset.partition, r.dataset.offset])"
        )
    ]


def test_every_page_loads_without_console_errors(broker: BrokerProcess, page: Any) -> None:
    with broker.client() as client:
        join = client.post(
            "/v1/groups/viewers/members", json={"topics": ["orders"], "auto_offset_reset": "earliest"}
        )
        assert join.status_code == 201, join.text
    views = {
        "": "#brokers",
        "topics": "#topics",
        "topics/orders": "#partitions",
        "topics/orders/messages": "#message-search",
        "topics/orders/tail": "#tail",
        "topics/orders/produce": "#produce",
        "groups": "#groups",
        "groups/viewers": "#group-state",
    }
    for fragment, selector in views.items():
        page.goto(f"{broker.url}/ui/#/{fragment}")
        page.wait_for_selector(selector)
    assert page.console_errors == []
    page.goto(f"{broker.url}/ui/#/")
    assert page.text_content("#brokers tbody") is not None
    assert "sqlite" in page.text_content(".cards")


def test_a_topic_created_through_the_api_appears_and_the_list_pages(broker: BrokerProcess, page: Any) -> None:
    with broker.client() as client:
        for i in range(55):
            assert (
                client.post("/v1/topics", json={"name": f"paged.{i:03d}", "partitions": 1}).status_code == 201
            )
    page.goto(f"{broker.url}/ui/#/topics?filter=paged.")
    page.wait_for_selector("#topics")
    assert page.text_content("#topic-count") == "55 topics"
    names = page.eval_on_selector_all("#topics tbody tr td:first-child", "c => c.map(x => x.textContent)")
    assert names == [f"paged.{i:03d}" for i in range(50)]
    page.click("text=Next")
    page.wait_for_selector("text=Page 2 of 2")
    names = page.eval_on_selector_all("#topics tbody tr td:first-child", "c => c.map(x => x.textContent)")
    assert names == [f"paged.{i:03d}" for i in range(50, 55)]
    assert "page=1" in page.url  # the page is part of the URL
    assert page.console_errors == []


def test_messages_at_an_offset_and_at_a_timestamp(broker: BrokerProcess, page: Any) -> None:
    page.goto(f"{broker.url}/ui/#/topics/orders/messages?partitions=1&start=offset&at=5&max_results=4")
    page.wait_for_selector("table.records")
    # Partition 1 holds i = 1, 3, 5, ... at offsets 0, 1, 2, ...: offsets 5..8 are i = 11, 13, 15, 17.
    assert _rows(page, "table.records") == [("1", "5"), ("1", "6"), ("1", "7"), ("1", "8")]
    values = page.eval_on_selector_all(
        "table.records pre.value", "c => c.map(x => JSON.parse(x.textContent).n)"
    )
    assert values == [11, 13, 15, 17]

    # At a timestamp: the first record at or after BASE_TS + 30 s in each partition (i = 30 and 31).
    page.goto(
        f"{broker.url}/ui/#/topics/orders/messages?start=timestamp&at={BASE_TS + 30_000}&max_results=100"
    )
    page.wait_for_selector("table.records")
    assert _rows(page, "table.records") == [("0", str(o)) for o in range(15, 20)] + [
        ("1", str(o)) for o in range(15, 20)
    ]
    assert "reached the end" in page.text_content("#scan-counters")
    assert page.console_errors == []


def test_filter_budgets_continue_and_url_state_survive_a_reload(broker: BrokerProcess, page: Any) -> None:
    # source=web on i % 5 == 0: i = 0, 10, 20, 30 (partition 0) and 5, 15, 25, 35 (partition 1).
    page.goto(f"{broker.url}/ui/#/topics/orders/messages")
    page.wait_for_selector("#message-search")
    page.select_option("select[name=start]", "oldest")
    page.fill("input[name=filter]", "web")
    page.uncheck("input[name=in_key]")
    page.uncheck("input[name=in_value]")
    page.fill("input[name=max_results]", "3")
    page.click("#message-search button[type=submit]")
    page.wait_for_selector("table.records")
    assert len(_rows(page, "table.records")) == 3
    assert page.text_content("[data-counter=matched]") == "matched 3"
    page.click("#continue")
    page.wait_for_selector("[data-counter=matched]:text-is('matched 6')")
    page.click("#continue")
    page.wait_for_selector("[data-counter=matched]:text-is('matched 8')")
    assert page.text_content("[data-counter=scanned]") == "scanned 40"
    shown = sorted(_rows(page, "table.records"))
    assert shown == sorted(
        [("0", "0"), ("0", "5"), ("0", "10"), ("0", "15"), ("1", "2"), ("1", "7"), ("1", "12"), ("1", "17")]
    )

    page.reload()
    page.wait_for_selector("table.records")
    assert page.input_value("input[name=filter]") == "web"
    assert not page.is_checked("input[name=in_key]")
    assert len(_rows(page, "table.records")) == 3  # the same search, run again from the URL

    # max_scanned is a budget of its own: 4 records looked at, whatever matched.
    page.goto(f"{broker.url}/ui/#/topics/orders/messages?start=oldest&partitions=0&filter=Lyon&max_scanned=4")
    page.wait_for_selector("#scan-counters span")
    page.wait_for_selector("[data-counter=scanned]:text-is('scanned 4')")
    # Partition 0 holds i = 0, 2, 4, 6: Lyon for i = 0 and 6.
    assert _rows(page, "table.records") == [("0", "0"), ("0", "3")]
    assert page.console_errors == []


def test_export_equals_the_rows_shown(broker: BrokerProcess, page: Any, tmp_path: Path) -> None:
    page.goto(
        f"{broker.url}/ui/#/topics/orders/messages?partitions=0&start=offset&at=2&max_results=3&view=text"
    )
    page.wait_for_selector("table.records")
    shown = page.eval_on_selector_all(
        "table.records tbody tr",
        "rows => rows.map(r => [r.dataset.offset, r.querySelector('pre.key').textContent,"
        " r.querySelector('pre.value').textContent])",
    )
    with page.expect_download() as download_info:
        page.click("#export-ndjson")
    path = tmp_path / "export.ndjson"
    download_info.value.save_as(path)
    exported = [json.loads(line) for line in path.read_text().splitlines()]
    assert [[e["offset"], e["key"], e["value"]] for e in exported] == shown
    assert [e["key"] for e in exported] == ["k4", "k6", "k8"]
    assert exported[0]["headers"] == {"source": "batch"}
    with page.expect_download() as download_info:
        page.click("#export-csv")
    csv_path = tmp_path / "export.csv"
    download_info.value.save_as(csv_path)
    lines = csv_path.read_text().splitlines()
    assert lines[0] == "partition,offset,timestamp,key,value,headers"
    assert len(lines) == 4 and lines[1].startswith("0,2,")


def test_a_script_payload_renders_as_text(broker: BrokerProcess, page: Any) -> None:
    payload = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">'
    with broker.client() as client:
        assert client.post("/v1/topics", json={"name": "hostile", "partitions": 1}).status_code == 201
        answer = client.post(
            "/v1/topics/hostile/records",
            json={
                "records": [{"key": payload, "value": payload, "headers": [{"key": "h", "value": payload}]}],
                "value_format": "string",
            },
        )
        assert answer.status_code == 200
    page.goto(f"{broker.url}/ui/#/topics/hostile/messages?start=oldest&view=text")
    page.wait_for_selector("table.records")
    assert page.text_content("pre.value") == payload
    assert page.text_content("pre.key") == payload
    assert page.evaluate("window.pwned") is None
    assert (
        page.query_selector("table.records img") is None
        and page.query_selector("table.records script") is None
    )


def test_the_live_tail_shows_a_produced_record_within_two_seconds(broker: BrokerProcess, page: Any) -> None:
    page.goto(f"{broker.url}/ui/#/topics/orders/tail")
    page.wait_for_selector("#tail-status:text-is('live')")
    with broker.client() as client:
        sent = time.monotonic()
        answer = client.post(
            "/v1/topics/orders/records",
            json={"records": [{"key": "tail", "value": {"live": True}, "partition": 0}]},
        )
        offset = answer.json()["results"][0]["offset"]
    page.wait_for_selector(f"#tail tbody tr[data-offset='{offset}']", timeout=2_000)
    assert time.monotonic() - sent < 2.0
    assert page.text_content("#tail tbody tr pre.key") == "tail"
    # Pause and resume: records produced meanwhile arrive after the resume (the cursor is kept).
    page.click("#tail-pause")
    with broker.client() as client:
        client.post(
            "/v1/topics/orders/records",
            json={"records": [{"key": "while-paused", "value": 1, "partition": 0}]},
        )
    page.click("#tail-pause")
    page.wait_for_selector(f"#tail tbody tr[data-offset='{offset + 1}']", timeout=5_000)
    assert page.console_errors == []


def test_the_live_tail_keeps_a_bounded_number_of_rows(broker: BrokerProcess, page: Any) -> None:
    with broker.client() as client:
        assert client.post("/v1/topics", json={"name": "fast", "partitions": 1}).status_code == 201
    page.goto(f"{broker.url}/ui/#/topics/fast/tail?keep=10")
    page.wait_for_selector("#tail-status:text-is('live')")
    with broker.client() as client:
        client.post("/v1/topics/fast/records", json={"records": [{"value": i} for i in range(35)]})
    page.wait_for_selector("#tail-dropped:has-text('35 received')")
    assert page.text_content("#tail-dropped") == "35 received · showing 10 · dropped 25"
    assert _rows(page, "#tail")[0] == ("0", "34")


def test_produce_from_the_console_round_trips(broker: BrokerProcess, page: Any) -> None:
    page.goto(f"{broker.url}/ui/#/topics/orders/produce")
    page.wait_for_selector("#produce")
    page.fill("input[name=key]", "from-ui")
    page.fill("textarea[name=value]", '{"made": "in the console"}')
    page.fill("textarea[name=headers]", "origin=console")
    page.select_option("select[name=partition]", "1")
    page.click("#produce button[type=submit]")
    page.wait_for_selector("#produce-result .notice.info")
    text = page.text_content("#produce-result .notice")
    offset = int(text.rsplit(" ", 1)[1])
    with broker.client() as client:
        got = client.get(f"/v1/topics/orders/partitions/1/records?offset={offset}&max_records=1").json()[
            "records"
        ][0]
    assert got["key"] == "from-ui" and got["value"] == {"made": "in the console"}
    assert got["headers"] == [{"key": "origin", "value": "console"}]


def test_lag_drops_after_a_consumer_reads_and_reset_needs_an_empty_group(
    broker: BrokerProcess, page: Any
) -> None:
    with broker.client() as client:
        # Committed at the start while the group is empty (an admin commit), then a member joins.
        commit = client.post(
            "/v1/groups/lagging/offsets",
            json={
                "offsets": [
                    {"topic": "orders", "partition": 0, "offset": 0},
                    {"topic": "orders", "partition": 1, "offset": 0},
                ]
            },
        )
        assert commit.status_code == 204, commit.text
        member = client.post(
            "/v1/groups/lagging/members", json={"topics": ["orders"], "auto_offset_reset": "earliest"}
        ).json()["member_id"]
        before = client.get("/v1/groups/lagging").json()["total_lag"]
        assert before > 0
        page.goto(f"{broker.url}/ui/#/groups/lagging")
        page.wait_for_selector("#group-lag")
        assert page.text_content("#group-lag") == str(before)

        # While the member is there, the broker refuses a reset and the page says why.
        page.fill("#reset-offsets input[name=topics]", "orders")
        page.select_option("#reset-offsets select[name=to]", "earliest")
        page.click("#reset-offsets button[name=apply]")
        page.wait_for_selector("#reset-result .notice.error")
        assert "40903" in page.text_content("#reset-result")

        polled = client.get(
            f"/v1/groups/lagging/members/{member}/records", params={"max_records": 1000}
        ).json()
        assert polled["records"]
        commit = client.post(
            "/v1/groups/lagging/offsets",
            json={"member_id": member, "generation": polled["generation"], "offsets": polled["positions"]},
        )
        assert commit.status_code == 204, commit.text
        after = client.get("/v1/groups/lagging").json()["total_lag"]
        assert after < before
        page.reload()
        page.wait_for_selector("#group-lag")
        assert page.text_content("#group-lag") == str(after)
        client.delete(f"/v1/groups/lagging/members/{member}")

    # Empty now: a dry run shows the change and changes nothing; the reset applies it.
    page.reload()
    page.wait_for_selector("#reset-offsets")
    page.fill("#reset-offsets input[name=topics]", "orders")
    page.select_option("#reset-offsets select[name=to]", "earliest")
    page.click("#reset-offsets button[name=dry_run]")
    page.wait_for_selector("#reset-result .notice.info")
    assert "Dry run" in page.text_content("#reset-result")
    with httpx.Client(base_url=broker.url) as client:
        assert client.get("/v1/groups/lagging").json()["total_lag"] == after
    page.click("#reset-offsets button[name=apply]")
    page.wait_for_selector("#reset-result >> text=Offsets reset")
    with httpx.Client(base_url=broker.url) as client:
        partitions = client.get("/v1/topics/orders").json()["partitions"]
        held = sum(p["high_watermark"] - p["log_start_offset"] for p in partitions)
        assert client.get("/v1/groups/lagging").json()["total_lag"] == held  # back at the earliest
    # The one error the browser logs is the refused reset's answer (409), which the page showed.
    assert [e for e in page.console_errors if "409" not in e] == []
