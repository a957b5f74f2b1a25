"""The two references every order benchmark is measured against: the seed's in-memory design and the SQL floor.

- ``SeedBroker``: the reference plan's PaperBroker (docs: ../shared/spec/broker-layer-plan.md), rewritten here:
  floats in dicts, ``uuid4`` ids, one JSONL line appended (open, write, close) per order. Nothing is durable
  beyond that log line, nothing is validated beyond the plan's checks.
- ``FloorLedger``: raw DBAPI (stdlib ``sqlite3``, or ``psycopg`` on PostgreSQL) writing the same rows as the
  ledger into the ledger's own schema (same tables, constraints, indexes and foreign keys, created by
  ``ensure_schema``), one transaction per order: ``BEGIN IMMEDIATE``; INSERT orders; INSERT 2 order_events
  (executemany); INSERT fills; INSERT cash_movements; INSERT positions ... ON CONFLICT DO UPDATE; UPDATE
  accounts; COMMIT (``submit_orders``: the same statements for every order between one BEGIN IMMEDIATE and
  one COMMIT). It reads nothing: account, position and quote state is kept in Python, prices are integer
  arithmetic, so it is the cost of the durable writes alone. SQLite runs WAL with synchronous=NORMAL, as the
  ledger does by default.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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


class FloorLedger:
    """The durable writes of a market order, and nothing else, through the raw driver (see module docstring).

    ``connection``: an open ``sqlite3`` connection in autocommit mode (``isolation_level=None``) with the
    ledger's pragmas, or a ``psycopg`` connection. The account and run rows must exist.
    """

    def __init__(self, connection: Any, *, account_id: int, run_id: str, cash_e6: int, slippage_bps: int, fee_bps: int):
        self.db = connection
        self.sqlite = isinstance(connection, sqlite3.Connection)
        self.cursor = connection.cursor()
        self.account_id, self.run_id = account_id, run_id
        self.cash_e6 = cash_e6
        self.slippage_bps, self.fee_bps = slippage_bps, fee_bps
        # symbol -> [qty_e6, cost_basis_e6, realized_pnl_e6, fill_count, bought_qty_e6, sold_qty_e6,
        #            bought_notional_e6, sold_notional_e6, fees_e6]
        self.positions: dict[str, list[int]] = {}
        self.quotes: dict[str, tuple[int, int, datetime]] = {}
        mark = "?" if self.sqlite else "%s"

        def sql(text: str) -> str:
            return text.replace("?", mark)

        returning = "" if self.sqlite else " RETURNING id"
        self.insert_order = sql(
            "INSERT INTO orders (order_id, account_id, epoch, run_id, client_order_id, symbol, side, order_type, qty_e6,"
            " limit_price_e6, slippage_bps_e6, fee_bps_e6, status, reject_reason, filled_qty_e6, reserved_cash_e6,"
            " reserved_qty_e6, submitted_at, updated_at)"
            " VALUES (?, ?, 1, ?, NULL, ?, ?, 'market', ?, NULL, ?, ?, 'filled', NULL, ?, 0, 0, ?, ?)" + returning
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
        position_columns = ("qty_e6", "cost_basis_e6", "realized_pnl_e6", "fill_count", "bought_qty_e6", "sold_qty_e6",
                            "bought_notional_e6", "sold_notional_e6", "fees_e6", "updated_at")
        self.upsert_position = sql(
            f"INSERT INTO positions (account_id, epoch, symbol, reserved_qty_e6, {', '.join(position_columns)})"
            f" VALUES (?, 1, ?, 0, {', '.join(['?'] * len(position_columns))})"
            " ON CONFLICT (account_id, epoch, symbol) DO UPDATE SET "
            + ", ".join(f"{column} = excluded.{column}" for column in position_columns)
        )
        self.add_daily_totals = sql(
            "INSERT INTO daily_totals (account_id, epoch, day, symbol, fill_count, bought_qty_e6, sold_qty_e6,"
            " bought_notional_e6, sold_notional_e6, fees_e6, realized_pnl_e6) VALUES (?, 1, ?, ?, 1, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (account_id, epoch, day, symbol) DO UPDATE SET"
            " fill_count = daily_totals.fill_count + 1, bought_qty_e6 = daily_totals.bought_qty_e6 + excluded.bought_qty_e6,"
            " sold_qty_e6 = daily_totals.sold_qty_e6 + excluded.sold_qty_e6,"
            " bought_notional_e6 = daily_totals.bought_notional_e6 + excluded.bought_notional_e6,"
            " sold_notional_e6 = daily_totals.sold_notional_e6 + excluded.sold_notional_e6,"
            " fees_e6 = daily_totals.fees_e6 + excluded.fees_e6,"
            " realized_pnl_e6 = daily_totals.realized_pnl_e6 + excluded.realized_pnl_e6"
        )
        self.update_cash = sql("UPDATE accounts SET cash_e6 = ?, updated_at = ? WHERE id = ?")

    def set_quote(self, symbol: str, bid: float, ask: float) -> None:
        self.quotes[symbol] = (round(bid * 1_000_000), round(ask * 1_000_000), datetime.now(UTC))

    def _time(self, moment: datetime) -> Any:
        return _sqlite_time(moment) if self.sqlite else moment

    def _insert(self, statement: str, values: tuple[Any, ...]) -> int:
        self.cursor.execute(statement, values)
        return self.cursor.lastrowid if self.sqlite else self.cursor.fetchone()[0]

    def submit_order(self, symbol: str, side: str, qty: int) -> int:
        """One filled market order of a whole number of shares, in one transaction; returns the fill id."""
        return self.submit_orders([(symbol, side, qty)])[0]

    def submit_orders(self, mix: list[tuple[str, str, int]]) -> list[int]:
        """Filled market orders, all in one transaction (the same statements per order); returns the fill ids."""
        if self.sqlite:
            self.cursor.execute("BEGIN IMMEDIATE")
        try:
            fill_ids = [self._write_order(symbol, side, qty) for symbol, side, qty in mix]
            self.db.commit() if not self.sqlite else self.cursor.execute("COMMIT")
        except BaseException:
            self.db.rollback()
            raise
        return fill_ids

    def _write_order(self, symbol: str, side: str, qty: int) -> int:
        bid, ask, quoted_at = self.quotes[symbol]
        qty_e6 = qty * 1_000_000
        base = ask if side == SIDE_BUY else bid
        slip = base * self.slippage_bps // 10_000
        price = base + slip if side == SIDE_BUY else base - slip
        notional = price * qty
        fee = notional * self.fee_bps // 10_000
        position = self.positions.setdefault(symbol, [0] * 9)
        position[3] += 1
        position[4 if side == SIDE_BUY else 5] += qty_e6
        position[6 if side == SIDE_BUY else 7] += notional
        position[8] += fee
        if side == SIDE_BUY:
            cash_delta, realized = -(notional + fee), 0
            position[0] += qty_e6
            position[1] += notional + fee
        else:
            cost_share = position[1] * qty_e6 // position[0]
            cash_delta = notional - fee
            realized = cash_delta - cost_share
            position[0] -= qty_e6
            position[1] -= cost_share
            position[2] += realized
        at = self._time(datetime.now(UTC))
        order_pk = self._insert(
            self.insert_order,
            (uuid.uuid4().hex, self.account_id, self.run_id, symbol, side, qty_e6,
             self.slippage_bps * 1_000_000, self.fee_bps * 1_000_000, qty_e6, at, at),
        )
        self.cursor.executemany(self.insert_event, [(order_pk, at, None, "new"), (order_pk, at, "new", "filled")])
        fill_id = self._insert(
            self.insert_fill,
            (order_pk, self.account_id, self.run_id, symbol, side, qty_e6, price, notional, fee, realized,
             self.slippage_bps * 1_000_000, self.fee_bps * 1_000_000, bid, ask, self._time(quoted_at), at),
        )
        self.cursor.execute(self.insert_cash, (self.account_id, self.run_id, cash_delta, fill_id, at))
        self.cursor.execute(self.upsert_position, (self.account_id, symbol, *position, at))
        bought = side == SIDE_BUY
        self.cursor.execute(self.add_daily_totals, (
            self.account_id, at[:10] if self.sqlite else at.date(), symbol, qty_e6 if bought else 0,
            0 if bought else qty_e6, notional if bought else 0, 0 if bought else notional, fee, realized))
        self.cash_e6 += cash_delta
        self.cursor.execute(self.update_cash, (self.cash_e6, at, self.account_id))
        return fill_id


def open_sqlite_floor(path: Path) -> sqlite3.Connection:
    """A raw sqlite3 connection with the ledger's pragmas: WAL, synchronous=NORMAL, foreign keys, busy timeout."""
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = NORMAL")
    connection.execute("PRAGMA foreign_keys = ON")
    connection.execute("PRAGMA busy_timeout = 60000")
    return connection
