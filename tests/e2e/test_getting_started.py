"""docs/getting-started.md, run as written: its blocks are extracted in order and executed.

Each fenced block of the page is one step. A comment on the line before a block says what it is:
``<!-- skip: … -->`` (not run: `make run`, createdb), ``<!-- file: NAME -->`` (saved as NAME),
``<!-- background: NAME -->`` (started and left running, as in a second terminal); any other shell
block is run with bash and its output checked. The page's ports (8080, 3000, 9090-9092) and its
PostgreSQL URL are replaced with free ports and a private schema of ``TIDELOG_TEST_POSTGRES_URL``;
everything else runs verbatim in a temporary directory whose ``.venv`` is the project's. The browser
step opens the page in Debian's chromium (Playwright) and waits for the records to appear.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
import pytest

from tests.broker_process import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

PAGE = Path(__file__).resolve().parents[2] / "docs" / "getting-started.md"
PAGE_CATALOG = "postgresql://postgres@127.0.0.1:5432/tidelog"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-dev-shm-usage", "--no-first-run", "--disable-extensions"]
_MARKER = re.compile(r"<!--\s*(skip|file|background)\s*:\s*(.*?)\s*-->")


@dataclass(frozen=True, slots=True)
class Block:
    language: str
    text: str
    kind: str  # run | skip | file | background
    argument: str


def page_blocks(text: str) -> list[Block]:
    """The fenced blocks of the page in order, each with the marker of the line before it."""
    blocks: list[Block] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        fence = re.match(r"^```(\w*)\s*$", lines[index])
        if fence is None:
            index += 1
            continue
        marker = _MARKER.search(lines[index - 1]) if index > 0 else None
        body: list[str] = []
        index += 1
        while not lines[index].startswith("```"):
            body.append(lines[index])
            index += 1
        index += 1
        kind, argument = (marker.group(1), marker.group(2)) if marker else ("run", "")
        blocks.append(Block(fence.group(1), "\n".join(body) + "\n", kind, argument))
    return blocks


def test_page_blocks_are_all_understood() -> None:
    blocks = page_blocks(PAGE.read_text())
    for block in blocks:
        if block.kind == "run":
            assert block.language == "sh", f"an unmarked {block.language or 'plain'} block: {block.text}"
        if block.kind == "file":
            assert block.argument and not block.argument.startswith("/")
    kinds = [block.kind for block in blocks]
    assert kinds.count("background") == 3 and kinds.count("file") == 3 and kinds.count("skip") == 3


def _consecutive_free_ports(count: int) -> int:
    for _ in range(50):
        base = free_port()
        if base + count > 65535:
            continue
        try:
            for port in range(base, base + count):
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise AssertionError("no consecutive free ports")


class PageRun:
    """The page's shell, files and background processes in one directory."""

    def __init__(self, directory: Path, substitutions: dict[str, str]) -> None:
        self.directory = directory
        self.substitutions = substitutions
        self.background: dict[str, tuple[subprocess.Popen[bytes], IO[bytes]]] = {}
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TIDELOG_")}
        self.brokers: list[int] = []  # the pids the page wrote to brokers.pid

    def substitute(self, text: str) -> str:
        for old, new in self.substitutions.items():
            text = re.sub(rf"(?<![\w.]){re.escape(old)}(?!\w)", new, text)
        return text

    def run(self, block: Block, timeout_s: float = 180) -> str:
        script = self.substitute(block.text)
        done = subprocess.run(["bash", "-e", "-c", script], cwd=self.directory, env=self.env,
                              capture_output=True, text=True, timeout=timeout_s)
        pids = self.directory / "brokers.pid"
        if pids.exists():
            self.brokers = [int(line) for line in pids.read_text().split()]
        assert done.returncode == 0, f"{script}\nexit {done.returncode}\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def write(self, block: Block) -> None:
        path = self.directory / block.argument
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.substitute(block.text))

    def start(self, block: Block) -> None:
        log = (self.directory / f"{block.argument}.out").open("wb")
        process = subprocess.Popen(["bash", "-c", "exec 2>&1\n" + self.substitute(block.text)],
                                   cwd=self.directory, env=self.env, stdout=log,
                                   start_new_session=True)
        self.background[block.argument] = (process, log)

    def stop_background(self) -> None:
        for process, log in self.background.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)  # its own session: the shell and its broker
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=10)
            log.close()
        self.background.clear()


@pytest.fixture
def page_run(tmp_path: Path, pg_url: str) -> Iterator[PageRun]:
    directory = tmp_path / "clone"
    directory.mkdir()
    (directory / ".venv").symlink_to(Path(sys.prefix))
    base = _consecutive_free_ports(3)
    substitutions = {
        "8080": str(free_port()),
        "3000": str(free_port()),
        "9090": str(base),
        "9091": str(base + 1),
        "9092": str(base + 2),
        PAGE_CATALOG: pg_url,
    }
    run = PageRun(directory, substitutions)
    try:
        yield run
    finally:
        run.stop_background()
        for pid in run.brokers:  # the cleanup step did not run: stop what the page started
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            _wait_gone(pid, 30)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_gone(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    return not _alive(pid)


def _json_lines(output: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def _open_page_in_chromium(url: str, count: int) -> list[str]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium "
                    "(`apt-get update && apt-get install -y chromium`; .ci/run does this)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(url)
            page.wait_for_function(f"document.querySelectorAll('#orders li').length >= {count}",
                                   timeout=60_000)
            items: list[str] = page.eval_on_selector_all(
                "#orders li", "items => items.map(i => i.textContent)")
        finally:
            browser.close()
    return items


def _wait_http(url: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} never answered 200")


def test_getting_started_runs_as_written(page_run: PageRun) -> None:
    blocks = page_blocks(PAGE.read_text())
    outputs: list[str] = []
    for block in blocks:
        if block.kind == "skip":
            continue
        if block.kind == "file":
            page_run.write(block)
            continue
        if block.kind == "background":
            if block.argument == "broker-cors":  # "Stop the broker (Ctrl-C in its terminal)"
                page_run.stop_background()
            page_run.start(block)
            if block.argument == "page-server":
                page_url = f"http://localhost:{page_run.substitutions['3000']}/"
                _wait_http(page_url)
                items = _open_page_in_chromium(page_url, 10)
                assert len(items) == 10
                assert any(item.startswith("customer-0: order 0 ") for item in items), items
            continue
        if "--cluster" in block.text:  # "Stop the single broker and the page server first"
            page_run.stop_background()
        outputs.append(page_run.run(block))

    (ready, produced, consumed, curl_group, ready_cors, preflight, cluster_started, cluster_topic,
     replicated, cleaned) = outputs
    assert _json_lines(ready) == [{"status": "ready"}]
    assert "sent 10 orders" in produced
    assert sum(int(str(o["high_watermark"])) for o in _json_lines(produced)) == 10
    assert "billing has read all 10 orders" in consumed
    billing = _json_lines(consumed)
    assert sum(int(str(o["offset"])) for o in billing) == 10 and {o["lag"] for o in billing} == {0}
    records = [line for line in _json_lines(curl_group) if "key" in line]
    assert len(records) == 10
    assert curl_group.splitlines().count("204") == 2
    audit = [line for line in _json_lines(curl_group) if "lag" in line]
    assert sum(int(str(o["offset"])) for o in audit) == 10
    assert _json_lines(ready_cors) == [{"status": "ready"}]
    origin = f"http://localhost:{page_run.substitutions['3000']}"
    assert preflight.strip().lower() == f"access-control-allow-origin: {origin}".lower()
    assert cluster_started == "" and len(page_run.brokers) == 3
    assert "3 brokers alive" in cluster_topic
    assert {"name": "payments", "partition_count": 3, "replication_factor": 3} in _json_lines(cluster_topic)
    assert {"offset": 0, "key": "p-1", "value": {"amount": 12}} in _json_lines(replicated)
    assert cleaned == ""
    for pid in page_run.brokers:
        assert _wait_gone(pid, 30), f"broker {pid} still running after the cleanup step"
    assert not (page_run.directory / "data").exists()
