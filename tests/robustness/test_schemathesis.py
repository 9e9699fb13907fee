"""Property-based API fuzzing with schemathesis over the app in-process (ASGI), fresh data directory.

Every operation of the committed spec gets a bounded number of generated requests; each answer must
not be a 5xx, must have a documented status and content type, and must match its documented schema.
Endless event streams are left out (an in-process call would never end; tests/e2e covers them), and
long polls are capped at a few milliseconds so the run stays within a few minutes.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.slow

EXAMPLES_PER_OPERATION = 40


# NDJSON produce bodies are documented as strings: send them as they are (text/plain's serializer).
schemathesis.serializer.alias("application/x-ndjson", "text/plain")


def _app() -> Any:
    """The app on a data directory of its own (the lifespan starts with schemathesis's first call)."""
    from app.config import Settings
    from app.main import create_app

    data_dir = Path(tempfile.mkdtemp(prefix="tidelog-schemathesis-")) / "data"
    data_dir.mkdir()
    return create_app(
        Settings(
            data_dir=data_dir,
            log_retention_check_interval_ms=3_600_000,
            fetch_max_wait_ms=20,
            group_min_session_timeout_ms=10,
        )
    )


schema = schemathesis.openapi.from_asgi("/openapi.json", _app()).exclude(path_regex=r"/events$")


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_server_errors_and_answers_conform(case: Any) -> None:
    case.call_and_validate(
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ]
    )
