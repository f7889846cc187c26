"""Annotations: people's corrections of logged messages (intents, entities, ratings, better replies).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "annotation",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("event_id", sa.Integer(), sa.ForeignKey("event.id", ondelete="SET NULL"), nullable=True, index=True),
        sa.Column("text", sa.String(), nullable=False),
        sa.Column("intent", sa.String(200), nullable=True),
        sa.Column("entities", sa.JSON(), nullable=True),
        sa.Column("rating", sa.String(10), nullable=True),
        sa.Column("reply", sa.String(), nullable=True),
        sa.Column("author", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    )


def downgrade() -> None:
    op.drop_table("annotation")
