"""ACL bindings, client quotas and the security version counter (docs/security-acls.md).

Revision ID: 0011_acls
Revises: 0010_auth
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_acls"
down_revision: str | None = "0010_auth"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "acls",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("principal", sa.String(255), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("resource_type", sa.String(32), nullable=False),
        sa.Column("pattern_type", sa.String(16), nullable=False),
        sa.Column("resource_name", sa.String(255), nullable=False),
        sa.Column("operation", sa.String(32), nullable=False),
        sa.Column("permission", sa.String(8), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_acls"),
        sa.UniqueConstraint(
            "principal", "host", "resource_type", "pattern_type", "resource_name", "operation", "permission",
            name="uq_acls_binding",
        ),
    )
    op.create_table(
        "client_quotas",
        sa.Column("principal", sa.String(255), nullable=False),
        sa.Column("producer_byte_rate", sa.BigInteger(), nullable=True),
        sa.Column("consumer_byte_rate", sa.BigInteger(), nullable=True),
        sa.Column("request_rate", sa.BigInteger(), nullable=True),
        sa.Column("max_streams", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("principal", name="pk_client_quotas"),
    )
    op.create_table(
        "security_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_security_version"),
    )


def downgrade() -> None:
    op.drop_table("security_version")
    op.drop_table("client_quotas")
    op.drop_table("acls")
