"""API keys: ``/v1/keys`` (create, list, revoke). A key's secret is in the creation answer only."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from app.catalog.auth import ApiKeyRow
from app.error_codes import ErrorCode
from app.errors import error_responses
from app.security.authn.admin import CredentialAdmin

__all__ = ["router"]

router = APIRouter(prefix="/v1/keys", tags=["keys"])


class CreateKeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    principal: str = Field(..., description="Who the key authenticates as: `User:<name>`.", max_length=205)
    description: str | None = Field(None, max_length=1000, description="What the key is for (listings).")
    expires_at_ms: int | None = Field(
        None, ge=0, le=2**63 - 1, description="Refused from then on (epoch ms); none: never."
    )


class ApiKeyModel(BaseModel):
    key_id: str
    principal: str
    description: str
    super_user: bool
    created_at_ms: int
    expires_at_ms: int | None
    revoked_at_ms: int | None


class CreatedKeyModel(ApiKeyModel):
    key: str = Field(..., description="`tlk_<id>_<secret>`: shown only in this answer, never again.")


class KeyListModel(BaseModel):
    keys: list[ApiKeyModel]


def _model(row: ApiKeyRow) -> ApiKeyModel:
    return ApiKeyModel(
        key_id=row.key_id, principal=row.principal, description=row.description, super_user=row.super_user,
        created_at_ms=row.created_at_ms, expires_at_ms=row.expires_at_ms, revoked_at_ms=row.revoked_at_ms,
    )


def _admin(request: Request) -> CredentialAdmin:
    admin: CredentialAdmin = request.app.state.credential_admin
    return admin


@router.post(
    "",
    response_model=CreatedKeyModel,
    status_code=201,
    responses=error_responses(ErrorCode.INVALID_REQUEST),
    summary="Create an API key",
)
def create_key(request: Request, body: CreateKeyRequest) -> CreatedKeyModel:
    """A new key for ``principal``; the answer's ``key`` is the only time its secret is shown."""
    issued = _admin(request).create_key(
        principal=body.principal, description=body.description or "", expires_at_ms=body.expires_at_ms
    )
    return CreatedKeyModel(key=issued.key, **_model(issued.row).model_dump())


@router.get("", response_model=KeyListModel, responses=error_responses(), summary="List API keys")
def list_keys(request: Request, principal: str | None = None) -> KeyListModel:
    """Every key (revoked ones too, with ``revoked_at_ms``), optionally of one principal; no secrets."""
    return KeyListModel(keys=[_model(row) for row in _admin(request).list_keys(principal=principal)])


@router.delete(
    "/{key_id}",
    response_model=ApiKeyModel,
    responses=error_responses(ErrorCode.UNKNOWN_API_KEY),
    summary="Revoke an API key",
)
def revoke_key(request: Request, key_id: str) -> ApiKeyModel:
    """Refused from now on on every broker (within ``auth_poll_interval_ms``); the row stays listed."""
    return _model(_admin(request).revoke_key(key_id))
