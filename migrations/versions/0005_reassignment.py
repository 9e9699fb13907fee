"""Partition reassignment: the replica set a partition is moving to.

``partitions.target_replicas`` is NULL except while a reassignment runs: the partition's replicas
are then the union of the old and the target sets, the new replicas catch up as followers, and the
controller switches to the target set once every target replica is in the ISR (KIP-455's
adding/removing replicas, as one target list).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("partitions") as batch:
        batch.add_column(sa.Column("target_replicas", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("partitions") as batch:
        batch.drop_column("target_replicas")
