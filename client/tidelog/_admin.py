"""``Admin``: topics, configs, partitions, consumer groups and their offsets (``kafka-topics``,
``kafka-configs``, ``kafka-consumer-groups`` as methods)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tidelog import _api
from tidelog._types import GroupDescription, OffsetsResult, TopicDescription

if TYPE_CHECKING:
    from tidelog._client import AsyncClient, Client

__all__ = ["RESET_TARGETS", "Admin", "AsyncAdmin"]

RESET_TARGETS = ("earliest", "latest", "timestamp", "offset", "shift_by")


def _check_reset(to: str, value: int | None) -> None:
    if to not in RESET_TARGETS:
        raise ValueError(f"to must be one of {', '.join(RESET_TARGETS)}, not {to!r}")
    if to in ("timestamp", "offset", "shift_by") and value is None:
        raise ValueError(f"resetting to {to} needs a value")


class Admin:
    """Administration over a ``Client``; every method is one request."""

    def __init__(self, client: Client) -> None:
        self._client = client

    # topics
    def create_topic(
        self,
        name: str,
        partitions: int | None = None,
        *,
        replication_factor: int | None = None,
        configs: Mapping[str, Any] | None = None,
        validate_only: bool = False,
    ) -> TopicDescription:
        """Create a topic; with ``validate_only`` only check that it could be created.

        ``partitions`` and ``replication_factor`` default to the broker's defaults.
        """
        return self._client.call(
            _api.create_topic(name, partitions, replication_factor, configs, validate_only)
        )

    def list_topics(self) -> list[TopicDescription]:
        return self._client.call(_api.list_topics())

    def describe_topic(self, name: str) -> TopicDescription:
        """Return the topic with each partition's leader, replicas, ISR and offsets, and its configs."""
        return self._client.call(_api.describe_topic(name))

    def create_partitions(self, name: str, total: int) -> TopicDescription:
        """Raise the topic's partition count to ``total`` (it can never be lowered)."""
        return self._client.call(_api.create_partitions(name, total))

    def delete_topic(self, name: str) -> None:
        self._client.call(_api.delete_topic(name))

    def delete_records(self, topic: str, partition: int, offset: int) -> int:
        """Delete the records below ``offset`` (-1: the high watermark); return the new log start."""
        return self._client.call(_api.delete_records(topic, partition, offset))

    def describe_configs(self, name: str) -> dict[str, Any]:
        """Return the topic's effective configs, ``{name: value}``."""
        return self._client.call(_api.describe_configs(name))

    def alter_configs(self, name: str, configs: Mapping[str, Any]) -> dict[str, Any]:
        """Merge ``configs`` into the topic's (a ``None`` value resets that config to its default)."""
        return self._client.call(_api.alter_configs(name, configs))

    # groups
    def list_groups(self) -> list[dict[str, Any]]:
        return self._client.call(_api.list_groups())

    def describe_group(self, group: str) -> GroupDescription:
        return self._client.call(_api.describe_group(group))

    def delete_group(self, group: str) -> None:
        """Delete an empty group and its committed offsets."""
        self._client.call(_api.delete_group(group))

    def list_group_offsets(self, group: str) -> OffsetsResult:
        """Return the group's committed offsets with each partition's high watermark and lag."""
        return self._client.call(_api.group_offsets(group))

    def commit_offsets(self, group: str, offsets: Mapping[tuple[str, int], int]) -> None:
        """Commit offsets for a group that has no members (a member commits through its Consumer)."""
        self._client.call(
            _api.commit(
                group, [(t, p, o, None) for (t, p), o in offsets.items()], member_id=None, generation=None
            )
        )

    def reset_offsets(
        self,
        group: str,
        topics: Sequence[str],
        to: str,
        value: int | None = None,
        *,
        dry_run: bool = False,
    ) -> OffsetsResult:
        """Reset an inactive group's offsets like ``kafka-consumer-groups --reset-offsets``."""
        _check_reset(to, value)
        return self._client.call(_api.reset_offsets(group, topics, to, value, dry_run))

    # credentials (docs/security.md)
    def create_api_key(
        self, principal: str, *, description: str = "", expires_at_ms: int | None = None
    ) -> dict[str, Any]:
        """A new API key for ``principal``; the answer's ``key`` is shown this once only."""
        return self._client.call(_api.create_api_key(principal, description, expires_at_ms))

    def list_api_keys(self, principal: str | None = None) -> list[dict[str, Any]]:
        """Every API key (no secrets), revoked ones with ``revoked_at_ms``."""
        return self._client.call(_api.list_api_keys(principal))

    def revoke_api_key(self, key_id: str) -> dict[str, Any]:
        """Refuse the key from now on, on every broker."""
        return self._client.call(_api.revoke_api_key(key_id))

    def create_user(self, name: str, password: str) -> dict[str, Any]:
        """A password user (HTTP Basic, the console's sign-in), ``User:<name>``."""
        return self._client.call(_api.create_user(name, password))

    def list_users(self) -> list[dict[str, Any]]:
        return self._client.call(_api.list_users())

    def alter_user(self, name: str, password: str) -> dict[str, Any]:
        """Set the user's password (the old one is refused from now on)."""
        return self._client.call(_api.alter_user(name, password))

    def delete_user(self, name: str) -> None:
        self._client.call(_api.delete_user(name))

    def whoami(self) -> dict[str, Any]:
        """The principal the client's credential authenticates as."""
        return self._client.call(_api.whoami())


    # ACLs (kafka-acls) and quotas (kafka-configs --entity-type users)
    def create_acls(self, acls: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Add ACL bindings (``principal``, ``resource_type``, ``resource_name``, ``operation``, and
        optionally ``host``, ``pattern_type``, ``permission``); return those that were not there yet."""
        return self._client.call(_api.create_acls(acls))

    def list_acls(self, **where: Any) -> list[dict[str, Any]]:
        """The bindings matching the filter (``principal=``, ``resource_type=``, ``pattern_type=``
        including ``ANY`` and ``MATCH``, ``resource_name=``, ``operation=``, ``permission=``, ``host=``)."""
        return self._client.call(_api.list_acls(where))

    def delete_acls(self, **where: Any) -> list[dict[str, Any]]:
        """Remove the bindings matching the filter (as ``list_acls``); return them."""
        return self._client.call(_api.delete_acls(where))

    def list_quotas(self) -> list[dict[str, Any]]:
        """Every quota entry, the default one (``<default>``) included."""
        return self._client.call(_api.list_quotas())

    def set_quota(self, principal: str, **limits: int | None) -> dict[str, Any]:
        """Set limits of ``principal`` (or ``<default>``): ``producer_byte_rate``,
        ``consumer_byte_rate``, ``request_rate``, ``max_streams``; ``None`` removes one."""
        return self._client.call(_api.set_quota(principal, limits))

    def delete_quota(self, principal: str) -> None:
        """Remove the quota entry of ``principal``."""
        self._client.call(_api.delete_quota(principal))

class AsyncAdmin:
    """``Admin`` over an ``AsyncClient``."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def create_topic(
        self,
        name: str,
        partitions: int | None = None,
        *,
        replication_factor: int | None = None,
        configs: Mapping[str, Any] | None = None,
        validate_only: bool = False,
    ) -> TopicDescription:
        return await self._client.call(
            _api.create_topic(name, partitions, replication_factor, configs, validate_only)
        )

    async def list_topics(self) -> list[TopicDescription]:
        return await self._client.call(_api.list_topics())

    async def describe_topic(self, name: str) -> TopicDescription:
        return await self._client.call(_api.describe_topic(name))

    async def create_partitions(self, name: str, total: int) -> TopicDescription:
        return await self._client.call(_api.create_partitions(name, total))

    async def delete_topic(self, name: str) -> None:
        await self._client.call(_api.delete_topic(name))

    async def delete_records(self, topic: str, partition: int, offset: int) -> int:
        """Delete the records below ``offset`` (-1: the high watermark); return the new log start."""
        return await self._client.call(_api.delete_records(topic, partition, offset))

    async def describe_configs(self, name: str) -> dict[str, Any]:
        return await self._client.call(_api.describe_configs(name))

    async def alter_configs(self, name: str, configs: Mapping[str, Any]) -> dict[str, Any]:
        return await self._client.call(_api.alter_configs(name, configs))

    async def list_groups(self) -> list[dict[str, Any]]:
        return await self._client.call(_api.list_groups())

    async def describe_group(self, group: str) -> GroupDescription:
        return await self._client.call(_api.describe_group(group))

    async def delete_group(self, group: str) -> None:
        await self._client.call(_api.delete_group(group))

    async def list_group_offsets(self, group: str) -> OffsetsResult:
        return await self._client.call(_api.group_offsets(group))

    async def commit_offsets(self, group: str, offsets: Mapping[tuple[str, int], int]) -> None:
        await self._client.call(
            _api.commit(
                group, [(t, p, o, None) for (t, p), o in offsets.items()], member_id=None, generation=None
            )
        )

    async def reset_offsets(
        self,
        group: str,
        topics: Sequence[str],
        to: str,
        value: int | None = None,
        *,
        dry_run: bool = False,
    ) -> OffsetsResult:
        _check_reset(to, value)
        return await self._client.call(_api.reset_offsets(group, topics, to, value, dry_run))

    # credentials (docs/security.md)
    async def create_api_key(
        self, principal: str, *, description: str = "", expires_at_ms: int | None = None
    ) -> dict[str, Any]:
        """A new API key for ``principal``; the answer's ``key`` is shown this once only."""
        return await self._client.call(_api.create_api_key(principal, description, expires_at_ms))

    async def list_api_keys(self, principal: str | None = None) -> list[dict[str, Any]]:
        """Every API key (no secrets), revoked ones with ``revoked_at_ms``."""
        return await self._client.call(_api.list_api_keys(principal))

    async def revoke_api_key(self, key_id: str) -> dict[str, Any]:
        """Refuse the key from now on, on every broker."""
        return await self._client.call(_api.revoke_api_key(key_id))

    async def create_user(self, name: str, password: str) -> dict[str, Any]:
        """A password user (HTTP Basic, the console's sign-in), ``User:<name>``."""
        return await self._client.call(_api.create_user(name, password))

    async def list_users(self) -> list[dict[str, Any]]:
        return await self._client.call(_api.list_users())

    async def alter_user(self, name: str, password: str) -> dict[str, Any]:
        """Set the user's password (the old one is refused from now on)."""
        return await self._client.call(_api.alter_user(name, password))

    async def delete_user(self, name: str) -> None:
        await self._client.call(_api.delete_user(name))

    async def whoami(self) -> dict[str, Any]:
        """The principal the client's credential authenticates as."""
        return await self._client.call(_api.whoami())

    async def create_acls(self, acls: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        return await self._client.call(_api.create_acls(acls))

    async def list_acls(self, **where: Any) -> list[dict[str, Any]]:
        return await self._client.call(_api.list_acls(where))

    async def delete_acls(self, **where: Any) -> list[dict[str, Any]]:
        return await self._client.call(_api.delete_acls(where))

    async def list_quotas(self) -> list[dict[str, Any]]:
        return await self._client.call(_api.list_quotas())

    async def set_quota(self, principal: str, **limits: int | None) -> dict[str, Any]:
        return await self._client.call(_api.set_quota(principal, limits))

    async def delete_quota(self, principal: str) -> None:
        await self._client.call(_api.delete_quota(principal))
