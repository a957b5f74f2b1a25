"""initial ledger schema: accounts, runs, orders, order_events, fills, positions, cash_movements, quotes

Amounts are BIGINT millionths (columns *_e6), exact on SQLite and PostgreSQL; times are UTC.

Revision ID: 0001
Revises: 
Create Date: 2026-11-24 12:44:23.204777
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op
import sqlalchemy as sa


revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('accounts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('epoch', sa.Integer(), nullable=False),
    sa.Column('initial_cash_e6', sa.BigInteger(), nullable=False),
    sa.Column('cash_e6', sa.BigInteger(), nullable=False),
    sa.Column('reserved_cash_e6', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('cash_e6 >= 0', name=op.f('ck_accounts_cash_not_negative')),
    sa.CheckConstraint('initial_cash_e6 >= 0', name=op.f('ck_accounts_initial_cash_not_negative')),
    sa.CheckConstraint('reserved_cash_e6 >= 0', name=op.f('ck_accounts_reserved_cash_not_negative')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_accounts')),
    sa.UniqueConstraint('name', name=op.f('uq_accounts_name'))
    )
    op.create_table('positions',
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('epoch', sa.Integer(), nullable=False),
    sa.Column('symbol', sa.String(length=32), nullable=False),
    sa.Column('qty_e6', sa.BigInteger(), nullable=False),
    sa.Column('reserved_qty_e6', sa.BigInteger(), nullable=False),
    sa.Column('cost_basis_e6', sa.BigInteger(), nullable=False),
    sa.Column('realized_pnl_e6', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('qty_e6 >= 0', name=op.f('ck_positions_no_short')),
    sa.CheckConstraint('reserved_qty_e6 >= 0 AND reserved_qty_e6 <= qty_e6', name=op.f('ck_positions_reserved_within_qty')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_positions_account_id_accounts')),
    sa.PrimaryKeyConstraint('account_id', 'epoch', 'symbol', name=op.f('pk_positions'))
    )
    op.create_table('quotes',
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('symbol', sa.String(length=32), nullable=False),
    sa.Column('bid_e6', sa.BigInteger(), nullable=False),
    sa.Column('ask_e6', sa.BigInteger(), nullable=False),
    sa.Column('bid_size_e6', sa.BigInteger(), nullable=False),
    sa.Column('ask_size_e6', sa.BigInteger(), nullable=False),
    sa.Column('quoted_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('bid_e6 > 0 AND ask_e6 >= bid_e6', name=op.f('ck_quotes_sane_prices')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_quotes_account_id_accounts')),
    sa.PrimaryKeyConstraint('account_id', 'symbol', name=op.f('pk_quotes'))
    )
    op.create_table('runs',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('slippage_bps_e6', sa.BigInteger(), nullable=False),
    sa.Column('fee_bps_e6', sa.BigInteger(), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_runs_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_runs'))
    )
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_runs_account_id'), ['account_id'], unique=False)

    op.create_table('orders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.String(length=32), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('epoch', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.String(length=32), nullable=False),
    sa.Column('client_order_id', sa.String(length=128), nullable=True),
    sa.Column('symbol', sa.String(length=32), nullable=False),
    sa.Column('side', sa.String(length=8), nullable=False),
    sa.Column('order_type', sa.String(length=8), nullable=False),
    sa.Column('qty_e6', sa.BigInteger(), nullable=True),
    sa.Column('limit_price_e6', sa.BigInteger(), nullable=True),
    sa.Column('slippage_bps_e6', sa.BigInteger(), nullable=False),
    sa.Column('fee_bps_e6', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('reject_reason', sa.Text(), nullable=True),
    sa.Column('filled_qty_e6', sa.BigInteger(), nullable=False),
    sa.Column('reserved_cash_e6', sa.BigInteger(), nullable=False),
    sa.Column('reserved_qty_e6', sa.BigInteger(), nullable=False),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status = 'rejected' OR order_type IN ('market', 'limit')", name=op.f('ck_orders_order_type')),
    sa.CheckConstraint("status = 'rejected' OR side IN ('BUY', 'SELL')", name=op.f('ck_orders_side')),
    sa.CheckConstraint("status = 'rejected' OR qty_e6 > 0", name=op.f('ck_orders_qty_positive')),
    sa.CheckConstraint("status IN ('new', 'filled', 'canceled', 'rejected')", name=op.f('ck_orders_status')),
    sa.CheckConstraint('filled_qty_e6 >= 0', name=op.f('ck_orders_filled_qty_not_negative')),
    sa.CheckConstraint('reserved_cash_e6 >= 0 AND reserved_qty_e6 >= 0', name=op.f('ck_orders_reservation_not_negative')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_orders_account_id_accounts')),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_orders_run_id_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_orders')),
    sa.UniqueConstraint('order_id', name=op.f('uq_orders_order_id'))
    )
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_index('ix_orders_account_id_epoch_status', ['account_id', 'epoch', 'status'], unique=False)
        batch_op.create_index('ix_orders_account_id_symbol_status', ['account_id', 'symbol', 'status'], unique=False)
        batch_op.create_index(batch_op.f('ix_orders_run_id'), ['run_id'], unique=False)
        batch_op.create_index('uq_orders_account_id_client_order_id', ['account_id', 'client_order_id'], unique=True, sqlite_where=sa.text("client_order_id IS NOT NULL AND status <> 'rejected'"), postgresql_where=sa.text("client_order_id IS NOT NULL AND status <> 'rejected'"))

    op.create_table('fills',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('epoch', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.String(length=32), nullable=False),
    sa.Column('symbol', sa.String(length=32), nullable=False),
    sa.Column('side', sa.String(length=8), nullable=False),
    sa.Column('qty_e6', sa.BigInteger(), nullable=False),
    sa.Column('price_e6', sa.BigInteger(), nullable=False),
    sa.Column('notional_e6', sa.BigInteger(), nullable=False),
    sa.Column('fee_e6', sa.BigInteger(), nullable=False),
    sa.Column('realized_pnl_e6', sa.BigInteger(), nullable=False),
    sa.Column('slippage_bps_e6', sa.BigInteger(), nullable=False),
    sa.Column('fee_bps_e6', sa.BigInteger(), nullable=False),
    sa.Column('quote_bid_e6', sa.BigInteger(), nullable=False),
    sa.Column('quote_ask_e6', sa.BigInteger(), nullable=False),
    sa.Column('quote_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('filled_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("side IN ('BUY', 'SELL')", name=op.f('ck_fills_side')),
    sa.CheckConstraint('fee_e6 >= 0', name=op.f('ck_fills_fee_not_negative')),
    sa.CheckConstraint('qty_e6 > 0 AND price_e6 > 0', name=op.f('ck_fills_qty_price_positive')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_fills_account_id_accounts')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_fills_order_id_orders')),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_fills_run_id_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fills'))
    )
    with op.batch_alter_table('fills', schema=None) as batch_op:
        batch_op.create_index('ix_fills_account_id_filled_at', ['account_id', 'filled_at'], unique=False)
        batch_op.create_index('ix_fills_account_id_symbol_filled_at', ['account_id', 'symbol', 'filled_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_fills_order_id'), ['order_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_fills_run_id'), ['run_id'], unique=False)

    op.create_table('order_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('from_status', sa.String(length=16), nullable=True),
    sa.Column('to_status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_order_events_order_id_orders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_order_events'))
    )
    with op.batch_alter_table('order_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_order_events_order_id'), ['order_id'], unique=False)

    op.create_table('cash_movements',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('epoch', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.String(length=32), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('amount_e6', sa.BigInteger(), nullable=False),
    sa.Column('fill_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('initial', 'fill')", name=op.f('ck_cash_movements_kind')),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_cash_movements_account_id_accounts')),
    sa.ForeignKeyConstraint(['fill_id'], ['fills.id'], name=op.f('fk_cash_movements_fill_id_fills')),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_cash_movements_run_id_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cash_movements')),
    sa.UniqueConstraint('fill_id', name=op.f('uq_cash_movements_fill_id'))
    )
    with op.batch_alter_table('cash_movements', schema=None) as batch_op:
        batch_op.create_index('ix_cash_movements_account_id_epoch', ['account_id', 'epoch'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('cash_movements', schema=None) as batch_op:
        batch_op.drop_index('ix_cash_movements_account_id_epoch')

    op.drop_table('cash_movements')
    with op.batch_alter_table('order_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_order_events_order_id'))

    op.drop_table('order_events')
    with op.batch_alter_table('fills', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_fills_run_id'))
        batch_op.drop_index(batch_op.f('ix_fills_order_id'))
        batch_op.drop_index('ix_fills_account_id_symbol_filled_at')
        batch_op.drop_index('ix_fills_account_id_filled_at')

    op.drop_table('fills')
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index('uq_orders_account_id_client_order_id', sqlite_where=sa.text("client_order_id IS NOT NULL AND status <> 'rejected'"), postgresql_where=sa.text("client_order_id IS NOT NULL AND status <> 'rejected'"))
        batch_op.drop_index(batch_op.f('ix_orders_run_id'))
        batch_op.drop_index('ix_orders_account_id_symbol_status')
        batch_op.drop_index('ix_orders_account_id_epoch_status')

    op.drop_table('orders')
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_runs_account_id'))

    op.drop_table('runs')
    op.drop_table('quotes')
    op.drop_table('positions')
    op.drop_table('accounts')
