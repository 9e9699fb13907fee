"""An SDK generated from ``openapi/openapi.json`` with openapi-python-client works against a real broker.

The generator writes a package into a temporary directory; a child Python process imports it from
there (nothing is installed into the environment) and creates a topic, produces a batch to a
partition and fetches it back. Operations are found by path and method in the committed spec, so
the test follows whatever operationIds the spec gives them.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.broker_process import BrokerProcess

pytestmark = pytest.mark.e2e

SPEC = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"

# Runs in the child process: argv = [package parent dir, package name, broker URL, operations JSON].
_USE_SDK = textwrap.dedent(
    """
    import importlib, json, sys, typing

    parent, package, url, operations = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    sys.path.insert(0, parent)
    Client = importlib.import_module(package + ".client").Client

    def operation(key):
        tag, module = operations[key]
        return importlib.import_module(f"{package}.api.{tag}.{module}")

    def body(function, data):
        # The generated body class (its name is the generator's business), built from a plain dict.
        hint = typing.get_type_hints(function)["body"]
        for candidate in typing.get_args(hint) or (hint,):
            if hasattr(candidate, "from_dict"):
                return candidate.from_dict(data)
        raise AssertionError(f"no model for the body of {function.__module__}: {hint}")

    client = Client(base_url=url, raise_on_unexpected_status=True)
    out = {}
    create = operation("create_topic").sync_detailed
    answer = create(client=client, body=body(create, {"name": "sdk-orders", "partitions": 2}))
    out["create_status"] = answer.status_code
    out["created_name"] = answer.parsed.name

    produce = operation("produce_to_partition").sync_detailed
    records = [{"key": f"k{i}", "value": {"n": i}} for i in range(3)]
    answer = produce("sdk-orders", 1, client=client, body=body(produce, {"records": records}))
    out["produce_status"] = answer.status_code
    out["offsets"] = [r.offset for r in answer.parsed.results]

    fetch = operation("fetch").sync_detailed
    answer = fetch("sdk-orders", 1, client=client, offset=0)
    out["fetch_status"] = answer.status_code
    values = [r.value for r in answer.parsed.records]
    out["values"] = [v.to_dict() if hasattr(v, "to_dict") else v for v in values]
    out["keys"] = [r.key for r in answer.parsed.records]
    out["high_watermark"] = answer.parsed.high_watermark
    print(json.dumps(out))
    """
)


def _module_name(operation_id: str) -> str:
    # openapi-python-client's snake case of an operationId such as "topics-create_topic".
    return re.sub(r"[^a-z0-9]+", "_", operation_id.lower()).strip("_")


def _operations(spec: dict[str, object]) -> dict[str, tuple[str, str]]:
    paths = spec["paths"]
    assert isinstance(paths, dict)
    wanted = {
        "create_topic": ("/v1/topics", "post"),
        "produce_to_partition": ("/v1/topics/{topic}/partitions/{partition}/records", "post"),
        "fetch": ("/v1/topics/{topic}/partitions/{partition}/records", "get"),
    }
    found: dict[str, tuple[str, str]] = {}
    for key, (path, method) in wanted.items():
        operation = paths[path][method]
        found[key] = (_module_name(operation["tags"][0]), _module_name(operation["operationId"]))
    return found


def _generator() -> str:
    beside = Path(sys.executable).parent / "openapi-python-client"
    found = str(beside) if beside.exists() else shutil.which("openapi-python-client")
    assert found, "openapi-python-client is in the dev extra: pip install -e '.[dev]'"
    return found


def test_generated_python_sdk_creates_produces_and_fetches(
    broker_process: BrokerProcess, tmp_path: Path
) -> None:
    spec = json.loads(SPEC.read_text())
    operations = _operations(spec)
    package = "tidelog_sdk"
    generated = subprocess.run(
        [
            _generator(),
            "generate",
            "--path",
            str(SPEC),
            "--output-path",
            str(tmp_path / package),
            "--meta",
            "none",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr
    for tag, module in operations.values():
        assert (tmp_path / package / "api" / tag / f"{module}.py").exists(), (tag, module)

    used = subprocess.run(
        [sys.executable, "-c", _USE_SDK, str(tmp_path), package, broker_process.url, json.dumps(operations)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert used.returncode == 0, used.stderr
    result = json.loads(used.stdout.strip().splitlines()[-1])
    assert result["create_status"] == 201 and result["created_name"] == "sdk-orders"
    assert result["produce_status"] == 200 and result["offsets"] == [0, 1, 2]
    assert result["fetch_status"] == 200 and result["high_watermark"] == 3
    assert result["keys"] == ["k0", "k1", "k2"]
    assert result["values"] == [{"n": 0}, {"n": 1}, {"n": 2}]
