"""Connector discovery: the built-in connectors and the entry points of the ``tidelog.connectors`` group.

A third party ships a connector as a package declaring, in its ``pyproject.toml``::

    [project.entry-points."tidelog.connectors"]
    my-source = "my_package:MySourceConnector"

The entry point's name is the connector's type (what ``connector.class`` names); the built-ins are
registered the same way by ``tidelog-client`` and also found without it (a source checkout).
"""

from __future__ import annotations

import importlib
import logging
from importlib.metadata import entry_points

from tidelog.connect.api import ConfigDef, Connector
from tidelog.connect.config import COMMON, SINK_COMMON

__all__ = ["ENTRY_POINT_GROUP", "UnknownPluginError", "config_groups", "find", "plugins"]

log = logging.getLogger("tidelog.connect.plugins")

ENTRY_POINT_GROUP = "tidelog.connectors"

#: type name → "module:attribute" of the connectors that ship with tidelog-client.
BUILT_IN = {
    "file-source": "tidelog.connect.file:FileSourceConnector",
    "file-sink": "tidelog.connect.file:FileSinkConnector",
    "http-sink": "tidelog.connect.http_sink:HttpSinkConnector",
    "sql-sink": "tidelog.connect.sql_sink:SqlSinkConnector",
    "sql-source": "tidelog.connect.sql_source:SqlSourceConnector",
    "verifiable-source": "tidelog.connect.verifiable:VerifiableSourceConnector",
    "verifiable-sink": "tidelog.connect.verifiable:VerifiableSinkConnector",
}


class UnknownPluginError(LookupError):
    """No installed connector has this type name."""


def _load(target: str) -> type[Connector]:
    module, _, attribute = target.partition(":")
    loaded = getattr(importlib.import_module(module), attribute)
    if not (isinstance(loaded, type) and issubclass(loaded, Connector)):
        raise TypeError(f"{target} is not a Connector subclass")
    return loaded


def plugins() -> dict[str, type[Connector]]:
    """Gives every installed connector by type name (entry points win over built-ins)."""
    found: dict[str, type[Connector]] = {}
    for name, target in BUILT_IN.items():
        found[name] = _load(target)
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name in found and entry.value == BUILT_IN.get(entry.name):
            continue
        try:
            found[entry.name] = _load(entry.value)
        except Exception:  # a broken third-party package must not hide every other connector
            log.exception("connector plugin %s (%s) failed to load", entry.name, entry.value)
    return found


def find(connector_class: str) -> type[Connector]:
    """Gives the connector named by ``connector.class`` (its type name, or its class's qualified
    name as Kafka configs give it); raises :class:`UnknownPluginError`."""
    installed = plugins()
    if connector_class in installed:
        return installed[connector_class]
    for cls in installed.values():
        if connector_class in (cls.__name__, f"{cls.__module__}.{cls.__qualname__}"):
            return cls
    raise UnknownPluginError(connector_class)


def config_groups(cls: type[Connector]) -> dict[str, ConfigDef]:
    """Gives the settings of ``cls`` by group: the runtime's common ones, then the connector's."""
    groups = {"Common": COMMON}
    if cls.kind == "sink":
        groups["Sink"] = SINK_COMMON
    groups[cls.type_name] = cls.config_def()
    return groups
