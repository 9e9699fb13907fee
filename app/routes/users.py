"""Password users: ``/v1/users`` (Kafka's DescribeUserScramCredentials / AlterUserScramCredentials,
KIP-554, with argon2id hashes). Passwords go in only; no answer ever carries a hash."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from app.catalog.auth import PasswordUserRow
from app.error_codes import ErrorCode
from app.errors import error_responses
from app.security.authn.admin import CredentialAdmin
from app.security.authn.passwords import MAX_PASSWORD_CHARS

__all__ = ["router"]

router = APIRouter(prefix="/v1/users", tags=["users"])


class CreateUserRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., max_length=200, description="The user; its principal is `User:<name>`.")
    password: str = Field(..., max_length=MAX_PASSWORD_CHARS)


class AlterUserRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str = Field(..., max_length=MAX_PASSWORD_CHARS)


class UserModel(BaseModel):
    name: str
    principal: str
    mechanism: str = Field("argon2id", description="How the password is hashed.")
    created_at_ms: int
    updated_at_ms: int


class UserListModel(BaseModel):
    users: list[UserModel]


def _model(row: PasswordUserRow) -> UserModel:
    return UserModel(name=row.name, principal=f"User:{row.name}", created_at_ms=row.created_at_ms,
                     updated_at_ms=row.updated_at_ms)


def _admin(request: Request) -> CredentialAdmin:
    admin: CredentialAdmin = request.app.state.credential_admin
    return admin


@router.post("", response_model=UserModel, status_code=201,
             responses=error_responses(ErrorCode.INVALID_REQUEST, ErrorCode.USER_EXISTS),
             summary="Create a password user")
def create_user(request: Request, body: CreateUserRequest) -> UserModel:
    """A user who signs in with HTTP Basic or the console's login."""
    return _model(_admin(request).create_user(body.name, body.password))


@router.get("", response_model=UserListModel, responses=error_responses(), summary="List password users")
def list_users(request: Request) -> UserListModel:
    return UserListModel(users=[_model(row) for row in _admin(request).list_users()])


@router.put("/{name}", response_model=UserModel,
            responses=error_responses(ErrorCode.INVALID_REQUEST, ErrorCode.UNKNOWN_USER),
            summary="Set a user's password")
def alter_user(request: Request, name: str, body: AlterUserRequest) -> UserModel:
    """The old password is refused from now on, on every broker."""
    return _model(_admin(request).alter_user(name, body.password))


@router.delete("/{name}", status_code=204, responses=error_responses(ErrorCode.UNKNOWN_USER),
               summary="Delete a password user")
def delete_user(request: Request, name: str) -> Response:
    _admin(request).delete_user(name)
    return Response(status_code=204)
