"""Initial schema: conversations, events, model versions.

Revision ID: 0001
Revises:
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "conversation",
        sa.Column("id", sa.String(300), primary_key=True),
        sa.Column("channel", sa.String(50), nullable=False, index=True),
        sa.Column("sender", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("session", sa.Integer(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("handed_off", sa.Boolean(), nullable=False, index=True),
    )
    op.create_table(
        "event",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("conversation_id", sa.String(300), sa.ForeignKey("conversation.id"), nullable=False, index=True),
        sa.Column("session", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("text", sa.String(), nullable=True),
        sa.Column("intent", sa.String(200), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("entities", sa.JSON(), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=True),
        sa.Column("source", sa.String(30), nullable=True),
        sa.Column("response", sa.String(200), nullable=True),
        sa.Column("buttons", sa.JSON(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("delivered", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "modelversion",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("version", sa.String(64), nullable=False, index=True),
        sa.Column("path", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("event")
    op.drop_table("modelversion")
    op.drop_table("conversation")
