"""``/v1/acls``: create, list and delete ACL bindings, as ``kafka-acls --add/--list/--remove`` do.

``POST`` takes ``{"acls": [binding, ...]}`` and answers the bindings added (one already there is
not added twice); ``GET`` lists the bindings matching the query's filter; ``DELETE`` removes the
bindings matching it and answers them. A filter field left out matches any value;
``pattern_type=MATCH`` lists every binding that applies to the named resource (LITERAL equal or
``*``, PREFIXED a prefix). Changes are in force on this broker when the answer is sent and on every
broker sharing the catalog within about a second (``acl_refresh_interval_ms``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from anyio import to_thread
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from app.catalog import acls as catalog_acls
from app.deps import CatalogDep, JsonBody
from app.error_codes import ErrorCode
from app.errors import error_responses
from app.errors_base import InvalidParameterError
from app.security.acl import (
    CLUSTER_NAME,
    AclBinding,
    AclBindingFilter,
    Operation,
    PatternType,
    Permission,
    ResourceType,
)

__all__ = ["router"]

router = APIRouter(prefix="/v1/acls", tags=["acls"])

_PRINCIPAL = r"^User:[^\s;]{1,248}$"
_NAME = Field(min_length=1, max_length=255, description="The resource name (a prefix if PREFIXED; * all).")


class AclModel(BaseModel):
    """One binding: who may (ALLOW) or may not (DENY) do an operation on which resources."""

    model_config = ConfigDict(extra="forbid")

    principal: str = Field(pattern=_PRINCIPAL, description="User:<name>, or User:* for every caller.")
    host: str = Field("*", min_length=1, max_length=255, description="A client address, or * for any.")
    resource_type: ResourceType
    pattern_type: PatternType = PatternType.LITERAL
    resource_name: str = _NAME
    operation: Operation
    permission: Permission = Permission.ALLOW

    def binding(self) -> AclBinding:
        name = CLUSTER_NAME if self.resource_type is ResourceType.CLUSTER else self.resource_name
        if self.resource_type is ResourceType.CLUSTER and self.pattern_type is not PatternType.LITERAL:
            raise InvalidParameterError("a CLUSTER binding is LITERAL", field="pattern_type")
        return AclBinding(self.principal, self.host, self.resource_type, self.pattern_type, name,
                          self.operation, self.permission)

    @classmethod
    def of(cls, binding: AclBinding) -> AclModel:
        return cls(principal=binding.principal, host=binding.host, resource_type=binding.resource_type,
                   pattern_type=binding.pattern_type, resource_name=binding.resource_name,
                   operation=binding.operation, permission=binding.permission)


class CreateAcls(BaseModel):
    model_config = ConfigDict(extra="forbid")

    acls: list[AclModel] = Field(min_length=1, max_length=1000)


class AclList(BaseModel):
    acls: list[AclModel]


PrincipalQ = Annotated[str | None, Query(pattern=_PRINCIPAL, description="Only this principal's.")]
HostQ = Annotated[str | None, Query(min_length=1, max_length=255, description="Only for this host.")]
TypeQ = Annotated[ResourceType | None, Query(description="Only on this resource type.")]
PatternQ = Annotated[
    PatternType | Literal["ANY", "MATCH"],
    Query(description="LITERAL, PREFIXED, ANY (either; name compared exactly) or MATCH (all that apply)."),
]
NameQ = Annotated[str | None, Query(min_length=1, max_length=255, description="The resource name.")]
OperationQ = Annotated[Operation | None, Query(description="Only of this operation.")]
PermissionQ = Annotated[Permission | None, Query(description="Only ALLOW or only DENY.")]


def _filter(principal: str | None, host: str | None, resource_type: ResourceType | None,
            pattern_type: PatternType | str, resource_name: str | None, operation: Operation | None,
            permission: Permission | None) -> AclBindingFilter:
    return AclBindingFilter(principal=principal, host=host, resource_type=resource_type,
                            pattern_type=pattern_type, resource_name=resource_name,
                            operation=operation, permission=permission)


@router.post("", response_model=AclList, status_code=201, dependencies=[JsonBody],
             responses=error_responses(ErrorCode.INVALID_REQUEST, ErrorCode.CLUSTER_AUTHORIZATION_FAILED))
async def create_acls(request: Request, body: CreateAcls, catalog: CatalogDep) -> AclList:
    """Add bindings (``kafka-acls --add``); answers those that were not there yet."""
    bindings = [acl.binding() for acl in body.acls]

    def create() -> list[AclBinding]:
        with catalog.begin() as session:
            return catalog_acls.create_acls(session, bindings=bindings)

    added = await to_thread.run_sync(create)
    await request.app.state.security.cache.refresh()
    return AclList(acls=[AclModel.of(b) for b in added])


@router.get("", response_model=AclList,
            responses=error_responses(ErrorCode.CLUSTER_AUTHORIZATION_FAILED))
async def list_acls(
    catalog: CatalogDep, principal: PrincipalQ = None, host: HostQ = None, resource_type: TypeQ = None,
    pattern_type: PatternQ = "ANY", resource_name: NameQ = None, operation: OperationQ = None,
    permission: PermissionQ = None,
) -> AclList:
    """The bindings the filter matches (``kafka-acls --list``), in creation order."""
    where = _filter(principal, host, resource_type, pattern_type, resource_name, operation, permission)

    def read() -> list[AclBinding]:
        with catalog.read() as session:
            return catalog_acls.list_acls(session, where=where)

    return AclList(acls=[AclModel.of(b) for b in await to_thread.run_sync(read)])


@router.delete("", response_model=AclList,
               responses=error_responses(ErrorCode.CLUSTER_AUTHORIZATION_FAILED))
async def delete_acls(
    request: Request, catalog: CatalogDep, principal: PrincipalQ = None, host: HostQ = None,
    resource_type: TypeQ = None, pattern_type: PatternQ = "ANY", resource_name: NameQ = None,
    operation: OperationQ = None, permission: PermissionQ = None,
) -> AclList:
    """Remove the bindings the filter matches (``kafka-acls --remove``); answers them."""
    where = _filter(principal, host, resource_type, pattern_type, resource_name, operation, permission)

    def delete() -> list[AclBinding]:
        with catalog.begin() as session:
            return catalog_acls.delete_acls(session, where=where)

    deleted = await to_thread.run_sync(delete)
    await request.app.state.security.cache.refresh()
    return AclList(acls=[AclModel.of(b) for b in deleted])
