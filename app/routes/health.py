"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from app.error_codes import ErrorCode
from app.errors import error_responses, problem_response
from app.metrics import CONTENT_TYPE

router = APIRouter(tags=["service"])


class Health(BaseModel):
    status: str


@router.get("/healthz", response_model=Health, responses=error_responses(common=False), summary="Liveness")
async def healthz() -> Health:
    """Answers 200 while the process serves HTTP at all."""
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Health,
    responses=error_responses(ErrorCode.NOT_READY, common=False),
    summary="Readiness",
)
async def readyz(request: Request) -> Health | Response:
    """200 once the catalog is migrated and every log is open; 503 (50302) while starting or stopping,
    and while writes to the data directory or the catalog fail (a full disk, a failed fsync)."""
    phase = getattr(request.app.state, "phase", "starting")
    if phase != "ready":
        return problem_response(ErrorCode.NOT_READY, f"the broker is {phase}")
    health = request.app.state.storage_health
    if not health.ready:
        reason = health.reason()
        return problem_response(
            ErrorCode.NOT_READY, f"the broker cannot write: {reason}", extra={"storage": reason}
        )
    return Health(status="ready")


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {"schema": {"type": "string"}}},
                     "description": "Prometheus text exposition"}, **error_responses(common=False)},
    summary="Prometheus metrics",
)
async def metrics(request: Request) -> Response:
    """Request counts and latencies by operation, produced/fetched records and bytes, partition sizes."""
    body = request.app.state.metrics.render()
    return Response(content=body, media_type=CONTENT_TYPE)
