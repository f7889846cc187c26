"""Model registry: each version's training-data hash, the version it replaced, when it went live.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("modelversion") as table:
        table.add_column(sa.Column("data_hash", sa.String(64), nullable=True))
        table.add_column(sa.Column("parent", sa.String(64), nullable=True))
        table.add_column(sa.Column("promoted_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("modelversion") as table:
        table.drop_column("promoted_at")
        table.drop_column("parent")
        table.drop_column("data_hash")
