"""Idempotent producer ids: ``POST /v1/producers`` (Kafka's InitProducerId)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from app.bounds import NonNegativeInt64
from app.broker import Broker
from app.error_codes import ErrorCode
from app.errors import error_responses

__all__ = ["router"]

router = APIRouter(tags=["producers"])


class InitProducerRequest(BaseModel):
    """Empty for a new producer; an id and its current epoch to bump the epoch (fencing older ones)."""

    model_config = ConfigDict(extra="forbid")

    producer_id: NonNegativeInt64 | None = None
    producer_epoch: int | None = Field(None, ge=0, le=32767)


class ProducerIdentityModel(BaseModel):
    producer_id: int
    producer_epoch: int


@router.post(
    "/v1/producers",
    response_model=ProducerIdentityModel,
    status_code=201,
    responses=error_responses(
        ErrorCode.INVALID_REQUEST, ErrorCode.UNKNOWN_PRODUCER, ErrorCode.PRODUCER_FENCED,
        ErrorCode.INSUFFICIENT_STORAGE,
    ),
    summary="Allocate an idempotent producer id, or bump a producer's epoch",
)
async def init_producer(request: Request, body: InitProducerRequest | None = None) -> ProducerIdentityModel:
    """A producer id unique across restarts and every broker sharing the catalog, at epoch 0.

    With ``{producer_id, producer_epoch}`` (the caller's current epoch) the same id comes back with
    the next epoch: batches of the older epoch are refused from then on (409, 40905), so a restarted
    producer fences its zombie predecessor. Sequences start again at 0 with every new epoch.
    """
    broker: Broker = request.app.state.broker
    producer_id = body.producer_id if body is not None else None
    producer_epoch = body.producer_epoch if body is not None else None
    identity = await broker.init_producer(producer_id, producer_epoch)
    return ProducerIdentityModel(producer_id=identity.producer_id, producer_epoch=identity.producer_epoch)
