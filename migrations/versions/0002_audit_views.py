"""audit views: ledger tables in human units (v_fills, v_orders, v_positions, v_daily_pnl and five more)

Views: v_accounts, v_runs, v_orders, v_order_events, v_fills, v_positions, v_cash_movements, v_quotes,
v_daily_pnl (documented column by column in docs/schema.md).

The tables store amounts as BIGINT millionths (``*_e6``) and SQLite keeps times as text without a zone; these
views give auditors human units so that ``SELECT * FROM v_fills`` reads like a statement:

- Amounts: ``x_e6 / 1e6``. PostgreSQL: exact ``NUMERIC`` (``x_e6 * 0.000001`` keeps scale 6, where a division
  would print 16 digits). SQLite has no decimal type, so these columns are ``REAL`` (the nearest double, the
  same number the broker's protocol returns as a float), good for arithmetic and charts. Every stored amount
  (quantity, price, money) also has an ``*_exact`` twin: text with exactly six decimals, e.g. ``'-0.500000'``,
  rendered from the integer and identical on both engines.
- Times: ISO-8601 UTC text (``2024-01-02T14:30:00.000000Z``) on SQLite, ``timestamptz`` on PostgreSQL.
  Days are UTC days: ``'YYYY-MM-DD'`` text on SQLite, ``date`` on PostgreSQL.
- Ids: the public ``order_id`` (never the integer key), the account's name, ``run_id`` and ``epoch``.
- Every epoch is shown; ``is_current_epoch`` (boolean; 0/1 on SQLite) marks the account's current one.

The views are not in the models' metadata, so autogenerate neither sees nor drops them. A later migration
that batch-alters (SQLite) or retypes (PostgreSQL) a column these views read must drop the views first and
create them again afterwards: SQLite refuses to rename a table a view refers to while it is missing, and
PostgreSQL refuses to alter a column a view uses.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 15:10:00.000000
"""
from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from alembic import op


revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


class _Units:
    """SQL snippets converting stored forms to human units, one implementation per dialect."""

    def __init__(self, dialect: str):
        self.pg = dialect == 'postgresql'

    def big(self, integer: str) -> str:
        """An integer column ready for products: NUMERIC on PostgreSQL (a BIGINT product would overflow);
        SQLite turns an overflowing integer product into REAL by itself."""
        return f'CAST({integer} AS NUMERIC)' if self.pg else integer

    def div(self, integer: str, divisor: int) -> str:
        """An exact integer expression divided by a power-of-ten-ish ``divisor``.

        PostgreSQL multiplies by the exact NUMERIC reciprocal (0.000001 keeps scale 6; a division would
        print 16 digits). SQLite divides by a REAL, which gives the nearest double of the exact quotient.
        """
        if self.pg:
            return f'(({integer}) * {Decimal(1) / Decimal(divisor):f})'
        return f'(({integer}) / {divisor}.0)'

    def num(self, e6: str) -> str:
        """Integer millionths -> NUMERIC (PostgreSQL, exact) or REAL (SQLite)."""
        return self.div(self.big(e6), 10**6)

    def exact(self, e6: str) -> str:
        """Integer millionths -> exact text with six decimals, the same on both engines."""
        if self.pg:
            return f'CAST(CAST({e6} AS NUMERIC) * 0.000001 AS TEXT)'
        # printf on the integer parts; the sign is printed separately so -0.5 is '-0.500000', not '0.-500000'.
        return (
            f"CASE WHEN ({e6}) IS NULL THEN NULL ELSE printf('%s%d.%06d', "
            f"CASE WHEN ({e6}) < 0 THEN '-' ELSE '' END, abs({e6}) / 1000000, abs({e6}) % 1000000) END"
        )

    def amount(self, e6: str, name: str) -> str:
        """The column pair ``name`` (numeric) and ``name_exact`` (text) for one stored amount."""
        return f'{self.num(e6)} AS {name}, {self.exact(e6)} AS {name}_exact'

    def ratio(self, numerator: str, denominator: str) -> str:
        """numerator / denominator as a non-integer division (NULL when the denominator is 0)."""
        return f"(CAST({numerator} AS {'NUMERIC' if self.pg else 'REAL'}) / NULLIF({denominator}, 0))"

    def time(self, column: str) -> str:
        """A stored UTC time: timestamptz as is (PostgreSQL); ISO-8601 text with a Z (SQLite)."""
        return column if self.pg else f"(replace({column}, ' ', 'T') || 'Z')"

    def day(self, column: str) -> str:
        """The UTC calendar day of a stored time."""
        return f"CAST(({column} AT TIME ZONE 'UTC') AS DATE)" if self.pg else f'substr({column}, 1, 10)'


def _views(u: _Units) -> dict[str, str]:
    """View name -> SELECT, in creation order."""
    # Products are taken on the integers and divided once, so SQLite's REAL is the nearest double of the exact
    # result rather than an accumulation of rounding errors. qty_e6 * (bid_e6 + ask_e6) is 2e12 x value.
    mid = u.div(f"{u.big('q.bid_e6')} + q.ask_e6", 2 * 10**6)
    # Value of a position at the mid of the account's last quote for the symbol (NULL without a quote).
    market_value = u.div(f"{u.big('p.qty_e6')} * (q.bid_e6 + q.ask_e6)", 2 * 10**12)
    unrealized_pnl = u.div(
        f"{u.big('p.qty_e6')} * (q.bid_e6 + q.ask_e6) - {u.big('p.cost_basis_e6')} * 2000000", 2 * 10**12
    )
    # Slippage cost against the recorded quote: paid above the ask on a buy, received below the bid on a sell.
    slippage_cost = u.div(
        f"{u.big('f.qty_e6')} * CASE WHEN f.side = 'BUY' THEN f.price_e6 - f.quote_ask_e6 "
        "ELSE f.quote_bid_e6 - f.price_e6 END",
        10**12,
    )
    # What a fill did to cash: a buy pays notional plus fee, a sell receives notional minus fee.
    cash_delta_e6 = (
        "CASE WHEN f.side = 'BUY' THEN -(f.notional_e6 + f.fee_e6) ELSE f.notional_e6 - f.fee_e6 END"
    )
    return {
        'v_accounts': f"""
SELECT a.id AS account_id, a.name AS account, a.epoch,
       {u.amount('a.initial_cash_e6', 'initial_cash')},
       {u.amount('a.cash_e6', 'cash')},
       {u.amount('a.reserved_cash_e6', 'reserved_cash')},
       {u.amount('a.cash_e6 - a.reserved_cash_e6', 'available_cash')},
       {u.num('a.cash_e6')} + COALESCE((
           SELECT SUM(CASE WHEN q.symbol IS NULL THEN {u.num('p.cost_basis_e6')} ELSE {market_value} END)
           FROM positions p
           LEFT JOIN quotes q ON q.account_id = p.account_id AND q.symbol = p.symbol
           WHERE p.account_id = a.id AND p.epoch = a.epoch AND p.qty_e6 > 0), 0) AS equity,
       (SELECT COUNT(*) FROM positions p
        WHERE p.account_id = a.id AND p.epoch = a.epoch AND p.qty_e6 > 0) AS open_positions,
       (SELECT COUNT(*) FROM orders o
        WHERE o.account_id = a.id AND o.epoch = a.epoch AND o.status = 'new') AS resting_orders,
       {u.time('a.created_at')} AS created_at,
       {u.time('a.updated_at')} AS updated_at
FROM accounts a""",
        'v_runs': f"""
SELECT r.id AS run_id, r.account_id, a.name AS account,
       {u.time('r.started_at')} AS started_at,
       {u.time('r.ended_at')} AS ended_at,
       {u.num('r.slippage_bps_e6')} AS slippage_bps,
       {u.num('r.fee_bps_e6')} AS fee_bps,
       r.host, r.pid,
       (SELECT COUNT(*) FROM orders o WHERE o.run_id = r.id) AS order_count,
       (SELECT COUNT(*) FROM fills f WHERE f.run_id = r.id) AS fill_count
FROM runs r
JOIN accounts a ON a.id = r.account_id""",
        'v_orders': f"""
SELECT o.order_id, o.account_id, a.name AS account, o.epoch, o.epoch = a.epoch AS is_current_epoch,
       o.run_id, o.client_order_id, o.symbol, o.side, o.order_type, o.status, o.reject_reason,
       {u.amount('o.qty_e6', 'qty')},
       {u.amount('o.limit_price_e6', 'limit_price')},
       {u.amount('o.filled_qty_e6', 'filled_qty')},
       {u.amount('o.reserved_cash_e6', 'reserved_cash')},
       {u.amount('o.reserved_qty_e6', 'reserved_qty')},
       {u.num('o.slippage_bps_e6')} AS slippage_bps,
       {u.num('o.fee_bps_e6')} AS fee_bps,
       {u.time('o.submitted_at')} AS submitted_at,
       {u.time('o.updated_at')} AS updated_at
FROM orders o
JOIN accounts a ON a.id = o.account_id""",
        'v_order_events': f"""
SELECT e.id AS event_id, o.order_id, o.client_order_id, o.account_id, a.name AS account, o.epoch,
       o.epoch = a.epoch AS is_current_epoch, o.symbol, o.side,
       {u.time('e.at')} AS at, e.from_status, e.to_status, e.reason
FROM order_events e
JOIN orders o ON o.id = e.order_id
JOIN accounts a ON a.id = o.account_id""",
        'v_fills': f"""
SELECT f.id AS fill_id, o.order_id, o.client_order_id, f.account_id, a.name AS account, f.epoch,
       f.epoch = a.epoch AS is_current_epoch, f.run_id, f.symbol, f.side,
       {u.amount('f.qty_e6', 'qty')},
       {u.amount('f.price_e6', 'price')},
       {u.amount('f.notional_e6', 'notional')},
       {u.amount('f.fee_e6', 'fee')},
       {u.amount(cash_delta_e6, 'cash_delta')},
       {u.amount('f.realized_pnl_e6', 'realized_pnl')},
       {u.amount('f.quote_bid_e6', 'quote_bid')},
       {u.amount('f.quote_ask_e6', 'quote_ask')},
       {slippage_cost} AS slippage_cost,
       {u.num('f.slippage_bps_e6')} AS slippage_bps,
       {u.num('f.fee_bps_e6')} AS fee_bps,
       {u.time('f.quote_at')} AS quote_at,
       {u.time('f.filled_at')} AS filled_at
FROM fills f
JOIN orders o ON o.id = f.order_id
JOIN accounts a ON a.id = f.account_id""",
        'v_positions': f"""
SELECT p.account_id, a.name AS account, p.epoch, p.epoch = a.epoch AS is_current_epoch, p.symbol,
       {u.amount('p.qty_e6', 'qty')},
       {u.amount('p.reserved_qty_e6', 'reserved_qty')},
       {u.amount('p.qty_e6 - p.reserved_qty_e6', 'available_qty')},
       {u.amount('p.cost_basis_e6', 'cost_basis')},
       {u.ratio('p.cost_basis_e6', 'p.qty_e6')} AS avg_cost,
       {u.amount('p.realized_pnl_e6', 'realized_pnl')},
       {u.num('q.bid_e6')} AS bid,
       {u.num('q.ask_e6')} AS ask,
       {mid} AS mark_price,
       {market_value} AS market_value,
       {unrealized_pnl} AS unrealized_pnl,
       {u.time('q.quoted_at')} AS quoted_at,
       {u.time('p.updated_at')} AS updated_at
FROM positions p
JOIN accounts a ON a.id = p.account_id
LEFT JOIN quotes q ON q.account_id = p.account_id AND q.symbol = p.symbol""",
        'v_cash_movements': f"""
SELECT m.movement_id, m.account_id, a.name AS account, m.epoch, m.epoch = a.epoch AS is_current_epoch,
       m.run_id, m.kind,
       {u.amount('m.amount_e6', 'amount')},
       {u.amount('m.balance_e6', 'balance')},
       m.fill_id, o.order_id, f.symbol, f.side,
       {u.time('m.at')} AS at
FROM (
    SELECT id AS movement_id, account_id, epoch, run_id, kind, amount_e6, fill_id, at,
           SUM(amount_e6) OVER (PARTITION BY account_id, epoch ORDER BY id) AS balance_e6
    FROM cash_movements
) m
JOIN accounts a ON a.id = m.account_id
LEFT JOIN fills f ON f.id = m.fill_id
LEFT JOIN orders o ON o.id = f.order_id""",
        'v_quotes': f"""
SELECT q.account_id, a.name AS account, q.symbol,
       {u.amount('q.bid_e6', 'bid')},
       {u.amount('q.ask_e6', 'ask')},
       {mid} AS mid,
       {u.ratio('(q.ask_e6 - q.bid_e6) * 20000', 'q.ask_e6 + q.bid_e6')} AS spread_bps,
       {u.num('q.bid_size_e6')} AS bid_size,
       {u.num('q.ask_size_e6')} AS ask_size,
       {u.time('q.quoted_at')} AS quoted_at
FROM quotes q
JOIN accounts a ON a.id = q.account_id""",
        'v_daily_pnl': f"""
SELECT d.account_id, a.name AS account, d.epoch, d.epoch = a.epoch AS is_current_epoch, d.day, d.symbol,
       d.fill_count,
       {u.amount('d.bought_qty_e6', 'bought_qty')},
       {u.amount('d.sold_qty_e6', 'sold_qty')},
       {u.amount('d.bought_notional_e6', 'bought_notional')},
       {u.amount('d.sold_notional_e6', 'sold_notional')},
       {u.amount('d.fees_e6', 'fees')},
       {u.amount('d.realized_pnl_e6', 'realized_pnl')},
       {u.amount('d.net_cash_e6', 'net_cash')}
FROM (
    SELECT f.account_id, f.epoch, {u.day('f.filled_at')} AS day, f.symbol,
           COUNT(*) AS fill_count,
           SUM(CASE WHEN f.side = 'BUY' THEN f.qty_e6 ELSE 0 END) AS bought_qty_e6,
           SUM(CASE WHEN f.side = 'SELL' THEN f.qty_e6 ELSE 0 END) AS sold_qty_e6,
           SUM(CASE WHEN f.side = 'BUY' THEN f.notional_e6 ELSE 0 END) AS bought_notional_e6,
           SUM(CASE WHEN f.side = 'SELL' THEN f.notional_e6 ELSE 0 END) AS sold_notional_e6,
           SUM(f.fee_e6) AS fees_e6,
           SUM(f.realized_pnl_e6) AS realized_pnl_e6,
           SUM({cash_delta_e6}) AS net_cash_e6
    FROM fills f
    GROUP BY f.account_id, f.epoch, {u.day('f.filled_at')}, f.symbol
) d
JOIN accounts a ON a.id = d.account_id""",
    }


def upgrade() -> None:
    for name, select in _views(_Units(op.get_bind().dialect.name)).items():
        op.execute(f'CREATE VIEW {name} AS {select.strip()}')


def downgrade() -> None:
    for name in reversed(_views(_Units(op.get_bind().dialect.name))):
        op.execute(f'DROP VIEW IF EXISTS {name}')
