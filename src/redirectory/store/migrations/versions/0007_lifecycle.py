"""An endpoint's lifecycle on a rule: rules.deprecation, rules.sunset, rules.links.

Sent as the RFC 9745 `Deprecation`, RFC 8594 `Sunset` and RFC 8288 `Link` headers. Existing rules
have none.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("rules") as batch:
        batch.add_column(sa.Column("deprecation", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("sunset", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("links", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rules") as batch:
        batch.drop_column("links")
        batch.drop_column("sunset")
        batch.drop_column("deprecation")
