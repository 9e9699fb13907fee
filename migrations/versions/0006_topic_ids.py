"""Topic ids (KIP-516): every topic's ``topic_uuid`` is a canonical UUID, unique across topics.

The id tells a re-created topic from the one deleted before it under the same name; every
partition directory carries it in ``partition.metadata``, and a broker never opens a directory
whose id is not the catalog's. Ids written before this revision are normalised to the canonical
lower-case form, and any value that is not a UUID, or repeats another topic's, gets a fresh one
(such a topic's directories are then adopted at the next start, as directories written before
``partition.metadata`` existed are).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_topics = sa.table("topics", sa.column("id", sa.Integer()), sa.column("topic_uuid", sa.String(36)))


def _canonical(value: str | None) -> str | None:
    try:
        return str(uuid.UUID(value or ""))
    except ValueError:
        return None


def upgrade() -> None:
    bind = op.get_bind()
    seen: set[str] = set()
    rows = bind.execute(sa.select(_topics.c.id, _topics.c.topic_uuid).order_by(_topics.c.id)).all()
    for topic_id, value in rows:
        canonical = _canonical(value)
        if canonical is None or canonical in seen:
            canonical = str(uuid.uuid4())
        seen.add(canonical)
        if canonical != value:
            bind.execute(sa.update(_topics).where(_topics.c.id == topic_id).values(topic_uuid=canonical))
    with op.batch_alter_table("topics") as batch:
        batch.create_unique_constraint(op.f("uq_topics_topic_uuid"), ["topic_uuid"])


def downgrade() -> None:
    with op.batch_alter_table("topics") as batch:
        batch.drop_constraint(op.f("uq_topics_topic_uuid"), type_="unique")
