"""Gateway processes: gateway_processes; an index on rules.position.

One row per gateway worker process, on any host, refreshed by the process every second or so:
its revision, health and last sync time, so `/healthz` on any replica can show whether the
whole fleet has converged.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "gateway_processes",
        sa.Column("id", sa.String(200), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("serve_id", sa.String(200), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("healthy", sa.Boolean(), nullable=False),
        sa.Column("listening", sa.Boolean(), nullable=False),
        sa.Column("last_error", sa.String(200), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_sync", sa.DateTime(timezone=True), nullable=True),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_gateway_processes"),
    )
    # Creating one rule reads max(position): without an index that scans 100k rules per write.
    op.create_index("ix_rules_position", "rules", ["position"])


def downgrade() -> None:
    op.drop_index("ix_rules_position", table_name="rules")
    op.drop_table("gateway_processes")
