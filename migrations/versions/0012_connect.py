"""tidelog connect: connectors, tasks, workers, source offsets, active topics, the assignment lock.

Revision ID: 0012_connect
Revises: 0011_acls
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_connect"
down_revision: str | None = "0011_acls"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "connectors",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("connector_class", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("config", sa.Text(), nullable=False),
        sa.Column("target_state", sa.String(16), nullable=False),
        sa.Column("trace", sa.Text(), nullable=True),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_connectors")),
    )
    op.create_table(
        "connect_tasks",
        sa.Column("connector", sa.String(255), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("config", sa.Text(), nullable=False),
        sa.Column("worker_id", sa.String(255), nullable=True),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("trace", sa.Text(), nullable=True),
        sa.Column("restart_epoch", sa.Integer(), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["connector"],
            ["connectors.name"],
            name=op.f("fk_connect_tasks_connector_connectors"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("connector", "task_id", name=op.f("pk_connect_tasks")),
    )
    op.create_table(
        "connect_workers",
        sa.Column("worker_id", sa.String(255), nullable=False),
        sa.Column("last_seen_ms", sa.BigInteger(), nullable=False),
        sa.Column("session_timeout_ms", sa.Integer(), nullable=False),
        sa.Column("running", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("worker_id", name=op.f("pk_connect_workers")),
    )
    op.create_table(
        "connect_offsets",
        sa.Column("connector", sa.String(255), nullable=False),
        sa.Column("partition_key", sa.String(1024), nullable=False),
        sa.Column("offset", sa.Text(), nullable=False),
        sa.Column("updated_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("connector", "partition_key", name=op.f("pk_connect_offsets")),
    )
    op.create_table(
        "connect_topics",
        sa.Column("connector", sa.String(255), nullable=False),
        sa.Column("topic", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("connector", "topic", name=op.f("pk_connect_topics")),
    )
    op.create_table(
        "connect_lock",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connect_lock")),
    )


def downgrade() -> None:
    for table in (
        "connect_lock",
        "connect_topics",
        "connect_offsets",
        "connect_workers",
        "connect_tasks",
        "connectors",
    ):
        op.drop_table(table)
