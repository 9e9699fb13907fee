"""Idempotency-Key claims carry a broker-owned producer id.

``idempotency_keys.producer_id``: allocated from ``producer_ids`` in the transaction that claims the
key; the produce then runs as that idempotent producer (epoch 0, sequence 0 of each partition), so
a retry, on any broker, is recognised by the partition's replicated producer state.
``idempotency_keys.outcome_unknown``: the request failed after records may have been written
(e.g. 50305): the claim is kept, and the next retry with the same key takes it over at once.

Revision ID: 0009
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.add_column(sa.Column("producer_id", sa.BigInteger(), nullable=True))
        batch.add_column(
            sa.Column("outcome_unknown", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.drop_column("outcome_unknown")
        batch.drop_column("producer_id")
