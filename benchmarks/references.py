"""The references every order benchmark is measured against: the seed's in-memory design and two SQL floors.

- ``SeedBroker``: the reference plan's PaperBroker (docs: ../shared/spec/broker-layer-plan.md), rewritten here:
  floats in dicts, ``uuid4`` ids, one JSONL line appended (open, write, close) per order. Nothing is durable
  beyond that log line, nothing is validated beyond the plan's checks.
- ``FloorLedger`` (the floor on the same schema): raw DBAPI (stdlib ``sqlite3``, or ``psycopg`` on PostgreSQL)
  writing the rows the ledger writes for a filled market order into the ledger's own schema (same tables,
  constraints, indexes and foreign keys, created by ``ensure_schema``), one transaction per order, 10
  statements (11 executions):

  1. ``BEGIN IMMEDIATE`` (SQLite; psycopg opens its transaction itself);
  2. INSERT orders: the order's row in its final form (status ``filled``, filled qty and average price,
     ``filled_at``), once; the ledger today INSERTs it and then UPDATEs the same row;
  3. INSERT 2 order_events (``executemany``: NULL -> new, new -> filled);
  4. INSERT fills;
  5. INSERT cash_movements (kind ``fill``);
  6. INSERT daily_totals ... ON CONFLICT DO UPDATE (the day's per-symbol totals, added to);
  7. INSERT positions ... ON CONFLICT DO UPDATE (quantity, cost basis, realized P&L, the fill totals);
  8. UPDATE accounts (cash, ``clock_at``, ``updated_at``);
  9. INSERT equity_marks (cash, long and short value at the quote mids, equity: the ledger marks every fill);
  10. ``COMMIT``.

  It reads nothing: the ledger's reads (account row, due orders, quote and position, next ids, positions for
  the mark) are not needed when account, positions and quotes are kept in Python, and the prices are integer
  arithmetic, so it is the cost of the durable writes alone. ``submit_orders`` writes what the ledger's
  ``submit_orders`` writes for a batch in its one transaction: steps 2-5 for every order, then 6 and 7 once
  per symbol touched, 8 and 9 once.
- ``MinimalFloor`` (the minimal floor): raw ``sqlite3`` on a schema of its own, ``MINIMAL_SCHEMA``: only
  ``accounts``, ``orders``, ``fills`` and ``positions``, each with its primary key and nothing else (no
  secondary index, no unique constraint, no foreign key, no check; ``positions`` is WITHOUT ROWID, so its key
  is the table), one transaction per order, 6 statements: ``BEGIN IMMEDIATE``; INSERT orders (the final row,
  once); INSERT fills; INSERT positions ... ON CONFLICT DO UPDATE; UPDATE accounts (cash); ``COMMIT``. It reads
  nothing either. It is the least a durable order can write: issue 12 bounds us at 4x its time.

SQLite runs WAL with synchronous=NORMAL for all three durable sides, as the ledger does by default
(``open_sqlite_floor``: the ledger's pragmas).
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

SIDE_BUY, SIDE_SELL = "BUY", "SELL"


class SeedBroker:
    """The seed design: state in dicts, floats, one JSONL append per fill."""

    def __init__(self, log_dir: Path, *, initial_cash: float, slippage_bps: float, fee_bps: float):
        self._slippage_bps, self._fee_bps = slippage_bps, fee_bps
        self._slip, self._fee = slippage_bps * 1e-4, fee_bps * 1e-4
        self._cash = float(initial_cash)
        self._positions: dict[str, float] = {}
        self._fills: list[dict[str, Any]] = []
        self._orders: dict[str, dict[str, Any]] = {}
        self._quotes: dict[str, dict[str, Any]] = {}
        self._log_dir = Path(log_dir)
        self._log_dir.mkdir(parents=True, exist_ok=True)

    def set_quote(self, symbol: str, bid: float, ask: float) -> None:
        self._quotes[symbol.upper()] = {"bid": bid, "ask": ask, "timestamp": datetime.now(UTC)}

    def submit_order(self, symbol: str, side: str, qty: float) -> dict[str, Any]:
        symbol, side, qty = symbol.upper(), side.upper(), float(qty)
        if side not in (SIDE_BUY, SIDE_SELL) or qty <= 0:
            raise ValueError(f"bad order {side} {qty}")
        quote = self._quotes.get(symbol)
        if quote is None:
            raise ValueError(f"No quote available for {symbol}")
        fill_price = quote["ask"] * (1 + self._slip) if side == SIDE_BUY else quote["bid"] * (1 - self._slip)
        notional = qty * fill_price
        fee = notional * self._fee
        if side == SIDE_BUY:
            if notional + fee > self._cash:
                raise ValueError("Insufficient cash")
            self._positions[symbol] = self._positions.get(symbol, 0.0) + qty
            self._cash -= notional + fee
        else:
            if qty > self._positions.get(symbol, 0.0):
                raise ValueError("Insufficient shares")
            self._positions[symbol] -= qty
            self._cash += notional - fee
            if abs(self._positions[symbol]) < 1e-9:
                del self._positions[symbol]
        order_id = str(uuid.uuid4())[:8]
        timestamp = datetime.now(UTC)
        fill = {
            "order_id": order_id, "timestamp": timestamp.isoformat(), "symbol": symbol, "side": side, "qty": qty,
            "fill_price": fill_price, "notional": notional, "fee": fee,
            "slippage_bps": self._slippage_bps, "fee_bps": self._fee_bps,
        }
        self._fills.append(fill)
        self._orders[order_id] = fill
        with (self._log_dir / f"{timestamp:%Y-%m-%d}.jsonl").open("a", encoding="utf-8") as log:
            log.write(json.dumps(fill, default=str) + "\n")
        return {"order_id": order_id, "status": "filled", "fill_price": fill_price, "qty": qty, "timestamp": timestamp}


def _sqlite_time(moment: datetime) -> str:
    """The on-disk form SQLAlchemy's SQLite DateTime uses (the ledger's UTCDateTime stores UTC in it)."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def _half_even(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half-even to an integer (the ledger's ``round_amount`` on millionths)."""
    quotient, remainder = divmod(numerator, denominator)
    if 2 * remainder > denominator or (2 * remainder == denominator and quotient % 2):
        quotient += 1
    return quotient


@dataclass
class Holding:
    """A position as the floors keep it in Python, in integer millionths (the ledger's ``positions`` row)."""

    qty_e6: int = 0
    cost_basis_e6: int = 0
    realized_pnl_e6: int = 0
    fill_count: int = 0
    bought_qty_e6: int = 0
    sold_qty_e6: int = 0
    bought_notional_e6: int = 0
    sold_notional_e6: int = 0
    fees_e6: int = 0

    def totals(self) -> tuple[int, ...]:
        """The row's values after its key, in the ledger's column order (``FloorLedger.position_columns``)."""
        return (self.qty_e6, self.cost_basis_e6, self.realized_pnl_e6, self.fill_count, self.bought_qty_e6,
                self.sold_qty_e6, self.bought_notional_e6, self.sold_notional_e6, self.fees_e6)


class Execution(NamedTuple):
    """One market order's fill, priced by :class:`IntegerBook`."""

    symbol: str
    side: str
    qty_e6: int
    price_e6: int
    notional_e6: int
    fee_e6: int
    cash_delta_e6: int
    realized_pnl_e6: int
    bid_e6: int
    ask_e6: int
    quoted_at: datetime


class IntegerBook:
    """What both floors keep in Python instead of reading it: cash, positions and quotes, priced in integers
    (fill at the ask plus slippage for a buy, the bid minus slippage for a sell; fee on the notional)."""

    def __init__(self, *, cash_e6: int, slippage_bps: int, fee_bps: int):
        self.cash_e6 = cash_e6
        self.slippage_bps, self.fee_bps = slippage_bps, fee_bps
        self.holdings: dict[str, Holding] = {}
        self.quotes: dict[str, tuple[int, int, datetime]] = {}

    def set_quote(self, symbol: str, bid: float, ask: float) -> None:
        self.quotes[symbol] = (round(bid * 1_000_000), round(ask * 1_000_000), datetime.now(UTC))

    def execute(self, symbol: str, side: str, qty: int) -> Execution:
        """Fill ``qty`` whole shares at the quote: moves cash and the symbol's holding, returns the fill."""
        bid, ask, quoted_at = self.quotes[symbol]
        qty_e6 = qty * 1_000_000
        base = ask if side == SIDE_BUY else bid
        slip = base * self.slippage_bps // 10_000
        price = base + slip if side == SIDE_BUY else base - slip
        notional = price * qty
        fee = notional * self.fee_bps // 10_000
        holding = self.holdings.setdefault(symbol, Holding())
        holding.fill_count += 1
        holding.fees_e6 += fee
        if side == SIDE_BUY:
            cash_delta, realized = -(notional + fee), 0
            holding.bought_qty_e6 += qty_e6
            holding.bought_notional_e6 += notional
            holding.qty_e6 += qty_e6
            holding.cost_basis_e6 += notional + fee
        else:
            cost_share = holding.cost_basis_e6 * qty_e6 // holding.qty_e6
            cash_delta = notional - fee
            realized = cash_delta - cost_share
            holding.sold_qty_e6 += qty_e6
            holding.sold_notional_e6 += notional
            holding.qty_e6 -= qty_e6
            holding.cost_basis_e6 -= cost_share
            holding.realized_pnl_e6 += realized
        self.cash_e6 += cash_delta
        return Execution(symbol, side, qty_e6, price, notional, fee, cash_delta, realized, bid, ask, quoted_at)

    def marked_values(self) -> tuple[int, int]:
        """(long value, short value) of the non-zero holdings at their quote's mid, each summed exactly and
        rounded once, as the ledger's equity mark values them."""
        long_sum = short_sum = 0  # in millionths x 2 x 1e6: qty_e6 x (bid_e6 + ask_e6)
        for symbol, holding in self.holdings.items():
            bid, ask, _ = self.quotes[symbol]
            value = holding.qty_e6 * (bid + ask)
            if holding.qty_e6 > 0:
                long_sum += value
            elif holding.qty_e6 < 0:
                short_sum += value
        return _half_even(long_sum, 2_000_000), _half_even(short_sum, 2_000_000)


class FloorLedger(IntegerBook):
    """The durable writes of a market order, and nothing else, through the raw driver on the ledger's schema
    (see the module docstring).

    ``connection``: an open ``sqlite3`` connection in autocommit mode (``isolation_level=None``) with the
    ledger's pragmas, or a ``psycopg`` connection. The account and run rows must exist.
    """

    position_columns = ("qty_e6", "cost_basis_e6", "realized_pnl_e6", "fill_count", "bought_qty_e6", "sold_qty_e6",
                        "bought_notional_e6", "sold_notional_e6", "fees_e6", "updated_at")

    def __init__(self, connection: Any, *, account_id: int, run_id: str, cash_e6: int, slippage_bps: int, fee_bps: int):
        super().__init__(cash_e6=cash_e6, slippage_bps=slippage_bps, fee_bps=fee_bps)
        self.db = connection
        self.sqlite = isinstance(connection, sqlite3.Connection)
        self.cursor = connection.cursor()
        self.account_id, self.run_id = account_id, run_id
        mark = "?" if self.sqlite else "%s"

        def sql(text: str) -> str:
            return text.replace("?", mark)

        returning = "" if self.sqlite else " RETURNING id"
        self.insert_order = sql(
            "INSERT INTO orders (order_id, account_id, epoch, run_id, client_order_id, symbol, side, order_type,"
            " time_in_force, qty_e6, limit_price_e6, slippage_bps_e6, fee_bps_e6, status, reject_reason, filled_qty_e6,"
            " reserved_cash_e6, reserved_qty_e6, filled_avg_price_e6, submitted_at, updated_at, filled_at)"
            " VALUES (?, ?, 1, ?, NULL, ?, ?, 'market', 'gtc', ?, NULL, ?, ?, 'filled', NULL, ?, 0, 0, ?, ?, ?, ?)"
            + returning
        )
        self.insert_event = sql("INSERT INTO order_events (order_id, at, from_status, to_status, reason) VALUES (?, ?, ?, ?, NULL)")
        self.insert_fill = sql(
            "INSERT INTO fills (order_id, account_id, epoch, run_id, symbol, side, qty_e6, price_e6, notional_e6, fee_e6,"
            " realized_pnl_e6, slippage_bps_e6, fee_bps_e6, quote_bid_e6, quote_ask_e6, quote_at, filled_at)"
            " VALUES (?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)" + returning
        )
        self.insert_cash = sql(
            "INSERT INTO cash_movements (account_id, epoch, run_id, kind, amount_e6, fill_id, at)"
            " VALUES (?, 1, ?, 'fill', ?, ?, ?)"
        )
        columns = self.position_columns
        self.upsert_position = sql(
            f"INSERT INTO positions (account_id, epoch, symbol, reserved_qty_e6, {', '.join(columns)})"
            f" VALUES (?, 1, ?, 0, {', '.join(['?'] * len(columns))})"
            " ON CONFLICT (account_id, epoch, symbol) DO UPDATE SET "
            + ", ".join(f"{column} = excluded.{column}" for column in columns)
        )
        self.add_daily_totals = sql(
            "INSERT INTO daily_totals (account_id, epoch, day, symbol, fill_count, bought_qty_e6, sold_qty_e6,"
            " bought_notional_e6, sold_notional_e6, fees_e6, realized_pnl_e6) VALUES (?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (account_id, epoch, day, symbol) DO UPDATE SET"
            " fill_count = daily_totals.fill_count + excluded.fill_count,"
            " bought_qty_e6 = daily_totals.bought_qty_e6 + excluded.bought_qty_e6,"
            " sold_qty_e6 = daily_totals.sold_qty_e6 + excluded.sold_qty_e6,"
            " bought_notional_e6 = daily_totals.bought_notional_e6 + excluded.bought_notional_e6,"
            " sold_notional_e6 = daily_totals.sold_notional_e6 + excluded.sold_notional_e6,"
            " fees_e6 = daily_totals.fees_e6 + excluded.fees_e6,"
            " realized_pnl_e6 = daily_totals.realized_pnl_e6 + excluded.realized_pnl_e6"
        )
        self.update_account = sql("UPDATE accounts SET cash_e6 = ?, clock_at = ?, updated_at = ? WHERE id = ?")
        self.insert_mark = sql(
            "INSERT INTO equity_marks (account_id, epoch, at, cash_e6, long_value_e6, short_value_e6, equity_e6)"
            " VALUES (?, 1, ?, ?, ?, ?, ?)"
        )

    def _time(self, moment: datetime) -> Any:
        return _sqlite_time(moment) if self.sqlite else moment

    def _insert(self, statement: str, values: tuple[Any, ...]) -> int:
        self.cursor.execute(statement, values)
        return self.cursor.lastrowid if self.sqlite else self.cursor.fetchone()[0]

    def submit_order(self, symbol: str, side: str, qty: int) -> int:
        """One filled market order of a whole number of shares, in one transaction; returns the fill id."""
        return self.submit_orders([(symbol, side, qty)])[0]

    def submit_orders(self, mix: list[tuple[str, str, int]]) -> list[int]:
        """Filled market orders, all in one transaction, writing what the ledger's ``submit_orders`` writes:
        each order's own rows, then one upsert per symbol and day touched, the account once, one equity mark;
        returns the fill ids."""
        now = datetime.now(UTC)
        at, day = self._time(now), _sqlite_time(now)[:10] if self.sqlite else now.date()
        if self.sqlite:
            self.cursor.execute("BEGIN IMMEDIATE")
        try:
            executions = [self.execute(symbol, side, qty) for symbol, side, qty in mix]
            fill_ids = [self._write_order(execution, at) for execution in executions]
            for symbol, totals in _daily_totals(executions).items():
                self.cursor.execute(self.add_daily_totals, (self.account_id, day, symbol, *totals))
            for symbol in dict.fromkeys(execution.symbol for execution in executions):
                self.cursor.execute(self.upsert_position, (self.account_id, symbol, *self.holdings[symbol].totals(), at))
            self.cursor.execute(self.update_account, (self.cash_e6, at, at, self.account_id))
            long_value, short_value = self.marked_values()
            self.cursor.execute(self.insert_mark, (self.account_id, at, self.cash_e6, long_value, short_value,
                                                   self.cash_e6 + long_value + short_value))
            self.db.commit() if not self.sqlite else self.cursor.execute("COMMIT")
        except BaseException:
            self.db.rollback()
            raise
        return fill_ids

    def _write_order(self, execution: Execution, at: Any) -> int:
        """The order's row in its final (filled) form, its two events, its fill and its cash movement."""
        order_pk = self._insert(self.insert_order, (
            uuid.uuid4().hex, self.account_id, self.run_id, execution.symbol, execution.side, execution.qty_e6,
            self.slippage_bps * 1_000_000, self.fee_bps * 1_000_000, execution.qty_e6, execution.price_e6, at, at, at,
        ))
        self.cursor.executemany(self.insert_event, [(order_pk, at, None, "new"), (order_pk, at, "new", "filled")])
        fill_id = self._insert(self.insert_fill, (
            order_pk, self.account_id, self.run_id, execution.symbol, execution.side, execution.qty_e6,
            execution.price_e6, execution.notional_e6, execution.fee_e6, execution.realized_pnl_e6,
            self.slippage_bps * 1_000_000, self.fee_bps * 1_000_000, execution.bid_e6, execution.ask_e6,
            self._time(execution.quoted_at), at,
        ))
        self.cursor.execute(self.insert_cash, (self.account_id, self.run_id, execution.cash_delta_e6, fill_id, at))
        return fill_id


def _daily_totals(executions: list[Execution]) -> dict[str, list[int]]:
    """Per symbol: [fill count, bought qty, sold qty, bought notional, sold notional, fees, realized P&L]."""
    totals: dict[str, list[int]] = {}
    for execution in executions:
        row = totals.setdefault(execution.symbol, [0] * 7)
        bought = execution.side == SIDE_BUY
        row[0] += 1
        row[1 if bought else 2] += execution.qty_e6
        row[3 if bought else 4] += execution.notional_e6
        row[5] += execution.fee_e6
        row[6] += execution.realized_pnl_e6
    return totals


MINIMAL_SCHEMA = """
CREATE TABLE accounts (id INTEGER PRIMARY KEY, cash_e6 INTEGER NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY, order_id TEXT NOT NULL, account_id INTEGER NOT NULL, symbol TEXT NOT NULL,
    side TEXT NOT NULL, qty_e6 INTEGER NOT NULL, status TEXT NOT NULL, filled_qty_e6 INTEGER NOT NULL,
    filled_avg_price_e6 INTEGER, submitted_at TEXT NOT NULL, filled_at TEXT
);
CREATE TABLE fills (
    id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL, account_id INTEGER NOT NULL, symbol TEXT NOT NULL,
    side TEXT NOT NULL, qty_e6 INTEGER NOT NULL, price_e6 INTEGER NOT NULL, notional_e6 INTEGER NOT NULL,
    fee_e6 INTEGER NOT NULL, filled_at TEXT NOT NULL
);
CREATE TABLE positions (
    account_id INTEGER NOT NULL, symbol TEXT NOT NULL, qty_e6 INTEGER NOT NULL, cost_basis_e6 INTEGER NOT NULL,
    realized_pnl_e6 INTEGER NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (account_id, symbol)
) WITHOUT ROWID;
"""


class MinimalFloor(IntegerBook):
    """A market order's least durable record, through ``sqlite3`` on a schema of its own (``MINIMAL_SCHEMA``;
    see the module docstring). ``connection``: as :func:`open_sqlite_floor` returns, on an empty database."""

    def __init__(self, connection: sqlite3.Connection, *, cash_e6: int, slippage_bps: int, fee_bps: int):
        super().__init__(cash_e6=cash_e6, slippage_bps=slippage_bps, fee_bps=fee_bps)
        self.db = connection
        self.cursor = connection.cursor()
        connection.executescript(MINIMAL_SCHEMA)
        self.account_id = 1
        connection.execute("INSERT INTO accounts (id, cash_e6, updated_at) VALUES (?, ?, ?)",
                           (self.account_id, cash_e6, _sqlite_time(datetime.now(UTC))))

    def submit_order(self, symbol: str, side: str, qty: int) -> int:
        """One filled market order of a whole number of shares, in one transaction; returns the fill id."""
        at = _sqlite_time(datetime.now(UTC))
        self.cursor.execute("BEGIN IMMEDIATE")
        try:
            execution = self.execute(symbol, side, qty)
            self.cursor.execute(
                "INSERT INTO orders (order_id, account_id, symbol, side, qty_e6, status, filled_qty_e6,"
                " filled_avg_price_e6, submitted_at, filled_at) VALUES (?, ?, ?, ?, ?, 'filled', ?, ?, ?, ?)",
                (uuid.uuid4().hex, self.account_id, symbol, side, execution.qty_e6, execution.qty_e6,
                 execution.price_e6, at, at),
            )
            self.cursor.execute(
                "INSERT INTO fills (order_id, account_id, symbol, side, qty_e6, price_e6, notional_e6, fee_e6,"
                " filled_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (self.cursor.lastrowid, self.account_id, symbol, side, execution.qty_e6, execution.price_e6,
                 execution.notional_e6, execution.fee_e6, at),
            )
            fill_id = self.cursor.lastrowid
            holding = self.holdings[symbol]
            self.cursor.execute(
                "INSERT INTO positions (account_id, symbol, qty_e6, cost_basis_e6, realized_pnl_e6, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (account_id, symbol) DO UPDATE SET qty_e6 = excluded.qty_e6,"
                " cost_basis_e6 = excluded.cost_basis_e6, realized_pnl_e6 = excluded.realized_pnl_e6,"
                " updated_at = excluded.updated_at",
                (self.account_id, symbol, holding.qty_e6, holding.cost_basis_e6, holding.realized_pnl_e6, at),
            )
            self.cursor.execute("UPDATE accounts SET cash_e6 = ?, updated_at = ? WHERE id = ?",
                                (self.cash_e6, at, self.account_id))
            self.cursor.execute("COMMIT")
        except BaseException:
            self.db.rollback()
            raise
        return fill_id


def open_sqlite_floor(path: Path) -> sqlite3.Connection:
    """A raw sqlite3 connection with the ledger's pragmas: WAL, synchronous=NORMAL, foreign keys, busy timeout."""
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = NORMAL")
    connection.execute("PRAGMA foreign_keys = ON")
    connection.execute("PRAGMA busy_timeout = 60000")
    return connection
