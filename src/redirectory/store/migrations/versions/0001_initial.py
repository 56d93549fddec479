"""Initial schema: rules, settings, revisions, changes, rule_hits, unmatched_paths.

Revision ID: 0001
Revises:
Create Date: 2025-01-01 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "rules",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("source_regex", sa.Text(), nullable=True),
        sa.Column("to", sa.Text(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("methods", sa.Text(), nullable=True),
        sa.Column("query", sa.String(8), nullable=False),
        sa.Column("starts", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ends", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cache", sa.Integer(), nullable=True),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("case_insensitive", sa.Boolean(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rules"),
    )
    op.create_index("ix_rules_status", "rules", ["status"])
    op.create_index("ix_rules_source", "rules", ["source"])

    op.create_table(
        "settings",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_settings"),
    )

    op.create_table(
        "revisions",
        sa.Column("revision", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("revision", name="pk_revisions"),
    )

    op.create_table(
        "changes",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("op", sa.String(16), nullable=False),
        sa.Column("rule_id", sa.String(36), nullable=True),
        sa.Column("before", sa.Text(), nullable=True),
        sa.Column("after", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_changes"),
        sa.ForeignKeyConstraint(
            ["revision"],
            ["revisions.revision"],
            name="fk_changes_revision_revisions",
        ),
    )
    op.create_index("ix_changes_revision", "changes", ["revision"])

    op.create_table(
        "rule_hits",
        sa.Column("rule_id", sa.String(36), nullable=False),
        sa.Column("hits", sa.BigInteger(), nullable=False),
        sa.Column("last_hit", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("rule_id", name="pk_rule_hits"),
    )

    op.create_table(
        "unmatched_paths",
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("hits", sa.BigInteger(), nullable=False),
        sa.Column("last_hit", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("path", name="pk_unmatched_paths"),
    )
    op.create_index("ix_unmatched_paths_hits", "unmatched_paths", ["hits"])


def downgrade() -> None:
    op.drop_index("ix_unmatched_paths_hits", table_name="unmatched_paths")
    op.drop_table("unmatched_paths")
    op.drop_table("rule_hits")
    op.drop_index("ix_changes_revision", table_name="changes")
    op.drop_table("changes")
    op.drop_table("revisions")
    op.drop_table("settings")
    op.drop_index("ix_rules_source", table_name="rules")
    op.drop_index("ix_rules_status", table_name="rules")
    op.drop_table("rules")
