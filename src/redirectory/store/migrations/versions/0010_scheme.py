"""Scheme conditions: rules.scheme.

A rule may answer requests of one scheme only (`http` or `https`): an http-to-https redirect on
the host it sends to. Existing rules answer both.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision: str | None = "0009"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("rules") as batch:
        batch.add_column(sa.Column("scheme", sa.String(5), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rules") as batch:
        batch.drop_column("scheme")
