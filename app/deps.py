"""``Annotated`` dependency aliases for route handlers: the one place to add auth later."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from app.catalog import Catalog
from app.config import Settings
from app.errors import UnsupportedMediaTypeError
from app.metrics import Metrics

if TYPE_CHECKING:
    from app.broker import Broker
    from app.topics import TopicService

__all__ = [
    "BrokerDep",
    "CatalogDep",
    "JsonBody",
    "MetricsDep",
    "SettingsDep",
    "TopicServiceDep",
    "require_json",
]


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_catalog(request: Request) -> Catalog:
    catalog: Catalog = request.app.state.catalog
    return catalog


def get_broker(request: Request) -> Broker:
    broker: Broker = request.app.state.broker
    return broker


def get_metrics(request: Request) -> Metrics:
    metrics: Metrics = request.app.state.metrics
    return metrics


def get_topic_service(request: Request) -> TopicService:
    service: TopicService = request.app.state.topic_service
    return service


async def require_json(request: Request) -> None:
    """Refuses a body that is not ``application/json`` (or ``+json``) with 415 (error_code 41501)."""
    content_type = request.headers.get("content-type", "")
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        shown = media_type or "no Content-Type"
        raise UnsupportedMediaTypeError(f"{shown} is not supported here; send application/json")


#: ``dependencies=[JsonBody]`` on a route that takes a JSON body.
JsonBody = Depends(require_json)

SettingsDep = Annotated[Settings, Depends(get_settings)]
CatalogDep = Annotated[Catalog, Depends(get_catalog)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]

if TYPE_CHECKING:
    BrokerDep = Annotated[Broker, Depends(get_broker)]
    TopicServiceDep = Annotated[TopicService, Depends(get_topic_service)]
else:
    # At run time FastAPI only needs the Depends(); importing the services here would make every
    # route module pull in the whole broker at import time (and cycles between the packages).
    BrokerDep = Annotated[object, Depends(get_broker)]
    TopicServiceDep = Annotated[object, Depends(get_topic_service)]
