"""``cluster``: three ``tidelog serve --cluster`` processes sharing a fresh PostgreSQL schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.harness import Cluster


@pytest.fixture
def cluster(tmp_path: Path, pg_url: str) -> Iterator[Cluster]:
    started = Cluster(tmp_path, pg_url, size=3)
    try:
        started.start()
        started.wait_alive({0, 1, 2})
        yield started
    finally:
        started.stop()
