"""Build (once, cached under /tmp) a SQLite ledger holding a million fills, consistent enough that verify() passes.

The schema is made by the ledger itself (opening a PaperBroker runs the migrations and creates the accounts and
their runs); the trading history is then simulated in integer millionths and bulk-inserted with raw ``sqlite3``
``executemany`` in a few big transactions, with the secondary indexes dropped during the load and recreated
from their own DDL afterwards. Every fill has its order (status ``filled``, two order events) and its cash
movement; positions (with their fill totals), the daily totals, realized P&L and cash are the sums of the fills. The ``bench`` account has an equity mark at
every fill, as the broker writes them; ``other`` has none, like a ledger made before marks existed (its equity
curve is drawn from its fills). The file name carries the schema head and the builder version, so a new
migration or a change here builds a fresh file.
"""

from __future__ import annotations

import random
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

CACHE_DIR = Path("/tmp/paper-ledger-bench")
BUILDER_VERSION = 5
ACCOUNTS = ("bench", "other")  # the audit benchmarks query "bench", which holds 90% of the fills and the marks
BENCH_SHARE = 0.9
SYMBOLS = tuple(f"SYM{i:02d}" for i in range(20))
INITIAL_CASH = 100_000_000
START = datetime(2020, 1, 2, 14, 30, tzinfo=UTC)
DAYS = 1000
E6 = 1_000_000
SLIPPAGE_BPS, FEE_BPS = 5, 1


def _sqlite_time(moment: datetime) -> str:
    return moment.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def _round_half_even_div(numerator: int, denominator: int) -> int:
    quotient, remainder = divmod(numerator, denominator)
    if 2 * remainder > denominator or (2 * remainder == denominator and quotient % 2):
        quotient += 1
    return quotient


def ledger_path(fills: int) -> Path:
    from ledger.db.migrate import head_revision

    return CACHE_DIR / f"ledger-{fills}-rev{head_revision()}-v{BUILDER_VERSION}.db"


def build_big_ledger(fills: int, *, log=print) -> Path:
    """Return the path of a ledger holding ``fills`` fills, building it when no cached copy exists."""
    path = ledger_path(fills)
    if path.exists():
        return path
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".building")
    for leftover in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm")):
        leftover.unlink(missing_ok=True)
    started = time.perf_counter()
    account_runs = _create_accounts(partial)
    db = sqlite3.connect(partial, isolation_level=None)
    db.execute("PRAGMA synchronous = OFF")
    db.execute("PRAGMA foreign_keys = OFF")  # rows are consistent by construction; checked by verify() below
    db.execute("PRAGMA cache_size = -262144")
    indexes = db.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        " AND tbl_name IN ('orders', 'order_events', 'fills', 'cash_movements', 'equity_marks')"
    ).fetchall()
    for name, _sql in indexes:
        db.execute(f'DROP INDEX "{name}"')
    counts = {name: (round(fills * BENCH_SHARE) if name == "bench" else 0) for name in ACCOUNTS}
    counts[ACCOUNTS[-1]] = fills - sum(counts.values())
    next_pk = 1
    for seed, (name, (account_id, run_id)) in enumerate(account_runs.items()):
        next_pk = _simulate_account(db, account_id, run_id, counts[name], next_pk, random.Random(seed),
                                    with_marks=name == ACCOUNTS[0])
    _sum_fill_totals(db)
    for _name, sql in indexes:
        db.execute(sql)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    log(f"  built {fills:,} fills in {time.perf_counter() - started:.1f} s -> {path}")
    _verify(partial, log)
    partial.rename(path)
    return path


def _create_accounts(path: Path) -> dict[str, tuple[int, str]]:
    from ledger.brokers.paper import PaperBroker
    from ledger.db.engine import dispose_engines

    created = {}
    for name in ACCOUNTS:
        with PaperBroker(
            account=name, db_url=f"sqlite:///{path}", initial_cash=INITIAL_CASH,
            slippage_bps=SLIPPAGE_BPS, fee_bps=FEE_BPS, clock=lambda: START - timedelta(days=1),
        ) as broker:
            created[name] = (broker.account_id, broker.run_id)
    dispose_engines()
    return created


def _simulate_account(db: sqlite3.Connection, account_id: int, run_id: str, count: int, first_pk: int,
                      rng: random.Random, *, with_marks: bool) -> int:
    """Insert ``count`` filled market orders for the account (with an equity mark at each: positions at the
    mid); returns the next free order/fill key."""
    cash = INITIAL_CASH * E6
    positions = {symbol: [0, 0, 0] for symbol in SYMBOLS}  # qty_e6, cost_basis_e6, realized_pnl_e6
    prices = {symbol: rng.randint(20, 400) * E6 for symbol in SYMBOLS}
    step = timedelta(days=DAYS) / max(count, 1)
    orders, events, fill_rows, cash_rows, marks = [], [], [], [], []
    marked = {symbol: 0 for symbol in SYMBOLS}  # each position's value at its symbol's last mid
    long_value = 0
    pk = first_pk
    for i in range(count):
        symbol = SYMBOLS[rng.randrange(len(SYMBOLS))]
        qty = rng.randint(1, 100)
        qty_e6 = qty * E6
        mid = prices[symbol] = max(E6, prices[symbol] + rng.randint(-50_000, 50_000))
        bid, ask = mid - 5_000, mid + 5_000
        position = positions[symbol]
        sell = position[0] >= qty_e6 and (rng.random() < 0.5 or position[0] > 5_000 * E6)
        base = bid if sell else ask
        price = base - base * SLIPPAGE_BPS // 10_000 if sell else base + base * SLIPPAGE_BPS // 10_000
        notional = price * qty
        fee = _round_half_even_div(notional * FEE_BPS, 10_000)
        if not sell and notional + fee > cash:
            continue
        if sell:
            cost_share = position[1] if qty_e6 == position[0] else _round_half_even_div(position[1] * qty_e6, position[0])
            cash_delta = notional - fee
            realized = cash_delta - cost_share
            position[0] -= qty_e6
            position[1] -= cost_share
            position[2] += realized
        else:
            cash_delta, realized = -(notional + fee), 0
            position[0] += qty_e6
            position[1] += notional + fee
        cash += cash_delta
        long_value += position[0] * mid // E6 - marked[symbol]
        marked[symbol] = position[0] * mid // E6
        at = _sqlite_time(START + step * i)
        side = "SELL" if sell else "BUY"
        orders.append((pk, f"{rng.getrandbits(128):032x}", account_id, run_id, symbol, side, qty_e6,
                       SLIPPAGE_BPS * E6, FEE_BPS * E6, qty_e6, at, at, at, price))
        events.append((pk, at, None, "new"))
        events.append((pk, at, "new", "filled"))
        fill_rows.append((pk, pk, account_id, run_id, symbol, side, qty_e6, price, notional, fee, realized,
                          SLIPPAGE_BPS * E6, FEE_BPS * E6, bid, ask, at, at))
        cash_rows.append((account_id, run_id, cash_delta, pk, at))
        if with_marks:
            marks.append((account_id, at, cash, long_value, cash + long_value))
        pk += 1
        if len(orders) >= 200_000:
            _flush(db, orders, events, fill_rows, cash_rows, marks)
    _flush(db, orders, events, fill_rows, cash_rows, marks)
    last = _sqlite_time(START + step * count)
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO positions (account_id, epoch, symbol, qty_e6, reserved_qty_e6, cost_basis_e6, realized_pnl_e6,"
        " updated_at) VALUES (?, 1, ?, ?, 0, ?, ?, ?)",
        [(account_id, symbol, *state, last) for symbol, state in positions.items() if any(state)],
    )
    db.execute("UPDATE accounts SET cash_e6 = ?, updated_at = ? WHERE id = ?", (cash, last, account_id))
    db.execute("COMMIT")
    return pk


def _flush(db: sqlite3.Connection, orders: list, events: list, fill_rows: list, cash_rows: list, marks: list) -> None:
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO orders (id, order_id, account_id, epoch, run_id, client_order_id, symbol, side, order_type,"
        " qty_e6, limit_price_e6, slippage_bps_e6, fee_bps_e6, status, reject_reason, filled_qty_e6,"
        " reserved_cash_e6, reserved_qty_e6, submitted_at, updated_at, filled_at, filled_avg_price_e6)"
        " VALUES (?, ?, ?, 1, ?, NULL, ?, ?, 'market', ?, NULL, ?, ?, 'filled', NULL, ?, 0, 0, ?, ?, ?, ?)",
        orders,
    )
    db.executemany("INSERT INTO order_events (order_id, at, from_status, to_status) VALUES (?, ?, ?, ?)", events)
    db.executemany(
        "INSERT INTO fills (id, order_id, account_id, epoch, run_id, symbol, side, qty_e6, price_e6, notional_e6,"
        " fee_e6, realized_pnl_e6, slippage_bps_e6, fee_bps_e6, quote_bid_e6, quote_ask_e6, quote_at, filled_at)"
        " VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        fill_rows,
    )
    db.executemany(
        "INSERT INTO cash_movements (account_id, epoch, run_id, kind, amount_e6, fill_id, at)"
        " VALUES (?, 1, ?, 'fill', ?, ?, ?)",
        cash_rows,
    )
    db.executemany(
        "INSERT INTO equity_marks (account_id, epoch, at, cash_e6, long_value_e6, short_value_e6, equity_e6)"
        " VALUES (?, 1, ?, ?, ?, 0, ?)",
        marks,
    )
    db.execute("COMMIT")
    for rows in (orders, events, fill_rows, cash_rows, marks):
        rows.clear()


def _sum_fill_totals(db: sqlite3.Connection) -> None:
    """The totals every fill keeps beside it (daily_totals, the positions' fill totals), from the fills."""
    db.execute("BEGIN")
    db.execute(
        "INSERT INTO daily_totals (account_id, epoch, day, symbol, fill_count, bought_qty_e6, sold_qty_e6,"
        " bought_notional_e6, sold_notional_e6, fees_e6, realized_pnl_e6)"
        " SELECT account_id, epoch, substr(filled_at, 1, 10), symbol, COUNT(*),"
        " SUM(CASE WHEN side = 'BUY' THEN qty_e6 ELSE 0 END), SUM(CASE WHEN side = 'BUY' THEN 0 ELSE qty_e6 END),"
        " SUM(CASE WHEN side = 'BUY' THEN notional_e6 ELSE 0 END),"
        " SUM(CASE WHEN side = 'BUY' THEN 0 ELSE notional_e6 END), SUM(fee_e6), SUM(realized_pnl_e6)"
        " FROM fills GROUP BY account_id, epoch, substr(filled_at, 1, 10), symbol"
    )
    totals = ("fill_count", "bought_qty_e6", "sold_qty_e6", "bought_notional_e6", "sold_notional_e6", "fees_e6")
    db.execute(
        f"UPDATE positions SET {', '.join(f'{name} = t.{name}' for name in totals)}"
        f" FROM (SELECT account_id, epoch, symbol, {', '.join(f'SUM({name}) AS {name}' for name in totals)}"
        " FROM daily_totals GROUP BY account_id, epoch, symbol) t"
        " WHERE t.account_id = positions.account_id AND t.epoch = positions.epoch AND t.symbol = positions.symbol"
    )
    db.execute("COMMIT")


def _verify(path: Path, log) -> None:
    from ledger.book.verify import verify_ledger
    from ledger.db.engine import dispose_engines, get_engine, read_transaction

    started = time.perf_counter()
    with get_engine(f"sqlite:///{path}").connect() as conn, read_transaction(conn):
        problems = verify_ledger(conn)
    dispose_engines()
    if problems:
        raise RuntimeError(f"the generated ledger breaks the ledger's laws: {problems[:3]}")
    log(f"  verify() on the generated ledger: clean ({time.perf_counter() - started:.1f} s)")
