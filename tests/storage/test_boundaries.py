"""The log engine depends on nothing of ours but the record batch codec: no HTTP, no SQL, no broker.

``storage`` may import the standard library, its C-backed helpers (crc32c) and ``tidelog._codec`` (the
codec the client distribution ships); nothing that speaks HTTP or SQL, nothing of ``app``, and none
of the client beyond the codec, statically or at run time.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "storage"
FORBIDDEN = (
    "app", "migrations", "fastapi", "starlette", "uvicorn", "httpx", "httpx_sse", "sqlalchemy",
    "alembic", "psycopg", "pydantic", "click", "rich",
)  # fmt: skip


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_no_module_of_storage_imports_http_sql_or_the_broker() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for name in _imports(path):
            top = name.split(".")[0]
            if top in FORBIDDEN or (top == "tidelog" and not name.startswith("tidelog._codec")):
                offenders.append(f"{path.name}: {name}")
    assert offenders == []


def test_importing_storage_loads_only_the_codec_of_the_client() -> None:
    code = (
        "import sys, storage; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        f"{(*FORBIDDEN, 'tidelog')!r} and not m.startswith('tidelog._codec') and m != 'tidelog'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
