"""The client package talks to the broker over HTTP only: it never imports the broker or the engine.

Its sans-I/O core (``tidelog._core``) and the record batch codec (``tidelog._codec``) do no I/O of their
own: no sockets, threads, event loop or sleeping; the shells around them do.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "client" / "tidelog"
FORBIDDEN = ("app", "storage", "fastapi", "sqlalchemy", "uvicorn", "alembic")


def test_no_module_of_the_client_imports_the_broker() -> None:
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "cli.py" and path.parent == PACKAGE:
            continue  # registers the broker's serve/migrate/openapi commands, by design
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            # The SQL connectors drive external databases with SQLAlchemy (the client's `connect`
            # extra); that is a connector's driver, not the broker's catalog.
            sql_connector = path.parent.name == "connect" and path.name.startswith("sql_")
            allowed = {"sqlalchemy"} if sql_connector else set()
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in set(FORBIDDEN) - allowed]
    assert offenders == []


def test_importing_the_client_loads_no_broker_module() -> None:
    code = (
        "import sys, tidelog, tidelog._cli; "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


IO_MODULES = ("asyncio", "socket", "selectors", "concurrent", "subprocess", "http")


def test_the_core_and_the_codec_do_no_io() -> None:
    offenders = []
    for folder in ("_core", "_codec"):
        for path in (PACKAGE / folder).glob("*.py"):
            if path.name == "_accelerate.py":
                continue  # the build tool of the compiled decoder, never imported by the codec
            tree = ast.parse(path.read_text(), str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                else:
                    names = []
                offenders += [f"{folder}/{path.name}: {n}" for n in names if n.split(".")[0] in IO_MODULES]
                if isinstance(node, ast.Attribute) and node.attr in ("sleep", "Thread", "create_task"):
                    offenders.append(f"{folder}/{path.name}: .{node.attr}")
    assert offenders == []
