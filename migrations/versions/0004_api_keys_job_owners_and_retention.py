"""api keys, job owners and retention

API keys (only a hash of each secret); a job's owner (the key that created it); when
retention erased a job's images (``purged_at`` on jobs and artifacts); an index on when
features finished (admission control measures the drain rate). Idempotency keys
become scoped to their owner, ``"<owner key id or '->:<key>"``: the keys stored before
had no owner, so they get the ``-:`` prefix (and lose it again on downgrade).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 18:10:09
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | Sequence[str] | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        'api_keys',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('prefix', sa.String(length=16), nullable=False),
        sa.Column('secret_hash', sa.String(length=64), nullable=False),
        sa.Column('rate', sa.String(length=32), nullable=True),
        sa.Column('max_jobs_per_day', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys')),
        sa.UniqueConstraint('name', name=op.f('uq_api_keys_name')),
        sa.UniqueConstraint('secret_hash', name=op.f('uq_api_keys_secret_hash')),
    )
    with op.batch_alter_table('artifacts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('purged_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('owner_key_id', sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column('purged_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.alter_column(
            'idempotency_key',
            existing_type=sa.VARCHAR(length=255),
            type_=sa.String(length=320),
            existing_nullable=True,
        )
        batch_op.create_index(batch_op.f('ix_jobs_owner_key_id'), ['owner_key_id'], unique=False)
        batch_op.create_foreign_key(
            batch_op.f('fk_jobs_owner_key_id_api_keys'),
            'api_keys',
            ['owner_key_id'],
            ['id'],
            ondelete='SET NULL',
        )
    op.create_index(
        'ix_feature_runs_finished_at', 'feature_runs', ['finished_at'], unique=False
    )
    op.execute(
        "UPDATE jobs SET idempotency_key = '-:' || idempotency_key "
        "WHERE idempotency_key IS NOT NULL"
    )


def downgrade() -> None:
    """Revert this revision."""
    # Keys of different owners may collide once unscoped: keep the oldest job's.
    op.execute(
        "UPDATE jobs SET idempotency_key = NULL WHERE idempotency_key IS NOT NULL "
        "AND idempotency_key NOT LIKE '-:%'"
    )
    op.execute(
        "UPDATE jobs SET idempotency_key = substr(idempotency_key, 3) "
        "WHERE idempotency_key LIKE '-:%'"
    )
    op.drop_index('ix_feature_runs_finished_at', table_name='feature_runs')
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_jobs_owner_key_id_api_keys'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_jobs_owner_key_id'))
        batch_op.alter_column(
            'idempotency_key',
            existing_type=sa.String(length=320),
            type_=sa.VARCHAR(length=255),
            existing_nullable=True,
        )
        batch_op.drop_column('purged_at')
        batch_op.drop_column('owner_key_id')
    with op.batch_alter_table('artifacts', schema=None) as batch_op:
        batch_op.drop_column('purged_at')
    op.drop_table('api_keys')
