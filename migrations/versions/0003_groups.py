"""Consumer groups, members, partition ownership and committed offsets.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _group_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["group_id"],
        ["consumer_groups.group_id"],
        name=op.f(f"fk_{table}_group_id_consumer_groups"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "consumer_groups",
        sa.Column("group_id", sa.String(255), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("protocol", sa.String(32), nullable=True),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("state_changed_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("empty_since_ms", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("group_id", name=op.f("pk_consumer_groups")),
    )
    op.create_table(
        "group_members",
        sa.Column("group_id", sa.String(255), nullable=False),
        sa.Column("member_id", sa.String(64), nullable=False),
        sa.Column("instance_id", sa.String(255), nullable=True),
        sa.Column("topics", sa.JSON(), nullable=True),
        sa.Column("topic_pattern", sa.Text(), nullable=True),
        sa.Column("assignor", sa.String(32), nullable=False),
        sa.Column("session_timeout_ms", sa.Integer(), nullable=False),
        sa.Column("rebalance_timeout_ms", sa.Integer(), nullable=False),
        sa.Column("auto_offset_reset", sa.String(16), nullable=False),
        sa.Column("client_kind", sa.String(16), nullable=False),
        sa.Column("joined_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_seen_ms", sa.BigInteger(), nullable=False),
        sa.Column("known_generation", sa.Integer(), nullable=False),
        _group_fk("group_members"),
        sa.PrimaryKeyConstraint("group_id", "member_id", name=op.f("pk_group_members")),
        sa.UniqueConstraint("group_id", "instance_id", name=op.f("uq_group_members_group_id_instance_id")),
    )
    op.create_table(
        "group_partitions",
        sa.Column("group_id", sa.String(255), nullable=False),
        sa.Column("topic", sa.String(249), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("owner_member_id", sa.String(64), nullable=False),
        sa.Column("assigned_generation", sa.Integer(), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=True),
        sa.Column("target_member_id", sa.String(64), nullable=True),
        sa.Column("revoked_generation", sa.Integer(), nullable=True),
        sa.Column("revoke_deadline_ms", sa.BigInteger(), nullable=True),
        _group_fk("group_partitions"),
        sa.PrimaryKeyConstraint("group_id", "topic", "partition", name=op.f("pk_group_partitions")),
    )
    op.create_table(
        "group_offsets",
        sa.Column("group_id", sa.String(255), nullable=False),
        sa.Column("topic", sa.String(249), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("metadata", sa.Text(), nullable=True),
        sa.Column("committed_at_ms", sa.BigInteger(), nullable=False),
        _group_fk("group_offsets"),
        sa.PrimaryKeyConstraint("group_id", "topic", "partition", name=op.f("pk_group_offsets")),
    )


def downgrade() -> None:
    op.drop_table("group_offsets")
    op.drop_table("group_partitions")
    op.drop_table("group_members")
    op.drop_table("consumer_groups")
