"""Connector configs: the runtime's common settings, parsing and validation, config providers, hiding.

A config is a flat mapping of string keys to string values, as in Kafka Connect (numbers and booleans
sent as JSON are accepted and kept as their string form). :func:`parse` turns one into typed values
with a :class:`~tidelog.connect.api.ConfigDef`; :func:`validate` gives Kafka's ``ConfigInfos`` shape
for ``PUT /v1/connector-plugins/{type}/config/validate``.

Config providers (Kafka's KIP-297): a value may hold ``${env:NAME}`` (an environment variable of the
worker) or ``${file:path:key}`` (key ``key`` of the ``key=value`` properties file ``path`` on the
worker). They are resolved by the worker just before a task starts, so the catalog stores only the
reference. Settings of type PASSWORD are shown as ``[hidden]`` wherever a config is shown
(:func:`hide`).
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tidelog.connect.api import ConfigDef, ConfigKey, ConfigType

__all__ = [
    "COMMON",
    "HIDDEN",
    "SINK_COMMON",
    "ConfigValidationError",
    "hide",
    "normalise",
    "parse",
    "parse_groups",
    "resolve_providers",
    "validate",
]

#: What a PASSWORD setting shows as in every GET, status, log and console view.
HIDDEN = "[hidden]"

_PROVIDER = re.compile(r"\$\{(env|file):([^}]*)\}")


def _non_negative(value: Any) -> None:
    if value < 0:
        raise ValueError("must be at least 0")


def _positive(value: Any) -> None:
    if value < 1:
        raise ValueError("must be at least 1")


#: Kafka's ``ConnectorConfig``: the settings every connector has.
COMMON = ConfigDef(
    (
        ConfigKey(
            "name",
            ConfigType.STRING,
            "Globally unique name of the connector.",
            required=True,
            importance="HIGH",
        ),
        ConfigKey(
            "connector.class",
            ConfigType.STRING,
            "The connector type (an entry point of the tidelog.connectors group, e.g. file-source).",
            required=True,
            importance="HIGH",
        ),
        ConfigKey(
            "tasks.max",
            ConfigType.INT,
            "Maximum number of tasks for this connector.",
            default=1,
            importance="HIGH",
            validator=_positive,
        ),
        ConfigKey(
            "transforms",
            ConfigType.LIST,
            "Aliases of the single message transforms, applied in this order.",
            default=[],
        ),
        ConfigKey("predicates", ConfigType.LIST, "Aliases of the predicates used by transforms.", default=[]),
        ConfigKey(
            "errors.retry.timeout",
            ConfigType.LONG,
            "How long (ms) a failed operation is retried after an outage; 0 means no retries, -1 forever.",
            default=0,
        ),
        ConfigKey(
            "errors.retry.delay.max.ms",
            ConfigType.LONG,
            "The longest wait (ms) between two retries (exponential backoff from 300 ms).",
            default=60_000,
            validator=_non_negative,
        ),
        ConfigKey(
            "errors.tolerance",
            ConfigType.STRING,
            "none: a data error fails the task; all: bad records are skipped (or dead-lettered).",
            default="none",
            choices=("none", "all"),
        ),
        ConfigKey(
            "errors.log.enable",
            ConfigType.BOOLEAN,
            "Log each tolerated error with its operation and record position.",
            default=False,
        ),
        ConfigKey(
            "errors.log.include.messages",
            ConfigType.BOOLEAN,
            "Include the record's key and value in the error log.",
            default=False,
        ),
        ConfigKey(
            "errors.deadletterqueue.topic.name",
            ConfigType.STRING,
            "Topic that receives the records tolerated errors skip (sources and sinks).",
            default="",
        ),
        ConfigKey(
            "errors.deadletterqueue.context.headers.enable",
            ConfigType.BOOLEAN,
            "Add __connect.errors.* headers describing the failure to dead-lettered records.",
            default=False,
        ),
        ConfigKey(
            "tasks.restart.max",
            ConfigType.INT,
            "Automatic restarts of a FAILED task (0: never restart by itself).",
            default=0,
            validator=_non_negative,
        ),
        ConfigKey(
            "tasks.restart.backoff.ms",
            ConfigType.LONG,
            "Wait before the first automatic restart; doubles with each further one.",
            default=1000,
            validator=_non_negative,
        ),
    )
)

#: Kafka's ``SinkConnectorConfig`` additions.
SINK_COMMON = ConfigDef(
    (
        ConfigKey(
            "topics",
            ConfigType.LIST,
            "Topics to consume (or give topics.regex).",
            default=[],
            importance="HIGH",
        ),
        ConfigKey("topics.regex", ConfigType.STRING, "RE2 pattern of the topics to consume.", default=""),
    )
)


class ConfigValidationError(ValueError):
    """A config that does not parse: ``errors`` maps each bad key to its messages."""

    def __init__(self, errors: Mapping[str, list[str]]) -> None:
        self.errors = dict(errors)
        summary = "; ".join(f"{k}: {', '.join(v)}" for k, v in sorted(self.errors.items()))
        super().__init__(summary or "invalid config")


def normalise(raw: Mapping[str, Any]) -> dict[str, str | None]:
    """Gives ``raw`` with every scalar value as Kafka's string form (``True`` → ``"true"``)."""
    out: dict[str, str | None] = {}
    for key, value in raw.items():
        if value is None:
            out[str(key)] = None
        elif isinstance(value, bool):
            out[str(key)] = "true" if value else "false"
        elif isinstance(value, list):
            out[str(key)] = ",".join(str(v) for v in value)
        else:
            out[str(key)] = str(value)
    return out


def _parse_value(key: ConfigKey, text: str) -> Any:
    kind = key.type
    if kind in (ConfigType.STRING, ConfigType.PASSWORD):
        return text
    if kind in (ConfigType.INT, ConfigType.LONG):
        try:
            return int(text.strip())
        except ValueError:
            raise ValueError(f"{text!r} is not an integer") from None
    if kind is ConfigType.DOUBLE:
        try:
            return float(text.strip())
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
    if kind is ConfigType.BOOLEAN:
        lowered = text.strip().lower()
        if lowered not in ("true", "false"):
            raise ValueError(f"{text!r} is not true or false")
        return lowered == "true"
    return [item.strip() for item in text.split(",") if item.strip()]  # LIST


def _check(key: ConfigKey, raw: Mapping[str, str | None]) -> tuple[Any, list[str]]:
    text = raw.get(key.name)
    if text is None or (text == "" and key.type is not ConfigType.STRING):
        if key.required:
            return None, [f'Missing required configuration "{key.name}" which has no default value.']
        return key.default, []
    if _PROVIDER.search(text):
        return text, []  # resolved on the worker; nothing to check here
    try:
        value = _parse_value(key, text)
        if key.choices is not None and value not in key.choices:
            raise ValueError(f"must be one of {', '.join(key.choices)}")
        if key.validator is not None:
            key.validator(value)
    except ValueError as error:
        return None, [f"Invalid value {text} for configuration {key.name}: {error}"]
    if key.required and value == "":
        return None, [f'Missing required configuration "{key.name}" which has no default value.']
    return value, []


def parse(config_def: ConfigDef, raw: Mapping[str, str | None]) -> dict[str, Any]:
    """Gives the typed values of ``raw`` for every key of ``config_def`` (plus the undeclared keys as
    strings); raises :class:`ConfigValidationError` naming each bad key."""
    values: dict[str, Any] = {k: v for k, v in raw.items() if v is not None}
    errors: dict[str, list[str]] = {}
    for key in config_def.keys:
        value, problems = _check(key, raw)
        if problems:
            errors[key.name] = problems
        else:
            values[key.name] = value
    if errors:
        raise ConfigValidationError(errors)
    return values


def parse_groups(groups: Mapping[str, ConfigDef], raw: Mapping[str, str | None]) -> dict[str, Any]:
    """Gives ``raw`` with every key declared by one of ``groups`` parsed (see :func:`parse`)."""
    values: dict[str, Any] = {k: v for k, v in raw.items() if v is not None}
    errors: dict[str, list[str]] = {}
    for config_def in groups.values():
        try:
            parsed = parse(config_def, raw)
        except ConfigValidationError as error:
            errors.update(error.errors)
            continue
        values.update({key.name: parsed[key.name] for key in config_def.keys})
    if errors:
        raise ConfigValidationError(errors)
    return values


def _definition(key: ConfigKey, group: str, order: int) -> dict[str, Any]:
    default = key.default
    if isinstance(default, list):
        default = ",".join(str(v) for v in default)
    elif isinstance(default, bool):
        default = "true" if default else "false"
    elif default is not None:
        default = str(default)
    return {
        "name": key.name,
        "type": key.type.value,
        "required": key.required,
        "default_value": default,
        "importance": key.importance,
        "documentation": key.documentation,
        "group": group,
        "width": "NONE",
        "display_name": key.name,
        "dependents": [],
        "order": order,
    }


def definitions(groups: Mapping[str, ConfigDef]) -> list[dict[str, Any]]:
    """Gives Kafka's ``ConfigKeyInfo`` list (KIP-769) of every key of ``groups`` (group → keys)."""
    out = []
    for group, config_def in groups.items():
        for order, key in enumerate(config_def.keys, start=1):
            out.append(_definition(key, group, order))
    return out


def validate(
    connector_type: str,
    groups: Mapping[str, ConfigDef],
    raw: Mapping[str, str | None],
    extra_errors: Mapping[str, list[str]] | None = None,
) -> dict[str, Any]:
    """Gives Kafka's ``ConfigInfos`` for ``raw``: every key's definition, value and errors."""
    configs: list[dict[str, Any]] = []
    error_count = 0
    for group, config_def in groups.items():
        for order, key in enumerate(config_def.keys, start=1):
            _value, problems = _check(key, raw)
            problems = problems + list((extra_errors or {}).get(key.name, []))
            error_count += len(problems)
            shown = raw.get(key.name)
            if key.type is ConfigType.PASSWORD and shown is not None:
                shown = HIDDEN
            configs.append(
                {
                    "definition": _definition(key, group, order),
                    "value": {
                        "name": key.name,
                        "value": shown,
                        "recommended_values": list(key.choices or []),
                        "errors": problems,
                        "visible": True,
                    },
                }
            )
    declared = {key.name for config_def in groups.values() for key in config_def.keys}
    for name, problems in (extra_errors or {}).items():
        if name not in declared:
            error_count += len(problems)
            configs.append(
                {
                    "definition": None,
                    "value": {
                        "name": name,
                        "value": raw.get(name),
                        "recommended_values": [],
                        "errors": list(problems),
                        "visible": True,
                    },
                }
            )
    return {"name": connector_type, "error_count": error_count, "groups": list(groups), "configs": configs}


def hide(
    raw: Mapping[str, str | None],
    config_defs: Mapping[str, ConfigDef] | None = None,
) -> dict[str, str | None]:
    """Gives ``raw`` with the value of every PASSWORD setting replaced by ``[hidden]``.

    Keys are PASSWORD when a definition says so, and, whatever the plugin declares, when their last
    dotted part names a secret (``password``, ``secret``, ``token``, ``api.key``): a transform's or
    a third party's undeclared secret is hidden too.
    """
    secret_names = {
        key.name
        for config_def in (config_defs or {}).values()
        for key in config_def.keys
        if key.type is ConfigType.PASSWORD
    }
    out: dict[str, str | None] = {}
    for name, value in raw.items():
        lowered = name.lower()
        looks_secret = lowered.endswith(("password", "secret", "token", "api.key", "apikey"))
        out[name] = HIDDEN if value is not None and (name in secret_names or looks_secret) else value
    return out


def _read_properties(path: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in Path(path).read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "!")):
            continue
        key, sep, value = stripped.partition("=")
        if not sep:
            key, _, value = stripped.partition(":")
        values[key.strip()] = value.strip()
    return values


def resolve_providers(
    raw: Mapping[str, str | None], environ: Mapping[str, str] | None = None
) -> dict[str, str | None]:
    """Gives ``raw`` with every ``${env:NAME}`` and ``${file:path:key}`` replaced by its value;
    raises :class:`ConfigValidationError` for a reference that resolves to nothing."""
    env = os.environ if environ is None else environ
    errors: dict[str, list[str]] = {}
    files: dict[str, dict[str, str]] = {}

    def substitute(key: str, match: re.Match[str]) -> str:
        provider, argument = match.group(1), match.group(2)
        if provider == "env":
            if argument not in env:
                errors.setdefault(key, []).append(f"environment variable {argument} is not set")
                return ""
            return env[argument]
        path, sep, name = argument.rpartition(":")
        if not sep:
            errors.setdefault(key, []).append(f"${{file:{argument}}} needs a path and a key")
            return ""
        try:
            if path not in files:
                files[path] = _read_properties(path)
        except OSError as error:
            errors.setdefault(key, []).append(f"cannot read {path}: {error.strerror}")
            return ""
        if name not in files[path]:
            errors.setdefault(key, []).append(f"{path} has no key {name}")
            return ""
        return files[path][name]

    out: dict[str, str | None] = {}
    for key, value in raw.items():
        if value is None:
            out[key] = None
            continue
        out[key] = _PROVIDER.sub(functools.partial(substitute, key), value)
    if errors:
        raise ConfigValidationError(errors)
    return out
