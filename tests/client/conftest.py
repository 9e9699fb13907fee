"""One real broker process for this directory's tests (started once per module: each test makes its
own topics and groups, so they do not see each other's records)."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.broker_process import BrokerProcess

_names = itertools.count()


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    data: Path = tmp_path_factory.mktemp("client-broker") / "data"
    # Short group sessions so that take-over tests finish in seconds.
    process = BrokerProcess(data, settings={"group_min_session_timeout_ms": 500}).start()
    yield process
    if process.running:
        process.stop()


@pytest.fixture
def topic_name(request: pytest.FixtureRequest) -> str:
    """A topic name no other test uses."""
    return f"t{next(_names)}-" + re.sub(r"[^a-zA-Z0-9._-]", "-", request.node.name[:40])
