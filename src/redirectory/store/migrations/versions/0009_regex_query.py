"""Regexes over the path and query: rules.regex_query.

A `from_regex` may read the request's path and query as one text (`/a?x=1`), as nginx's
`$request_uri` does, instead of the path alone. Existing rules read the path.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 13:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("rules") as batch:
        batch.add_column(sa.Column("regex_query", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("rules") as batch:
        batch.drop_column("regex_query")
