"""The web console: ``python -m bench.console_bench [--topics N] [--repeat R] [--screenshots DIR]``.

Starts its own ``tidelog serve`` (fresh data directory, SQLite catalog), creates ``--topics`` topics
(default 1,000) and measures in Debian's chromium, driven by Playwright, the time from navigating to
``/ui/#/topics`` until the first page of the list is rendered (target: ≤ 1 s with 1,000 topics), and
the time of a messages search scanning 10,000 records. ``--screenshots`` also writes the main pages
as PNG files (docs/img/console-*.png, shown in docs/console.md).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from bench.http_bench import Broker

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]


def _seed(url: str, topics: int) -> None:
    with httpx.Client(base_url=url, timeout=60) as client:
        for i in range(topics):
            client.post(
                "/v1/topics", json={"name": f"bench.topic.{i:05d}", "partitions": 1}
            ).raise_for_status()
        client.post("/v1/topics", json={"name": "orders", "partitions": 3}).raise_for_status()
        for start in range(0, 10_000, 1_000):
            records = [
                {
                    "key": f"customer-{i % 97}",
                    "value": {"order": i, "total": i * 3 % 1000, "city": "Lyon"},
                    "headers": [{"key": "source", "value": "web" if i % 10 == 0 else "batch"}],
                }
                for i in range(start, start + 1_000)
            ]
            client.post("/v1/topics/orders/records", json={"records": records}).raise_for_status()
        member = client.post(
            "/v1/groups/billing/members", json={"topics": ["orders"], "auto_offset_reset": "earliest"}
        ).json()
        polled = client.get(
            f"/v1/groups/billing/members/{member['member_id']}/records", params={"max_records": 4000}
        ).json()
        client.post(
            "/v1/groups/billing/offsets",
            json={
                "member_id": member["member_id"],
                "generation": polled["generation"],
                "offsets": polled["positions"],
            },
        ).raise_for_status()


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.console_bench", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--topics", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--screenshots", type=Path, default=None)
    options = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, Broker(Path(tmp) / "data") as broker:
        _seed(broker.url, options.topics)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.goto(f"{broker.url}/ui/#/")
            page.wait_for_selector("#brokers")
            list_times = []
            for _ in range(options.repeat):
                page.goto(f"{broker.url}/ui/#/groups")
                page.wait_for_selector("#groups")
                started = time.perf_counter()
                page.goto(f"{broker.url}/ui/#/topics")
                page.wait_for_selector("#topics tbody tr")
                list_times.append(time.perf_counter() - started)
            search_times = []
            for _ in range(options.repeat):
                page.goto(f"{broker.url}/ui/#/topics/orders")
                page.wait_for_selector("#partitions")
                started = time.perf_counter()
                page.goto(
                    f"{broker.url}/ui/#/topics/orders/messages?start=oldest&filter=nowhere&max_scanned=10000"
                )
                page.wait_for_selector("[data-counter=scanned]:text-is('scanned 10000')", timeout=120_000)
                search_times.append(time.perf_counter() - started)
            total = options.topics + 1
            print(
                f"topic list, {total} topics, first page rendered: "
                f"median {statistics.median(list_times) * 1000:.0f} ms "
                f"(min {min(list_times) * 1000:.0f}, max {max(list_times) * 1000:.0f}; target <= 1000 ms)"
            )
            print(
                f"messages search scanning 10,000 records (3 partitions): "
                f"median {statistics.median(search_times):.2f} s "
                f"(min {min(search_times):.2f}, max {max(search_times):.2f})"
            )
            if options.screenshots:
                _screenshots(page, broker.url, options.screenshots)
            browser.close()
    return 0


def _screenshots(page: object, url: str, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    shots = {
        "overview": ("#/", "#brokers"),
        "topics": ("#/topics?filter=bench.topic.000", "#topics"),
        "topic": ("#/topics/orders", "#topic-groups table"),
        "messages": (
            "#/topics/orders/messages?partitions=0&start=offset&at=100&max_results=8&filter=web",
            "table.records",
        ),
        "group": ("#/groups/billing", "#group-offsets"),
    }
    for name, (fragment, selector) in shots.items():
        page.goto(f"{url}/ui/{fragment}")  # type: ignore[attr-defined]
        page.wait_for_selector(selector)  # type: ignore[attr-defined]
        page.screenshot(path=str(directory / f"console-{name}.png"), full_page=False)  # type: ignore[attr-defined]
        print(f"wrote {directory / f'console-{name}.png'}")


if __name__ == "__main__":
    raise SystemExit(main())
