"""The ledger's laws, checked from the tables with plain SQL: an empty list means every law holds.

Laws (DEVELOPERS.md): cash = initial + sum of cash movements; each position = sum of signed fill quantities;
every fill belongs to an order; an order's filled quantity = sum of its fills. Also checked: reservations
match the open orders that hold them, each fill moved exactly its cash, each order's event history ends in its
current status, each status carries its time, no fill comes after its order ended, a replaced order's successor
names it, an order's average fill price lies within its fills' prices, a position's cost basis has its side's
sign, only margin accounts hold short positions, and the totals kept beside the fills (each position's fill
totals, each day's totals per symbol in ``daily_totals``) equal the sums of those fills.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

# Each law: (description, SQL returning offending rows). ":account" is NULL to check every account.
# Amounts are compared as stored integers (exact); messages convert them to human units.
_LAWS: list[tuple[str, str]] = [
    (
        "cash differs from the sum of its cash movements",
        """SELECT a.name, a.epoch, a.cash_e6, COALESCE(SUM(m.amount_e6), 0)
           FROM accounts a LEFT JOIN cash_movements m ON m.account_id = a.id AND m.epoch = a.epoch
           WHERE (CAST(:account AS INTEGER) IS NULL OR a.id = :account)
           GROUP BY a.id, a.name, a.epoch, a.cash_e6
           HAVING a.cash_e6 <> COALESCE(SUM(m.amount_e6), 0)""",
    ),
    (
        "reserved cash differs from the open orders' reservations, or exceeds cash on a cash account",
        """SELECT a.name, a.epoch, a.reserved_cash_e6, COALESCE(SUM(o.reserved_cash_e6), 0)
           FROM accounts a LEFT JOIN orders o
             ON o.account_id = a.id AND o.epoch = a.epoch AND o.status IN ('new', 'partially_filled')
           WHERE (CAST(:account AS INTEGER) IS NULL OR a.id = :account)
           GROUP BY a.id, a.name, a.epoch, a.reserved_cash_e6, a.cash_e6, a.max_margin_multiplier_e6
           HAVING a.reserved_cash_e6 <> COALESCE(SUM(o.reserved_cash_e6), 0)
               OR (a.reserved_cash_e6 > a.cash_e6 AND a.max_margin_multiplier_e6 = 1000000)""",
    ),
    (
        "position differs from the sum of its signed fills",
        """SELECT p.account_id, p.epoch, p.symbol, p.qty_e6, COALESCE(f.net, 0)
           FROM positions p LEFT JOIN (
               SELECT account_id, epoch, symbol,
                      SUM(CASE WHEN side = 'BUY' THEN qty_e6 ELSE -qty_e6 END) AS net
               FROM fills GROUP BY account_id, epoch, symbol) f
             ON f.account_id = p.account_id AND f.epoch = p.epoch AND f.symbol = p.symbol
           WHERE (CAST(:account AS INTEGER) IS NULL OR p.account_id = :account) AND p.qty_e6 <> COALESCE(f.net, 0)
           UNION ALL
           SELECT f.account_id, f.epoch, f.symbol, NULL, SUM(CASE WHEN f.side = 'BUY' THEN f.qty_e6 ELSE -f.qty_e6 END)
           FROM fills f LEFT JOIN positions p
             ON p.account_id = f.account_id AND p.epoch = f.epoch AND p.symbol = f.symbol
           WHERE (CAST(:account AS INTEGER) IS NULL OR f.account_id = :account) AND p.symbol IS NULL
           GROUP BY f.account_id, f.epoch, f.symbol""",
    ),
    (
        "position's realized P&L differs from the sum of its fills' realized P&L",
        """SELECT p.account_id, p.epoch, p.symbol, p.realized_pnl_e6, COALESCE(f.pnl, 0)
           FROM positions p LEFT JOIN (
               SELECT account_id, epoch, symbol, SUM(realized_pnl_e6) AS pnl
               FROM fills GROUP BY account_id, epoch, symbol) f
             ON f.account_id = p.account_id AND f.epoch = p.epoch AND f.symbol = p.symbol
           WHERE (CAST(:account AS INTEGER) IS NULL OR p.account_id = :account) AND p.realized_pnl_e6 <> COALESCE(f.pnl, 0)""",
    ),
    (
        "position's fill totals differ from its fills (count, bought or sold quantity or notional, fees)",
        """SELECT p.account_id, p.epoch, p.symbol, p.fill_count, COALESCE(f.n, 0)
           FROM positions p LEFT JOIN (
               SELECT account_id, epoch, symbol, COUNT(*) AS n,
                      SUM(CASE WHEN side = 'BUY' THEN qty_e6 ELSE 0 END) AS bought_qty,
                      SUM(CASE WHEN side = 'BUY' THEN 0 ELSE qty_e6 END) AS sold_qty,
                      SUM(CASE WHEN side = 'BUY' THEN notional_e6 ELSE 0 END) AS bought_notional,
                      SUM(CASE WHEN side = 'BUY' THEN 0 ELSE notional_e6 END) AS sold_notional,
                      SUM(fee_e6) AS fees
               FROM fills GROUP BY account_id, epoch, symbol) f
             ON f.account_id = p.account_id AND f.epoch = p.epoch AND f.symbol = p.symbol
           WHERE (CAST(:account AS INTEGER) IS NULL OR p.account_id = :account)
             AND (p.fill_count <> COALESCE(f.n, 0) OR p.bought_qty_e6 <> COALESCE(f.bought_qty, 0)
                  OR p.sold_qty_e6 <> COALESCE(f.sold_qty, 0) OR p.bought_notional_e6 <> COALESCE(f.bought_notional, 0)
                  OR p.sold_notional_e6 <> COALESCE(f.sold_notional, 0) OR p.fees_e6 <> COALESCE(f.fees, 0))""",
    ),
    (
        "day's totals differ from its fills (daily_totals: count, quantities, notionals, fees, realized P&L)",
        """SELECT d.account_id, d.epoch, d.day, d.symbol, d.fill_count, f.n
           FROM daily_totals d LEFT JOIN (
               SELECT account_id, epoch, {fill_day} AS day, symbol, COUNT(*) AS n,
                      SUM(CASE WHEN side = 'BUY' THEN qty_e6 ELSE 0 END) AS bought_qty,
                      SUM(CASE WHEN side = 'BUY' THEN 0 ELSE qty_e6 END) AS sold_qty,
                      SUM(CASE WHEN side = 'BUY' THEN notional_e6 ELSE 0 END) AS bought_notional,
                      SUM(CASE WHEN side = 'BUY' THEN 0 ELSE notional_e6 END) AS sold_notional,
                      SUM(fee_e6) AS fees, SUM(realized_pnl_e6) AS pnl
               FROM fills f GROUP BY account_id, epoch, {fill_day}, symbol) f
             ON f.account_id = d.account_id AND f.epoch = d.epoch AND f.day = d.day AND f.symbol = d.symbol
           WHERE (CAST(:account AS INTEGER) IS NULL OR d.account_id = :account)
             AND (f.n IS NULL OR d.fill_count <> f.n OR d.bought_qty_e6 <> f.bought_qty OR d.sold_qty_e6 <> f.sold_qty
                  OR d.bought_notional_e6 <> f.bought_notional OR d.sold_notional_e6 <> f.sold_notional
                  OR d.fees_e6 <> f.fees OR d.realized_pnl_e6 <> f.pnl)
           UNION ALL
           SELECT f.account_id, f.epoch, {fill_day}, f.symbol, NULL, COUNT(*)
           FROM fills f LEFT JOIN daily_totals d
             ON d.account_id = f.account_id AND d.epoch = f.epoch AND d.day = {fill_day} AND d.symbol = f.symbol
           WHERE (CAST(:account AS INTEGER) IS NULL OR f.account_id = :account) AND d.symbol IS NULL
           GROUP BY f.account_id, f.epoch, {fill_day}, f.symbol""",
    ),
    (
        "position's reserved shares differ from its resting sell orders",
        """SELECT p.account_id, p.epoch, p.symbol, p.reserved_qty_e6, COALESCE(SUM(o.reserved_qty_e6), 0)
           FROM positions p LEFT JOIN orders o
             ON o.account_id = p.account_id AND o.epoch = p.epoch AND o.symbol = p.symbol
                AND o.status IN ('new', 'partially_filled')
           WHERE (CAST(:account AS INTEGER) IS NULL OR p.account_id = :account)
           GROUP BY p.account_id, p.epoch, p.symbol, p.reserved_qty_e6
           HAVING p.reserved_qty_e6 <> COALESCE(SUM(o.reserved_qty_e6), 0)""",
    ),
    (
        "position's cost basis disagrees with its side (a flat position keeps one, a long's is negative or a "
        "short's positive)",
        """SELECT p.account_id, p.epoch, p.symbol, p.qty_e6, p.cost_basis_e6
           FROM positions p
           WHERE (CAST(:account AS INTEGER) IS NULL OR p.account_id = :account)
             AND ((p.qty_e6 = 0 AND p.cost_basis_e6 <> 0) OR (p.qty_e6 > 0 AND p.cost_basis_e6 < 0)
                  OR (p.qty_e6 < 0 AND p.cost_basis_e6 > 0))""",
    ),
    (
        "short position on a cash account (margin multiplier 1)",
        """SELECT a.name, p.symbol, p.qty_e6
           FROM positions p JOIN accounts a ON a.id = p.account_id AND a.epoch = p.epoch
           WHERE (CAST(:account AS INTEGER) IS NULL OR p.account_id = :account)
             AND p.qty_e6 < 0 AND a.max_margin_multiplier_e6 = 1000000""",
    ),
    (
        "fill does not match its order (account, epoch, symbol or side)",
        """SELECT f.id, f.order_id, f.symbol, f.side, o.symbol
           FROM fills f LEFT JOIN orders o ON o.id = f.order_id
           WHERE (CAST(:account AS INTEGER) IS NULL OR f.account_id = :account)
             AND (o.id IS NULL OR o.account_id <> f.account_id OR o.epoch <> f.epoch
                  OR o.symbol <> f.symbol OR o.side <> f.side)""",
    ),
    (
        "order's filled quantity differs from the sum of its fills",
        """SELECT o.order_id, o.status, o.filled_qty_e6, COALESCE(SUM(f.qty_e6), 0)
           FROM orders o LEFT JOIN fills f ON f.order_id = o.id
           WHERE (CAST(:account AS INTEGER) IS NULL OR o.account_id = :account)
           GROUP BY o.id, o.order_id, o.status, o.filled_qty_e6
           HAVING o.filled_qty_e6 <> COALESCE(SUM(f.qty_e6), 0)""",
    ),
    (
        "order's status disagrees with its fills or reservations",
        """SELECT o.order_id, o.status, o.qty_e6, o.filled_qty_e6
           FROM orders o
           WHERE (CAST(:account AS INTEGER) IS NULL OR o.account_id = :account)
             AND ((o.status = 'filled' AND o.filled_qty_e6 <> o.qty_e6)
                  OR (o.status IN ('new', 'rejected') AND o.filled_qty_e6 <> 0)
                  OR (o.status = 'partially_filled' AND (o.filled_qty_e6 <= 0 OR o.filled_qty_e6 >= o.qty_e6))
                  OR (o.status <> 'rejected' AND o.filled_qty_e6 > o.qty_e6)
                  OR (o.status NOT IN ('new', 'partially_filled')
                      AND (o.reserved_cash_e6 <> 0 OR o.reserved_qty_e6 <> 0)))""",
    ),
    (
        "fill's cash movement is missing or differs from notional -/+ fee",
        """SELECT f.id, f.side, f.notional_e6, f.fee_e6, m.amount_e6
           FROM fills f LEFT JOIN cash_movements m ON m.fill_id = f.id
           WHERE (CAST(:account AS INTEGER) IS NULL OR f.account_id = :account)
             AND (m.id IS NULL OR m.account_id <> f.account_id OR m.epoch <> f.epoch
                  OR m.amount_e6 <> CASE WHEN f.side = 'BUY' THEN -(f.notional_e6 + f.fee_e6)
                                         ELSE f.notional_e6 - f.fee_e6 END)""",
    ),
    (
        "order's event history does not start with its creation or end in its current status",
        """SELECT o.order_id, o.status, first_e.to_status, last_e.to_status
           FROM orders o
           LEFT JOIN order_events first_e ON first_e.id = (
               SELECT MIN(e.id) FROM order_events e WHERE e.order_id = o.id)
           LEFT JOIN order_events last_e ON last_e.id = (
               SELECT MAX(e.id) FROM order_events e WHERE e.order_id = o.id)
           WHERE (CAST(:account AS INTEGER) IS NULL OR o.account_id = :account)
             AND (first_e.id IS NULL OR first_e.from_status IS NOT NULL OR last_e.to_status <> o.status)""",
    ),
    (
        "fill was priced from a quote stamped after the fill (broker time went backwards)",
        """SELECT f.id, f.symbol, f.quote_at, f.filled_at
           FROM fills f
           WHERE (CAST(:account AS INTEGER) IS NULL OR f.account_id = :account) AND f.quote_at > f.filled_at""",
    ),
    (
        "order's status lacks its time, or an open order has a closing time",
        """SELECT o.order_id, o.status
           FROM orders o
           WHERE (CAST(:account AS INTEGER) IS NULL OR o.account_id = :account)
             AND ((o.status = 'filled' AND o.filled_at IS NULL)
                  OR (o.status = 'canceled' AND o.canceled_at IS NULL)
                  OR (o.status = 'expired' AND (o.expired_at IS NULL OR o.expires_at IS NULL
                                                OR o.expired_at < o.expires_at))
                  OR (o.status = 'replaced' AND o.replaced_at IS NULL)
                  OR (o.status IN ('new', 'partially_filled')
                      AND (o.filled_at IS NOT NULL OR o.canceled_at IS NOT NULL OR o.expired_at IS NOT NULL
                           OR o.replaced_at IS NOT NULL)))""",
    ),
    (
        "fill is later than its order's end (filled, canceled, expired or replaced)",
        """SELECT f.id, o.order_id, o.status, f.filled_at
           FROM fills f JOIN orders o ON o.id = f.order_id
           WHERE (CAST(:account AS INTEGER) IS NULL OR f.account_id = :account)
             AND f.filled_at > COALESCE(o.filled_at, o.canceled_at, o.expired_at, o.replaced_at, f.filled_at)""",
    ),
    (
        "replaced order has no successor that names it",
        """SELECT o.order_id, o.replaced_by_id
           FROM orders o LEFT JOIN orders n ON n.id = o.replaced_by_id
           WHERE (CAST(:account AS INTEGER) IS NULL OR o.account_id = :account)
             AND ((o.status = 'replaced' AND (n.id IS NULL OR n.replaces_id IS NULL OR n.replaces_id <> o.id))
                  OR (o.status <> 'replaced' AND o.replaced_by_id IS NOT NULL))""",
    ),
    (
        "order's average fill price is missing or outside its fills' prices",
        """SELECT o.order_id, o.filled_avg_price_e6, MIN(f.price_e6), MAX(f.price_e6)
           FROM orders o LEFT JOIN fills f ON f.order_id = o.id
           WHERE (CAST(:account AS INTEGER) IS NULL OR o.account_id = :account)
           GROUP BY o.id, o.order_id, o.filled_avg_price_e6
           HAVING (COUNT(f.id) = 0 AND o.filled_avg_price_e6 IS NOT NULL)
               OR (COUNT(f.id) > 0 AND (o.filled_avg_price_e6 IS NULL OR o.filled_avg_price_e6 < MIN(f.price_e6)
                                        OR o.filled_avg_price_e6 > MAX(f.price_e6)))""",
    ),
    (
        "run ends before it started (broker time went backwards)",
        """SELECT r.id, r.started_at, r.ended_at
           FROM runs r
           WHERE (CAST(:account AS INTEGER) IS NULL OR r.account_id = :account) AND r.ended_at < r.started_at""",
    ),
]


# The UTC day of a fill, as daily_totals keys it (SQLite stores UTC text, PostgreSQL timestamptz).
_FILL_DAY = {"sqlite": "substr(f.filled_at, 1, 10)", "postgresql": "CAST(f.filled_at AT TIME ZONE 'UTC' AS DATE)"}


def verify_ledger(conn: Connection, account_id: int | None = None, limit: int = 20) -> list[str]:
    """Check every law (for one account, or all with None); return one line per violation found."""
    problems: list[str] = []
    fill_day = _FILL_DAY[conn.dialect.name]
    for description, sql in _LAWS:
        rows = conn.execute(text(sql.replace("{fill_day}", fill_day)), {"account": account_id}).fetchmany(limit)
        for row in rows:
            problems.append(f"{description} (amounts in millionths): " + ", ".join(map(str, row)))
    return problems
