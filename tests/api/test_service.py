"""Service endpoints and cross-cutting behaviour: health, readiness, cluster, metrics, the error
translation table, request limits (413, 503 overload), the retention scheduler, settings and the CLI."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.config import Settings
from app.error_codes import ErrorCode
from app.errors import install_error_handlers
from app.errors_base import InvalidParameterError
from app.limits import RequestLimits
from app.main import create_app
from app.metrics import Metrics
from app.middleware import LimitsMiddleware
from storage import errors as storage_errors
from tests.api.test_topics import assert_problem

# --- health, readiness, cluster


def test_healthz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_once_started(client: TestClient) -> None:
    assert client.get("/readyz").json() == {"status": "ready"}


def test_readyz_is_503_before_the_lifespan_ran(app: FastAPI) -> None:
    client = TestClient(app)  # no ``with``: the lifespan never starts
    body = assert_problem(client.get("/readyz"), 503, 50302)
    assert "created" in body["detail"]
    assert client.get("/readyz").headers["retry-after"] == "1"
    assert client.get("/healthz").status_code == 200


def test_readyz_is_503_while_stopping(client: TestClient) -> None:
    client.app.state.phase = "stopping"  # type: ignore[attr-defined]
    assert_problem(client.get("/readyz"), 503, 50302)
    client.app.state.phase = "ready"  # type: ignore[attr-defined]


def test_cluster(client: TestClient, settings: Settings) -> None:
    body = client.get("/v1/cluster").json()
    assert body == {
        "broker_id": 0,
        "controller_id": 0,
        "advertised_url": "http://127.0.0.1:8080",
        "version": client.app.version,  # type: ignore[attr-defined]
        "brokers": [{"broker_id": 0, "url": "http://127.0.0.1:8080", "state": "alive"}],
        "under_replicated_partitions": [],
    }


def test_cluster_uses_broker_id_and_advertised_url(data_dir: Path) -> None:
    settings = Settings(data_dir=data_dir, broker_id=7, advertised_url="https://broker-7.example:9443/")
    with TestClient(create_app(settings)) as client:
        body = client.get("/v1/cluster").json()
    assert body["broker_id"] == body["controller_id"] == 7
    assert body["advertised_url"] == "https://broker-7.example:9443"
    assert body["brokers"][0]["url"] == "https://broker-7.example:9443"


# --- metrics


def _sample(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{key}="{value}"' in line for key, value in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {name} {labels} in:\n{text}")


def test_metrics_count_requests_by_operation(client: TestClient) -> None:
    client.post("/v1/topics", json={"name": "orders", "partitions": 2})
    client.get("/v1/topics/orders")
    client.get("/v1/topics/nope")
    client.get("/no/such/route")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert _sample(text, "tidelog_requests_total", operation="topics-create_topic", status="201") == 1
    assert _sample(text, "tidelog_requests_total", operation="topics-get_topic", status="200") == 1
    assert _sample(text, "tidelog_requests_total", operation="topics-get_topic", status="404") == 1
    assert _sample(text, "tidelog_requests_total", operation="unmatched", status="404") == 1
    assert _sample(text, "tidelog_request_duration_seconds_count", operation="topics-create_topic") == 1
    bucket = "tidelog_request_duration_seconds_bucket"
    assert _sample(text, bucket, operation="topics-get_topic", le="+Inf") == 2
    # Partition gauges come from the Broker at scrape time.
    assert _sample(text, "tidelog_partition_size_bytes", topic="orders", partition="1") >= 0
    assert _sample(text, "tidelog_partition_segments", topic="orders", partition="0") == 1
    assert _sample(text, "tidelog_partition_log_end_offset", topic="orders", partition="0") == 0
    # Data-path counters exist for the data path to increment.
    metrics: Metrics = client.app.state.metrics  # type: ignore[attr-defined]
    metrics.produced_records.labels("orders").inc(3)
    assert _sample(client.get("/metrics").text, "tidelog_produced_records_total", topic="orders") == 3


def test_each_app_has_its_own_metrics(data_dir: Path, tmp_path: Path) -> None:
    first = create_app(Settings(data_dir=data_dir))
    second = create_app(Settings(data_dir=tmp_path / "other"))
    with TestClient(first) as a, TestClient(second) as b:
        a.get("/v1/topics")
        a.get("/v1/topics")
        b.get("/v1/topics")
        assert _sample(a.get("/metrics").text, "tidelog_requests_total", operation="topics-list_topics") == 2
        assert _sample(b.get("/metrics").text, "tidelog_requests_total", operation="topics-list_topics") == 1


# --- the retention scheduler


@pytest.mark.parametrize("settings_overrides", [{"log_retention_check_interval_ms": 100}])
def test_retention_runs_on_schedule_and_deletes_segments(client: TestClient, settings: Settings) -> None:
    from storage import RecordIn

    created = client.post("/v1/topics", json={
        "name": "old", "configs": {"retention.ms": 1000, "segment.bytes": 1024}})
    assert created.status_code == 201
    broker = client.app.state.broker  # type: ignore[attr-defined]
    (log,) = [h.log for h in broker.iter_handles() if h.topic == "old"]
    long_ago = int(time.time() * 1000) - 3_600_000
    for _ in range(8):  # ~8 segments of records an hour old, then a fresh active segment
        log.append_records([RecordIn(value=b"x" * 300, timestamp=long_ago) for _ in range(4)])
    assert log.segment_count > 2
    scheduler = client.app.state.retention_scheduler  # type: ignore[attr-defined]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (scheduler.runs < 2 or log.segment_count > 1):
        time.sleep(0.05)
    assert scheduler.runs >= 2
    assert log.segment_count == 1
    assert log.log_start_offset > 0
    text = client.get("/metrics").text
    assert _sample(text, "tidelog_retention_runs_total", outcome="ok") >= 2
    assert _sample(text, "tidelog_retention_segments_deleted_total") >= 7


async def test_scheduler_counts_failures_and_keeps_going() -> None:
    from app.scheduler import RetentionScheduler

    class Failing:
        calls = 0

        def enforce_retention(self) -> Any:
            self.calls += 1
            raise OSError("disk on fire")

    metrics = Metrics()
    target = Failing()
    scheduler = RetentionScheduler(target, metrics, interval_ms=100)
    scheduler.start()
    deadline = time.monotonic() + 5
    while target.calls < 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    await scheduler.stop()
    assert target.calls >= 2
    assert metrics.retention_runs.labels("error")._value.get() >= 2


# --- the error table


def _app_raising(exc: Exception) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/boom")
    async def boom() -> None:
        raise exc

    return app


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (storage_errors.OffsetOutOfRangeError(50, 10, 20), 416, 41601),
        (storage_errors.RecordTooLargeError(2000, 1000), 413, 41301),
        (storage_errors.InvalidRecordError("no records"), 400, 40002),
        (storage_errors.UnsupportedCompressionError("snappy"), 422, 42204),
        (storage_errors.OutOfOrderSequenceError("gap"), 409, 40906),
        (storage_errors.ProducerFencedError("old epoch"), 409, 40905),
        (storage_errors.UnknownProducerIdError("who"), 404, 40405),
        (storage_errors.LogClosedError("closed"), 503, 50302),
        (storage_errors.CorruptRecordError("crc"), 500, 50002),
        (InvalidParameterError("max_wait_ms too large", limit=30000), 422, 42204),
        (RuntimeError("a bug"), 500, 50001),
    ],
)
def test_error_translation(exc: Exception, status: int, code: int) -> None:
    client = TestClient(_app_raising(exc), raise_server_exceptions=False)
    body = assert_problem(client.get("/boom"), status, code)
    if isinstance(exc, storage_errors.OffsetOutOfRangeError):
        assert (body["offset"], body["log_start_offset"], body["log_end_offset"]) == (50, 10, 20)
    if isinstance(exc, InvalidParameterError):
        assert body["limit"] == 30000
    if isinstance(exc, RuntimeError):
        assert "a bug" not in body["detail"]  # internals are logged, not answered


def test_every_error_code_has_a_distinct_type_and_title() -> None:
    from app.errors import problem_body

    types = {problem_body(code, "x")["type"] for code in ErrorCode}
    assert len(types) == len(ErrorCode)
    for code in ErrorCode:
        body = problem_body(code, "x")
        assert body["status"] == code.http_status
        assert re.fullmatch(r"https://tidelog\.dev/errors/[a-z-]+", body["type"])


def test_unknown_route_and_method(client: TestClient) -> None:
    assert_problem(client.get("/v2/nothing"), 404, 40499)
    response = client.put("/healthz")
    assert_problem(response, 405, 40501)
    assert "GET" in response.headers["allow"]
    assert_problem(client.delete("/v1/topics"), 405, 40501)


# --- request limits


@pytest.mark.parametrize("settings_overrides", [{"max_request_bytes": 2048}])
def test_body_over_the_limit_is_413(client: TestClient) -> None:
    big = json.dumps({"name": "orders", "configs": {"x" * 3000: 1}}).encode()
    body = assert_problem(
        client.post("/v1/topics", content=big, headers={"content-type": "application/json"}), 413, 41302
    )
    assert body["limit"] == 2048

    def chunks() -> Any:  # no Content-Length: the limit is applied as the body streams in
        yield b'{"name": "orders", "configs": {"'
        for _ in range(10):
            yield b"y" * 400
        yield b'": 1}}'

    assert_problem(
        client.post("/v1/topics", content=chunks(), headers={"content-type": "application/json"}), 413, 41302
    )
    assert client.get("/v1/topics").json() == {"topics": [], "total": 0}
    assert client.post("/v1/topics", json={"name": "small"}).status_code == 201


async def test_overload_answers_503_with_retry_after() -> None:
    """Beyond max_inflight requests being served, the next is refused at once, not queued."""
    release = asyncio.Event()
    entered = asyncio.Event()

    async def slow_app(scope: Any, receive: Any, send: Any) -> None:
        if scope["path"] == "/slow":
            entered.set()
            await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})

    metrics = Metrics()
    limits = RequestLimits(
        max_inflight=1, max_parked=1, max_parked_per_client=1, max_streams=1, max_streams_per_client=1
    )
    limited = LimitsMiddleware(slow_app, limits=limits, max_body_bytes=1024, retry_after_s=2, metrics=metrics)
    transport = httpx.ASGITransport(app=limited)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        slow = asyncio.create_task(http.get("/slow"))
        await asyncio.wait_for(entered.wait(), 5)
        refused = await http.get("/fast")
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "2"
        assert refused.json()["error_code"] == 50303
        assert (await http.get("/healthz")).status_code == 200  # probes are never refused
        release.set()
        assert (await slow).text == "done"
        assert (await http.get("/fast")).status_code == 200  # the slot was given back
    assert metrics.rejected_requests.labels("overloaded")._value.get() == 1


# --- settings and the CLI


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TIDELOG_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("TIDELOG_PORT", "9093")
    monkeypatch.setenv("TIDELOG_LOG_RETENTION_CHECK_INTERVAL_MS", "1000")
    settings = Settings()
    assert settings.data_dir == tmp_path / "d"
    assert settings.port == 9093
    assert settings.log_retention_check_interval_ms == 1000
    assert settings.effective_catalog_url == f"sqlite:///{(tmp_path / 'd' / 'catalog.db').as_posix()}"
    assert settings.effective_advertised_url == "http://127.0.0.1:9093"
    assert Settings(catalog_url="postgresql://x/y").effective_catalog_url == "postgresql://x/y"


def test_settings_refuse_nonsense() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        Settings(port=70000)
    with pytest.raises(ValidationError):
        Settings(group_min_session_timeout_ms=10, group_max_session_timeout_ms=5)
    with pytest.raises(ValidationError):
        Settings(not_a_setting=1)  # type: ignore[call-arg]


def test_every_setting_is_a_serve_flag() -> None:
    from app.cli import SERVE_SETTINGS_OPTIONS

    flags = {flag for flag, _kind, _help in SERVE_SETTINGS_OPTIONS}
    assert flags == {"--" + name.replace("_", "-") for name in Settings.model_fields}


def test_every_command_has_help() -> None:
    from tidelog.cli import main

    runner = CliRunner()
    for name in ("serve", "migrate", "openapi"):
        result = runner.invoke(main, [name, "--help"])
        assert result.exit_code == 0, result.output
        assert main.commands[name].help
    assert "--log-retention-check-interval-ms" in runner.invoke(main, ["serve", "--help"]).output


def test_cli_module_imports_only_click() -> None:
    import subprocess
    import sys

    code = ("import sys, app.cli; heavy = [m for m in ('fastapi', 'sqlalchemy', 'storage', 'pydantic') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_serve_refuses_bad_settings() -> None:
    from tidelog.cli import main

    result = CliRunner().invoke(main, ["serve", "--group-min-session-timeout-ms", "10",
                                       "--group-max-session-timeout-ms", "5"])
    assert result.exit_code == 2
    assert "invalid settings" in result.output
    assert CliRunner().invoke(main, ["serve", "--port", "http"]).exit_code == 2


def test_migrate_command(tmp_path: Path) -> None:
    from tidelog.cli import main

    result = CliRunner().invoke(main, ["migrate", "--data-dir", str(tmp_path / "d")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "d" / "catalog.db").exists()
    assert "catalog at revision" in result.output
    bad = CliRunner().invoke(main, ["migrate", "--catalog-url", "postgresql://nobody@127.0.0.1:1/none"])
    assert bad.exit_code == 1
    assert "cannot migrate the catalog" in bad.output


def test_openapi_command_prints_the_spec(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from tidelog.cli import main

    monkeypatch.setenv("TIDELOG_DATA_DIR", str(tmp_path / "unused"))
    result = CliRunner().invoke(main, ["openapi"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == create_app(Settings()).openapi()
    assert not (tmp_path / "unused").exists()  # printing the spec opens nothing


def test_metrics_labels_stay_bounded(client: TestClient) -> None:
    for i in range(5):
        client.request(f"BREW{i}", "/v1/topics")
    text = client.get("/metrics").text
    assert "BREW" not in text
    assert _sample(text, "tidelog_requests_total", method="OTHER", status="405") == 5


def test_begin_shutdown_sets_the_stopping_event(client: TestClient) -> None:
    from app.main import begin_shutdown

    app: Any = client.app
    assert not app.state.stopping.is_set()
    begin_shutdown(app)
    assert_problem(client.get("/readyz"), 503, 50302)
    deadline = time.monotonic() + 5
    while not app.state.stopping.is_set() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert app.state.stopping.is_set()
