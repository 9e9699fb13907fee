"""``/v1/cluster``: this broker's identity and the cluster's brokers."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from app.deps import SettingsDep
from app.errors import error_responses
from app.routes.topics import IncludeAuthorizedOperations
from app.security.acl import CLUSTER_NAME, Operation, ResourceType
from app.security.authorizer_middleware import authorize, authorized_operations

router = APIRouter(prefix="/v1", tags=["cluster"])


class BrokerOut(BaseModel):
    broker_id: int
    url: str
    state: str = Field(description="alive | fenced (a broker whose session expired)")


class TopicPartitionRef(BaseModel):
    topic: str
    partition: int


class ClusterOut(BaseModel):
    broker_id: int = Field(description="The broker that answered.")
    controller_id: int
    advertised_url: str
    version: str
    brokers: list[BrokerOut]
    under_replicated_partitions: list[TopicPartitionRef]
    authorized_operations: list[str] | None = Field(
        None, exclude_if=lambda v: v is None,
        description="With include_authorized_operations: what the caller may do to the cluster "
        "(empty without CLUSTER DESCRIBE, as Kafka's DescribeCluster).",
    )


def _cluster_operations(request: Request, include: bool) -> list[str] | None:
    if not include:
        return None
    if not authorize(request.scope, Operation.DESCRIBE, ResourceType.CLUSTER, CLUSTER_NAME):
        return []
    return authorized_operations(request.scope, ResourceType.CLUSTER, CLUSTER_NAME)


@router.get("/cluster", response_model=ClusterOut, responses=error_responses())
async def get_cluster(
    request: Request,
    settings: SettingsDep,
    include_authorized_operations: IncludeAuthorizedOperations = False,
) -> ClusterOut:
    """The broker's id, advertised URL and version, and the brokers of the cluster (one, for now)."""
    operations = _cluster_operations(request, include_authorized_operations)
    url = settings.effective_advertised_url
    cluster = getattr(request.app.state, "cluster", None)
    if cluster is not None:  # clustered mode: the catalog's brokers, alive or fenced (docs/cluster.md)
        view = cluster.view()
        return ClusterOut(
            broker_id=settings.broker_id,
            controller_id=-1 if view.controller_id is None else view.controller_id,
            advertised_url=url,
            version=request.app.version,
            brokers=[
                BrokerOut(broker_id=b.broker_id, url=b.url, state="fenced" if b.fenced else "alive")
                for b in view.brokers
            ],
            under_replicated_partitions=[
                TopicPartitionRef(topic=t, partition=p) for t, p in view.under_replicated
            ],
            authorized_operations=operations,
        )
    return ClusterOut(
        broker_id=settings.broker_id,
        controller_id=settings.broker_id,
        advertised_url=url,
        version=request.app.version,
        # A single broker answering is alive; whether it takes traffic yet is /readyz's answer.
        brokers=[BrokerOut(broker_id=settings.broker_id, url=url, state="alive")],
        under_replicated_partitions=[],
        authorized_operations=operations,
    )
