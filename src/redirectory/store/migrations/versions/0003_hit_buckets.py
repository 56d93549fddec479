"""Hits over time: hit_buckets.

One row per (bucket width, bucket start, rule) with the hits counted in it: minute buckets
(width 60) and hour buckets (width 3600); `rule_id` "" counts requests no rule matched.
The gateway's batched flush adds to both widths; old buckets are pruned as it goes.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 23:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "hit_buckets",
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("start", sa.BigInteger(), nullable=False),
        sa.Column("rule_id", sa.String(36), nullable=False),
        sa.Column("hits", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("width", "start", "rule_id", name="pk_hit_buckets"),
    )


def downgrade() -> None:
    op.drop_table("hit_buckets")
