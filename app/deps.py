"""``Annotated`` dependency aliases for route handlers: the one place to add auth later."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from app.catalog import Catalog
from app.config import Settings
from app.metrics import Metrics

if TYPE_CHECKING:
    from app.broker import Broker
    from app.topics import TopicService

__all__ = ["BrokerDep", "CatalogDep", "MetricsDep", "SettingsDep", "TopicServiceDep"]


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
