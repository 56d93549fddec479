"""Query conditions: rules.query_match and rules.query_exact.

A rule may match only requests whose query carries given parameters (`query_match`, its canonical
`name=value&...` text) or no other parameter (`query_exact`). Existing rules have neither.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("rules") as batch:
        batch.add_column(sa.Column("query_match", sa.Text(), nullable=True))
        batch.add_column(sa.Column("query_exact", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("rules") as batch:
        batch.drop_column("query_exact")
        batch.drop_column("query_match")
