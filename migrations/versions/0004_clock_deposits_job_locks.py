"""broker clock per account, deposits and withdrawals, job locks

- ``accounts.clock_at``: the latest broker time of any write on the account. Writes stamped earlier are
  refused, so broker time never goes backwards. Existing rows take the latest time the ledger already holds
  for the account (its update time, its runs' start and end, its fills and quotes).
- ``cash_movements.kind`` also allows ``deposit`` and ``withdrawal`` (the cash law counts them like any
  other movement).
- ``job_locks``: one row per (account, job) while a long-running job (a replay) holds the account.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 05:00:00.000000
"""
from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from alembic import op
import sqlalchemy as sa


revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)


def _audit_views() -> ModuleType:
    """Revision 0002, whose upgrade/downgrade create/drop the v_* views as they stand at this revision.

    SQLite rebuilds a table to add a NOT NULL column or change a CHECK, and refuses while views name it,
    so the views are dropped first and created again at the end (see 0002's docstring).
    """
    path = Path(__file__).with_name('0002_audit_views.py')
    spec = importlib.util.spec_from_file_location('ledger_migration_0002', path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade() -> None:
    views = _audit_views()
    views.downgrade()
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('clock_at', _TIME, nullable=True))
    # Times are stored as ISO text on SQLite and timestamptz on PostgreSQL: both order correctly under MAX.
    op.execute(
        "UPDATE accounts SET clock_at = ("
        " SELECT MAX(t) FROM ("
        "  SELECT accounts.updated_at AS t"
        "  UNION ALL SELECT MAX(r.started_at) FROM runs r WHERE r.account_id = accounts.id"
        "  UNION ALL SELECT MAX(r.ended_at) FROM runs r WHERE r.account_id = accounts.id"
        "  UNION ALL SELECT MAX(f.filled_at) FROM fills f WHERE f.account_id = accounts.id"
        "  UNION ALL SELECT MAX(q.quoted_at) FROM quotes q WHERE q.account_id = accounts.id"
        " ) AS times)"
    )
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.alter_column('clock_at', existing_type=_TIME, nullable=False)

    with op.batch_alter_table('cash_movements', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_cash_movements_kind'), type_='check')
        batch_op.create_check_constraint(
            op.f('ck_cash_movements_kind'), "kind IN ('initial', 'fill', 'deposit', 'withdrawal')"
        )

    op.create_table('job_locks',
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('job', sa.String(length=128), nullable=False),
    sa.Column('holder', sa.String(length=32), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('acquired_at', _TIME, nullable=False),
    sa.Column('heartbeat_at', _TIME, nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_job_locks_account_id_accounts')),
    sa.PrimaryKeyConstraint('account_id', 'job', name=op.f('pk_job_locks'))
    )
    views.upgrade()


def downgrade() -> None:
    views = _audit_views()
    views.downgrade()
    op.drop_table('job_locks')
    op.execute("DELETE FROM cash_movements WHERE kind IN ('deposit', 'withdrawal')")
    with op.batch_alter_table('cash_movements', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_cash_movements_kind'), type_='check')
        batch_op.create_check_constraint(op.f('ck_cash_movements_kind'), "kind IN ('initial', 'fill')")
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('clock_at')
    views.upgrade()
