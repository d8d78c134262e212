"""feature heartbeats and error references

A running feature's heartbeat (``heartbeat_at``) tells a live run from a lost one; an
unexpected failure's public error carries a reference (``error_ref``) to its log lines.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 14:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | Sequence[str] | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table('feature_runs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('error_ref', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table('feature_runs', schema=None) as batch_op:
        batch_op.drop_column('heartbeat_at')
        batch_op.drop_column('error_ref')
