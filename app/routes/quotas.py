"""``/v1/quotas``: client quotas per principal and the default entry (``kafka-configs --entity-type
users``); enforced per broker when the broker runs with ``quotas_enabled`` (docs/security-acls.md).

``GET`` lists every entry; ``PUT /v1/quotas/{principal}`` sets the limits given (``null`` removes
one; ``<default>`` is the default entry); ``DELETE /v1/quotas/{principal}`` removes the entry.
"""

from __future__ import annotations

from typing import Annotated

from anyio import to_thread
from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from app.bounds import INT32_MAX, INT64_MAX
from app.catalog import acls as catalog_acls
from app.catalog.acls import ClientQuota
from app.deps import CatalogDep, JsonBody
from app.error_codes import ErrorCode
from app.errors import error_responses
from app.errors_base import TidelogError

__all__ = ["router"]

router = APIRouter(prefix="/v1/quotas", tags=["quotas"])

PrincipalPath = Annotated[
    str, Path(pattern=r"^(User:[^\s;]{1,248}|<default>)$", description="User:<name>, or <default>.")
]


class QuotaLimits(BaseModel):
    """Limits to set; a field left out is unchanged, ``null`` removes that limit."""

    model_config = ConfigDict(extra="forbid")

    producer_byte_rate: int | None = Field(None, ge=1, le=INT64_MAX, description="Produced bytes per second.")
    consumer_byte_rate: int | None = Field(None, ge=1, le=INT64_MAX, description="Fetched bytes per second.")
    request_rate: int | None = Field(None, ge=1, le=INT64_MAX, description="Requests per second.")
    max_streams: int | None = Field(
        None, ge=0, le=INT32_MAX, description="Event streams and long polls open at once."
    )


class QuotaOut(BaseModel):
    principal: str
    producer_byte_rate: int | None
    consumer_byte_rate: int | None
    request_rate: int | None
    max_streams: int | None


class QuotaList(BaseModel):
    quotas: list[QuotaOut]


class _NoQuota(TidelogError):
    code = ErrorCode.NOT_FOUND


def _out(quota: ClientQuota) -> QuotaOut:
    return QuotaOut(principal=quota.principal, producer_byte_rate=quota.producer_byte_rate,
                    consumer_byte_rate=quota.consumer_byte_rate, request_rate=quota.request_rate,
                    max_streams=quota.max_streams)


@router.get("", response_model=QuotaList, responses=error_responses(ErrorCode.CLUSTER_AUTHORIZATION_FAILED))
async def list_quotas(catalog: CatalogDep) -> QuotaList:
    """Every quota entry, the default (``<default>``) included."""

    def read() -> list[ClientQuota]:
        with catalog.read() as session:
            return catalog_acls.list_quotas(session)

    return QuotaList(quotas=[_out(q) for q in await to_thread.run_sync(read)])


@router.put("/{principal}", response_model=QuotaOut, dependencies=[JsonBody],
            responses=error_responses(ErrorCode.INVALID_REQUEST, ErrorCode.CLUSTER_AUTHORIZATION_FAILED))
async def set_quota(request: Request, principal: PrincipalPath, body: QuotaLimits,
                    catalog: CatalogDep) -> QuotaOut:
    """Set a principal's (or the default entry's) limits."""
    limits = body.model_dump(exclude_unset=True)

    def write() -> ClientQuota:
        with catalog.begin() as session:
            return catalog_acls.set_quota(session, principal=principal, limits=limits)

    quota = await to_thread.run_sync(write)
    await request.app.state.security.cache.refresh()
    return _out(quota)


@router.delete("/{principal}", status_code=204, response_class=Response,
               responses=error_responses(ErrorCode.NOT_FOUND, ErrorCode.CLUSTER_AUTHORIZATION_FAILED))
async def delete_quota(request: Request, principal: PrincipalPath, catalog: CatalogDep) -> Response:
    """Remove a principal's quota entry (it falls back to the default entry)."""

    def delete() -> bool:
        with catalog.begin() as session:
            return catalog_acls.delete_quota(session, principal=principal)

    if not await to_thread.run_sync(delete):
        raise _NoQuota(f"no quota entry for {principal!r}")
    await request.app.state.security.cache.refresh()
    return Response(status_code=204)
