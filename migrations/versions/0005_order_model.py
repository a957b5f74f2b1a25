"""order model: stops and trailing stops, time in force, partial fills, shorts and margin, replace, equity marks

- ``orders``: ``time_in_force`` (existing orders: ``gtc``, what they behaved as), ``notional_e6``,
  ``stop_price_e6``, ``trail_price_e6``, ``trail_percent_e6``, ``hwm_e6`` (a trailing stop's water mark),
  ``filled_avg_price_e6`` (existing filled orders: their fill's price), ``expires_at`` (day orders),
  ``triggered_at``, ``filled_at`` / ``canceled_at`` (from the order's events), ``expired_at``,
  ``replaced_at``, ``replaces_id`` / ``replaced_by_id``; the statuses ``partially_filled``, ``expired`` and
  ``replaced`` and the types ``stop``, ``stop_limit``, ``trailing_stop`` (``order_type`` widens to 16).
- ``accounts``: settings ``shorting_enabled`` (off), ``max_margin_multiplier_e6`` (1), ``fill_model``
  (``full``), ``calendar`` (``XNYS``), ``equity_mark_interval_s`` (60); cash may be negative on margin only.
- ``positions``: negative quantities (shorts) allowed; reserved shares still come out of a long position.
- ``quotes``: ``bid_taken_e6`` / ``ask_taken_e6``, how much of the displayed sizes fills have taken.
- ``equity_marks``: new, one row per mark; existing ledgers start with none (the curve falls back to fills).
- Views: ``v_orders`` gains the new columns; ``v_equity`` is new.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 06:00:00.000000
"""
from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from alembic import op
import sqlalchemy as sa


revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = sa.DateTime(timezone=True)
_ORDER_TIMES = ('expires_at', 'triggered_at', 'filled_at', 'canceled_at', 'expired_at', 'replaced_at')
_ORDER_AMOUNTS = ('notional_e6', 'stop_price_e6', 'trail_price_e6', 'trail_percent_e6', 'hwm_e6',
                  'filled_avg_price_e6')


def _audit_views() -> ModuleType:
    """Revision 0002 (the v_* views and their unit helpers); see 0004 for why views are dropped around rebuilds."""
    path = Path(__file__).with_name('0002_audit_views.py')
    spec = importlib.util.spec_from_file_location('ledger_migration_0002', path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _order_views(views: ModuleType) -> dict[str, str]:
    u = views._Units(op.get_bind().dialect.name)
    return {
        'v_orders': f"""
SELECT o.order_id, o.account_id, a.name AS account, o.epoch, o.epoch = a.epoch AS is_current_epoch,
       o.run_id, o.client_order_id, o.symbol, o.side, o.order_type, o.time_in_force, o.status, o.reject_reason,
       {u.amount('o.qty_e6', 'qty')},
       {u.amount('o.notional_e6', 'notional')},
       {u.amount('o.limit_price_e6', 'limit_price')},
       {u.amount('o.stop_price_e6', 'stop_price')},
       {u.amount('o.trail_price_e6', 'trail_price')},
       {u.num('o.trail_percent_e6')} AS trail_percent,
       {u.amount('o.hwm_e6', 'hwm')},
       {u.amount('o.filled_qty_e6', 'filled_qty')},
       {u.amount('o.filled_avg_price_e6', 'filled_avg_price')},
       {u.amount('o.reserved_cash_e6', 'reserved_cash')},
       {u.amount('o.reserved_qty_e6', 'reserved_qty')},
       {u.num('o.slippage_bps_e6')} AS slippage_bps,
       {u.num('o.fee_bps_e6')} AS fee_bps,
       {u.time('o.submitted_at')} AS submitted_at,
       {u.time('o.updated_at')} AS updated_at,
       {u.time('o.expires_at')} AS expires_at,
       {u.time('o.triggered_at')} AS triggered_at,
       {u.time('o.filled_at')} AS filled_at,
       {u.time('o.canceled_at')} AS canceled_at,
       {u.time('o.expired_at')} AS expired_at,
       {u.time('o.replaced_at')} AS replaced_at,
       rs.order_id AS replaces,
       rb.order_id AS replaced_by
FROM orders o
JOIN accounts a ON a.id = o.account_id
LEFT JOIN orders rs ON rs.id = o.replaces_id
LEFT JOIN orders rb ON rb.id = o.replaced_by_id""",
        'v_equity': f"""
SELECT m.id AS mark_id, m.account_id, a.name AS account, m.epoch, m.epoch = a.epoch AS is_current_epoch,
       {u.time('m.at')} AS at,
       {u.amount('m.cash_e6', 'cash')},
       {u.amount('m.long_value_e6', 'long_value')},
       {u.amount('m.short_value_e6', 'short_value')},
       {u.amount('m.equity_e6', 'equity')}
FROM equity_marks m
JOIN accounts a ON a.id = m.account_id""",
    }


def upgrade() -> None:
    views = _audit_views()
    views.downgrade()

    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('shorting_enabled', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('max_margin_multiplier_e6', sa.BigInteger(), server_default='1000000',
                                      nullable=False))
        batch_op.add_column(sa.Column('fill_model', sa.String(length=16), server_default='full', nullable=False))
        batch_op.add_column(sa.Column('calendar', sa.String(length=16), server_default='XNYS', nullable=False))
        batch_op.add_column(sa.Column('equity_mark_interval_s', sa.Integer(), server_default='60', nullable=False))
        batch_op.drop_constraint(op.f('ck_accounts_cash_not_negative'), type_='check')
        batch_op.create_check_constraint(
            op.f('ck_accounts_cash_not_negative'), 'cash_e6 >= 0 OR max_margin_multiplier_e6 > 1000000'
        )
        batch_op.create_check_constraint(
            op.f('ck_accounts_margin_multiplier'),
            'max_margin_multiplier_e6 >= 1000000 AND max_margin_multiplier_e6 <= 4000000',
        )
        batch_op.create_check_constraint(op.f('ck_accounts_fill_model'), "fill_model IN ('full', 'displayed_size')")
        batch_op.create_check_constraint(op.f('ck_accounts_equity_mark_interval'), 'equity_mark_interval_s >= 0')

    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.alter_column('order_type', existing_type=sa.String(length=8), type_=sa.String(length=16),
                              existing_nullable=False)
        batch_op.add_column(sa.Column('time_in_force', sa.String(length=8), server_default='gtc', nullable=False))
        for name in _ORDER_AMOUNTS:
            batch_op.add_column(sa.Column(name, sa.BigInteger(), nullable=True))
        for name in _ORDER_TIMES:
            batch_op.add_column(sa.Column(name, _TIME, nullable=True))
        batch_op.add_column(sa.Column('replaces_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('replaced_by_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(op.f('fk_orders_replaces_id_orders'), 'orders', ['replaces_id'], ['id'])
        batch_op.create_foreign_key(op.f('fk_orders_replaced_by_id_orders'), 'orders', ['replaced_by_id'], ['id'])
        batch_op.drop_constraint(op.f('ck_orders_order_type'), type_='check')
        batch_op.create_check_constraint(
            op.f('ck_orders_order_type'),
            "status = 'rejected' OR order_type IN ('market', 'limit', 'stop', 'stop_limit', 'trailing_stop')",
        )
        batch_op.drop_constraint(op.f('ck_orders_status'), type_='check')
        batch_op.create_check_constraint(
            op.f('ck_orders_status'),
            "status IN ('new', 'partially_filled', 'filled', 'canceled', 'expired', 'replaced', 'rejected')",
        )
        batch_op.create_check_constraint(
            op.f('ck_orders_time_in_force'), "status = 'rejected' OR time_in_force IN ('day', 'gtc', 'ioc', 'fok')"
        )
    # Existing orders: when they filled or were canceled, from their events; the average price of their fill.
    for column, status in (('filled_at', 'filled'), ('canceled_at', 'canceled')):
        op.execute(
            f"UPDATE orders SET {column} = (SELECT MAX(e.at) FROM order_events e"
            f" WHERE e.order_id = orders.id AND e.to_status = '{status}') WHERE status = '{status}'"
        )
    op.execute(
        "UPDATE orders SET filled_avg_price_e6 = (SELECT MIN(f.price_e6) FROM fills f WHERE f.order_id = orders.id)"
        " WHERE filled_qty_e6 > 0"
    )

    with op.batch_alter_table('positions', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_positions_no_short'), type_='check')
        batch_op.drop_constraint(op.f('ck_positions_reserved_within_qty'), type_='check')
        batch_op.create_check_constraint(
            op.f('ck_positions_reserved_within_qty'),
            'reserved_qty_e6 >= 0 AND (reserved_qty_e6 = 0 OR reserved_qty_e6 <= qty_e6)',
        )

    with op.batch_alter_table('quotes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('bid_taken_e6', sa.BigInteger(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('ask_taken_e6', sa.BigInteger(), server_default='0', nullable=False))

    op.create_table('equity_marks',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('epoch', sa.Integer(), nullable=False),
    sa.Column('at', _TIME, nullable=False),
    sa.Column('cash_e6', sa.BigInteger(), nullable=False),
    sa.Column('long_value_e6', sa.BigInteger(), nullable=False),
    sa.Column('short_value_e6', sa.BigInteger(), nullable=False),
    sa.Column('equity_e6', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_equity_marks_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_equity_marks'))
    )
    with op.batch_alter_table('equity_marks', schema=None) as batch_op:
        batch_op.create_index('ix_equity_marks_account_id_epoch_at', ['account_id', 'epoch', 'at'], unique=False)

    views.upgrade()
    op.execute('DROP VIEW v_orders')
    for name, select in _order_views(views).items():
        op.execute(f'CREATE VIEW {name} AS {select.strip()}')


def downgrade() -> None:
    """Back to 0004. Refused while the ledger holds what 0004 cannot represent (shorts, new order types or
    statuses, negative cash): those rows would break its constraints."""
    views = _audit_views()
    op.execute('DROP VIEW IF EXISTS v_equity')
    views.downgrade()
    op.drop_table('equity_marks')
    with op.batch_alter_table('quotes', schema=None) as batch_op:
        batch_op.drop_column('ask_taken_e6')
        batch_op.drop_column('bid_taken_e6')
    with op.batch_alter_table('positions', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_positions_reserved_within_qty'), type_='check')
        batch_op.create_check_constraint(op.f('ck_positions_no_short'), 'qty_e6 >= 0')
        batch_op.create_check_constraint(
            op.f('ck_positions_reserved_within_qty'), 'reserved_qty_e6 >= 0 AND reserved_qty_e6 <= qty_e6'
        )
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_orders_time_in_force'), type_='check')
        batch_op.drop_constraint(op.f('ck_orders_status'), type_='check')
        batch_op.create_check_constraint(op.f('ck_orders_status'), "status IN ('new', 'filled', 'canceled', 'rejected')")
        batch_op.drop_constraint(op.f('ck_orders_order_type'), type_='check')
        batch_op.create_check_constraint(
            op.f('ck_orders_order_type'), "status = 'rejected' OR order_type IN ('market', 'limit')"
        )
        batch_op.drop_constraint(op.f('fk_orders_replaced_by_id_orders'), type_='foreignkey')
        batch_op.drop_constraint(op.f('fk_orders_replaces_id_orders'), type_='foreignkey')
        for name in ('replaced_by_id', 'replaces_id', *_ORDER_TIMES, *_ORDER_AMOUNTS, 'time_in_force'):
            batch_op.drop_column(name)
        batch_op.alter_column('order_type', existing_type=sa.String(length=16), type_=sa.String(length=8),
                              existing_nullable=False)
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        for name in ('equity_mark_interval', 'fill_model', 'margin_multiplier'):
            batch_op.drop_constraint(op.f(f'ck_accounts_{name}'), type_='check')
        batch_op.drop_constraint(op.f('ck_accounts_cash_not_negative'), type_='check')
        batch_op.create_check_constraint(op.f('ck_accounts_cash_not_negative'), 'cash_e6 >= 0')
        for name in ('equity_mark_interval_s', 'calendar', 'fill_model', 'max_margin_multiplier_e6',
                     'shorting_enabled'):
            batch_op.drop_column(name)
    views.upgrade()
