"""Errors of the connect service. No HTTP here: ``app/errors.py`` maps each ``code``.

TidelogError (app/errors_base.py)
 ├── UnknownConnectorError          40430
 ├── UnknownConnectorTaskError      40431
 ├── UnknownConnectorPluginError    40432
 ├── ConnectorExistsError           40930
 ├── ConnectorNotStoppedError       40931 offsets change only while the connector is STOPPED
 ├── StaleTaskGenerationError       40932 a zombie task's report: the worker must stop the task
 └── InvalidConnectorConfigError    42230 carries ``errors`` (setting → messages)
"""

from __future__ import annotations

from app.error_codes import ErrorCode
from app.errors_base import TidelogError

__all__ = [
    "ConnectorExistsError",
    "ConnectorNotStoppedError",
    "InvalidConnectorConfigError",
    "StaleTaskGenerationError",
    "UnknownConnectorError",
    "UnknownConnectorPluginError",
    "UnknownConnectorTaskError",
]


class UnknownConnectorError(TidelogError):
    code = ErrorCode.UNKNOWN_CONNECTOR


class UnknownConnectorTaskError(TidelogError):
    code = ErrorCode.UNKNOWN_CONNECTOR_TASK


class UnknownConnectorPluginError(TidelogError):
    code = ErrorCode.UNKNOWN_CONNECTOR_PLUGIN


class ConnectorExistsError(TidelogError):
    code = ErrorCode.CONNECTOR_EXISTS


class ConnectorNotStoppedError(TidelogError):
    code = ErrorCode.CONNECTOR_NOT_STOPPED


class StaleTaskGenerationError(TidelogError):
    code = ErrorCode.STALE_TASK_GENERATION


class InvalidConnectorConfigError(TidelogError):
    code = ErrorCode.INVALID_CONNECTOR_CONFIG
