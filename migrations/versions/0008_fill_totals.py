"""fill totals kept where fills already write: audits in milliseconds on a big ledger

- ``positions``: ``fill_count``, ``bought_qty_e6``, ``sold_qty_e6``, ``bought_notional_e6``,
  ``sold_notional_e6``, ``fees_e6``: the totals of the position's fills, updated by every fill in the row it
  rewrites anyway (no extra page per fill). The per-symbol totals audit reads one row per symbol instead of
  summing every fill (1.3-2 s on a million fills).
- ``daily_totals``: new, one row per account, epoch, UTC day and symbol with the day's fill count, bought and
  sold quantity and notional, fees and realized P&L, added to by every fill (one page per fill on SQLite: the
  table is its key, WITHOUT ROWID). ``v_daily_pnl`` keeps its columns and meaning and now reads it: a daily
  P&L reads one row per day and symbol instead of grouping every fill (a covering index on fills would still
  read every fill: 0.8-1.1 s on a million).
- Existing ledgers: both are filled from their fills.
- Partial indexes: ``orders`` ``(account_id, epoch, status)`` and ``(account_id, symbol, status)`` now hold open
  orders only (``status IN ('new', 'partially_filled')``, the only status their queries look up), and
  ``cash_movements`` ``(account_id, epoch, kind)`` deposits and withdrawals only. An order that fills at once
  and a fill's cash movement no longer write a page of them: a market order writes 3 pages fewer, more than
  the one ``daily_totals`` adds (benchmarks/README.md, "The write path's indexes").

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 09:00:00.000000
"""
from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from alembic import op
import sqlalchemy as sa


revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN_ORDER = "status IN ('new', 'partially_filled')"
CASH_FLOW = "kind IN ('deposit', 'withdrawal')"
# name -> (table, columns, condition of the partial index)
PARTIAL_INDEXES = {
    'ix_orders_account_id_epoch_status': ('orders', ['account_id', 'epoch', 'status'], OPEN_ORDER),
    'ix_orders_account_id_symbol_status': ('orders', ['account_id', 'symbol', 'status'], OPEN_ORDER),
    'ix_cash_movements_account_id_epoch_kind': ('cash_movements', ['account_id', 'epoch', 'kind'], CASH_FLOW),
}
POSITION_TOTALS = ('fill_count', 'bought_qty_e6', 'sold_qty_e6', 'bought_notional_e6', 'sold_notional_e6', 'fees_e6')


def _audit_views() -> ModuleType:
    """Revision 0002 (the v_* views and their unit helpers)."""
    path = Path(__file__).with_name('0002_audit_views.py')
    spec = importlib.util.spec_from_file_location('ledger_migration_0002', path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _daily_pnl_view(u) -> str:
    return f"""
SELECT d.account_id, a.name AS account, d.epoch, d.epoch = a.epoch AS is_current_epoch, d.day, d.symbol,
       d.fill_count,
       {u.amount('d.bought_qty_e6', 'bought_qty')},
       {u.amount('d.sold_qty_e6', 'sold_qty')},
       {u.amount('d.bought_notional_e6', 'bought_notional')},
       {u.amount('d.sold_notional_e6', 'sold_notional')},
       {u.amount('d.fees_e6', 'fees')},
       {u.amount('d.realized_pnl_e6', 'realized_pnl')},
       {u.amount('d.sold_notional_e6 - d.bought_notional_e6 - d.fees_e6', 'net_cash')}
FROM daily_totals d
JOIN accounts a ON a.id = d.account_id"""


def upgrade() -> None:
    views = _audit_views()
    u = views._Units(op.get_bind().dialect.name)
    # Plain ALTER TABLE ADD COLUMN on both engines (no SQLite table rebuild, so the views on positions stay).
    op.add_column('positions', sa.Column('fill_count', sa.Integer(), server_default=sa.text('0'), nullable=False))
    for name in POSITION_TOTALS[1:]:
        op.add_column('positions', sa.Column(name, sa.BigInteger(), server_default=sa.text('0'), nullable=False))

    op.create_table('daily_totals',
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('epoch', sa.Integer(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('symbol', sa.String(length=32), nullable=False),
    sa.Column('fill_count', sa.Integer(), nullable=False),
    sa.Column('bought_qty_e6', sa.BigInteger(), nullable=False),
    sa.Column('sold_qty_e6', sa.BigInteger(), nullable=False),
    sa.Column('bought_notional_e6', sa.BigInteger(), nullable=False),
    sa.Column('sold_notional_e6', sa.BigInteger(), nullable=False),
    sa.Column('fees_e6', sa.BigInteger(), nullable=False),
    sa.Column('realized_pnl_e6', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_daily_totals_account_id_accounts')),
    sa.PrimaryKeyConstraint('account_id', 'epoch', 'day', 'symbol', name=op.f('pk_daily_totals')),
    sqlite_with_rowid=False,
    )
    day = u.day('f.filled_at')
    op.execute(f"""
INSERT INTO daily_totals (account_id, epoch, day, symbol, fill_count, bought_qty_e6, sold_qty_e6,
                          bought_notional_e6, sold_notional_e6, fees_e6, realized_pnl_e6)
SELECT f.account_id, f.epoch, {day}, f.symbol, COUNT(*),
       SUM(CASE WHEN f.side = 'BUY' THEN f.qty_e6 ELSE 0 END),
       SUM(CASE WHEN f.side = 'BUY' THEN 0 ELSE f.qty_e6 END),
       SUM(CASE WHEN f.side = 'BUY' THEN f.notional_e6 ELSE 0 END),
       SUM(CASE WHEN f.side = 'BUY' THEN 0 ELSE f.notional_e6 END),
       SUM(f.fee_e6), SUM(f.realized_pnl_e6)
FROM fills f
GROUP BY f.account_id, f.epoch, {day}, f.symbol""")
    op.execute(f"""
UPDATE positions SET {', '.join(f'{name} = t.{name}' for name in POSITION_TOTALS)}
FROM (SELECT account_id, epoch, symbol, {', '.join(f'SUM({name}) AS {name}' for name in POSITION_TOTALS)}
      FROM daily_totals GROUP BY account_id, epoch, symbol) t
WHERE t.account_id = positions.account_id AND t.epoch = positions.epoch AND t.symbol = positions.symbol""")

    op.execute('DROP VIEW v_daily_pnl')
    op.execute(f'CREATE VIEW v_daily_pnl AS {_daily_pnl_view(u).strip()}')

    for name, (table, columns, condition) in PARTIAL_INDEXES.items():
        op.drop_index(name, table_name=table)
        op.create_index(name, table, columns, unique=False, sqlite_where=sa.text(condition),
                        postgresql_where=sa.text(condition))


def downgrade() -> None:
    """Back to 0007: v_daily_pnl groups the fills again; the totals are dropped (the fills still hold them)."""
    for name, (table, columns, _condition) in PARTIAL_INDEXES.items():
        op.drop_index(name, table_name=table)
        op.create_index(name, table, columns, unique=False)
    views = _audit_views()
    u = views._Units(op.get_bind().dialect.name)
    op.execute('DROP VIEW v_daily_pnl')
    op.execute(f"CREATE VIEW v_daily_pnl AS {views._views(u)['v_daily_pnl'].strip()}")
    op.drop_table('daily_totals')
    # ALTER TABLE DROP COLUMN (SQLite 3.35+): no table rebuild, so the views on positions stay.
    for name in reversed(POSITION_TOTALS):
        op.drop_column('positions', name)
