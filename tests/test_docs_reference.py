"""docs/errors.md and docs/configuration.md list every error code, setting and topic config."""

from __future__ import annotations

import re
from pathlib import Path

from app.config import Settings
from app.error_codes import ErrorCode
from app.topics import TOPIC_CONFIGS

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_every_error_code_is_documented() -> None:
    text = (DOCS / "errors.md").read_text()
    rows = {int(m.group(1)): (int(m.group(2)), m.group(3))
            for m in re.finditer(r"^\| (\d{5}) \| (\d{3}) \| ([A-Z_]+) \|", text, re.MULTILINE)}
    assert set(rows) == {int(code) for code in ErrorCode}
    for code in ErrorCode:
        assert rows[int(code)] == (code.http_status, code.name)


def test_every_setting_and_topic_config_is_documented() -> None:
    text = (DOCS / "configuration.md").read_text()
    for name in Settings.model_fields:
        assert f"`--{name.replace('_', '-')}` | `TIDELOG_{name.upper()}`" in text, name
    for name, spec in TOPIC_CONFIGS.items():
        assert f"| `{name}` | {spec.kind} |" in text, name
