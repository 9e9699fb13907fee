"""Clustered mode: broker registrations, the controller lease, and a partition epoch.

``brokers`` holds one row per broker id (its URL, the incarnation it registered with, its last
heartbeat and whether the controller has fenced it). ``controller_lease`` holds a single row: the
broker holding the controller lease, the lease's epoch (bumped at every change of holder) and when
it expires. ``partitions.partition_epoch`` is bumped on every change of a partition's leader or ISR:
leaders and the controller change a partition only by compare-and-set on it (as KRaft's partition
epoch). Single-node brokers never touch these tables.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "brokers",
        sa.Column("broker_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("incarnation", sa.BigInteger(), nullable=False),
        sa.Column("registered_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("last_heartbeat_ms", sa.BigInteger(), nullable=False),
        sa.Column("fenced", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("broker_id", name=op.f("pk_brokers")),
    )
    op.create_table(
        "controller_lease",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("holder", sa.Integer(), nullable=True),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("expires_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_controller_lease")),
    )
    op.execute("INSERT INTO controller_lease (id, holder, epoch, expires_at_ms) VALUES (1, NULL, 0, 0)")
    with op.batch_alter_table("partitions") as batch:
        batch.add_column(sa.Column("partition_epoch", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("partitions") as batch:
        batch.drop_column("partition_epoch")
    op.drop_table("controller_lease")
    op.drop_table("brokers")
