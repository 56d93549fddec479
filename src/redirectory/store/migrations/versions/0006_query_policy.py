"""Query policies: rules.query holds `keep`, `drop` or a policy's canonical JSON (Text).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # PostgreSQL changes the column in place; SQLite copies the table (batch mode)
    with op.batch_alter_table("rules") as batch:
        batch.alter_column("query", type_=sa.Text(), existing_type=sa.String(8), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("rules") as batch:
        batch.alter_column("query", type_=sa.String(8), existing_type=sa.Text(), existing_nullable=False)
