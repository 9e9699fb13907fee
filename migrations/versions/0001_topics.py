"""Topics, their config overrides and partitions.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "topics",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(249), nullable=False),
        sa.Column("topic_uuid", sa.String(36), nullable=False),
        sa.Column("replication_factor", sa.Integer(), nullable=False),
        sa.Column("created_at_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_topics")),
        sa.UniqueConstraint("name", name=op.f("uq_topics_name")),
    )
    op.create_table(
        "topic_configs",
        sa.Column("topic_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["topic_id"], ["topics.id"], name=op.f("fk_topic_configs_topic_id_topics"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("topic_id", "name", name=op.f("pk_topic_configs")),
    )
    op.create_table(
        "partitions",
        sa.Column("topic_id", sa.Integer(), nullable=False),
        sa.Column("partition", sa.Integer(), nullable=False),
        sa.Column("leader", sa.Integer(), nullable=True),
        sa.Column("replicas", sa.JSON(), nullable=False),
        sa.Column("isr", sa.JSON(), nullable=False),
        sa.Column("leader_epoch", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["topic_id"], ["topics.id"], name=op.f("fk_partitions_topic_id_topics"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("topic_id", "partition", name=op.f("pk_partitions")),
    )


def downgrade() -> None:
    op.drop_table("partitions")
    op.drop_table("topic_configs")
    op.drop_table("topics")
