"""Shared fixtures: ``settings``, ``app``, ``client`` (TestClient), ``pg_url`` (a private PostgreSQL
schema) and ``broker_process`` / ``broker_factory`` (real ``tidelog serve`` processes on free ports).

Every app gets its own data directory under ``tmp_path`` and its own SQLite catalog, so tests never
share state. PostgreSQL tests get a schema of their own (``search_path`` set through the URL's
``options``), dropped afterwards, so parallel runs on one server do not collide. PostgreSQL that
cannot be reached skips those tests with the reason, except under ``CI=true``, where it fails them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import settings as hypothesis_settings

from tests.broker_process import BrokerProcess

# Property tests check properties, not speed: a deadline only turns a busy machine into a failure
# (HealthCheck.too_slow stays on, so a strategy that is really too slow is still reported).
hypothesis_settings.register_profile("tidelog", deadline=None)
hypothesis_settings.load_profile("tidelog")

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Override in a module or test to change the ``settings`` fixture (e.g. lower limits)."""
    return {}


@pytest.fixture
def settings(data_dir: Path, settings_overrides: dict[str, Any]) -> Any:
    from app.config import Settings

    # Retention runs only when a test asks for it: the scheduler's period is long by default here.
    values: dict[str, Any] = {"data_dir": data_dir, "log_retention_check_interval_ms": 3_600_000}
    values.update(settings_overrides)
    return Settings(**values)


@pytest.fixture
def app(settings: Any) -> Any:
    from app.main import create_app

    return create_app(settings)


@pytest.fixture
def client(app: Any) -> Iterator[Any]:
    """A TestClient with the app's lifespan running (catalog migrated, Broker started)."""
    from fastapi.testclient import TestClient

    with TestClient(app) as test_client:
        yield test_client


def _postgres_url() -> str:
    return os.environ.get("TIDELOG_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)


def _unreachable(reason: str) -> None:
    message = f"PostgreSQL at {_postgres_url()} unreachable: {reason}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + " (CI=true: PostgreSQL tests must run)")
    pytest.skip(message)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL catalog URL whose ``search_path`` is a fresh schema, dropped after the test."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    from app.catalog.db import normalise_url

    base = normalise_url(_postgres_url())
    schema = f"tidelog_test_{uuid.uuid4().hex[:12]}"
    engine = create_engine(base, connect_args={"connect_timeout": 3})
    try:
        with engine.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError as exc:
        engine.dispose()
        _unreachable(str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc))
    separator = "&" if "?" in base else "?"
    url = f"{base}{separator}options={quote(f'-csearch_path={schema}')}"
    try:
        yield url
    finally:
        with engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture
def broker_factory(tmp_path: Path) -> Iterator[Callable[..., BrokerProcess]]:
    """``start(name="b0", **settings)`` → a started BrokerProcess; every one is stopped at teardown.

    Brokers share a catalog when given the same ``catalog_url``; each has its own data directory.
    """
    started: list[BrokerProcess] = []

    def start(
        name: str = "broker", *, env: dict[str, str] | None = None, **settings: object
    ) -> BrokerProcess:
        broker = BrokerProcess(tmp_path / name / "data", settings=settings, env=env)
        started.append(broker)
        return broker.start()

    yield start
    for broker in started:
        if broker.running:
            broker.stop()


@pytest.fixture
def broker_process(broker_factory: Callable[..., BrokerProcess]) -> BrokerProcess:
    """One real broker (``tidelog serve``) with its own data dir and SQLite catalog; ``.url`` is its
    base URL, ``.stop()`` sends SIGTERM, ``.kill()`` SIGKILL, ``.restart()`` brings it back."""
    return broker_factory("broker")
