"""pandas DataFrames of an account's fills, orders, positions and equity curve, for analysis and plots.

Frames are a read-only *view* for analysis: amounts are float64 (the nearest double of the exact value);
the exact figures are the Decimals in the ledger (``PaperBroker``, ``ledger.queries``) and the ``*_exact``
columns of the ``v_*`` SQL views. Every frame covers the account's current epoch and has fixed dtypes, the
same when it is empty:

- times: ``datetime64[us, UTC]`` (the ledger stores microseconds);
- amounts (quantities, prices, money, basis points): ``float64``, NaN where there is no value;
- symbols, sides, order types and statuses: ``category``; ids and free text: ``string``; ``epoch``: int64.

Each function takes a Connection (used inside its open transaction, or in a read transaction of its own),
an Engine, or a database URL (None: the library's default), plus the account's name. All reads of one call
happen in one transaction, so a frame is a consistent snapshot while other processes trade.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from bisect import bisect_right
from datetime import datetime, timedelta
from decimal import Decimal
from typing import IO, Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, Select, select

from ledger.book.validation import require_utc
from ledger.constants import ORDER_STATUSES, SIDE_BUY
from ledger.db.engine import get_engine, read_transaction, resolve_db_url, translate_db_errors
from ledger.db.models import Account, CashMovement, EquityMark
from ledger.exceptions import LedgerError
from ledger.queries import (
    cash_flow,
    daily_closes_stmt,
    equity_marks_from_stmt,
    equity_marks_sampled_stmt,
    fills_stmt,
    last_equity_mark_at,
    orders_stmt,
    position_figures,
    position_rows,
)

Source = Connection | Engine | str | None

accounts = Account.__table__
cash_movements = CashMovement.__table__
equity_marks = EquityMark.__table__

TIME_DTYPE = "datetime64[us, UTC]"

# (frame column, row attribute, kind): the columns of each frame, in order.
_FILL_COLUMNS = (
    ("filled_at", "filled_at", "time"),
    ("order_id", "order_id", "string"),
    ("symbol", "symbol", "category"),
    ("side", "side", "category"),
    ("qty", "qty_e6", "amount"),
    ("price", "price_e6", "amount"),
    ("notional", "notional_e6", "amount"),
    ("fee", "fee_e6", "amount"),
    ("realized_pnl", "realized_pnl_e6", "amount"),
    ("quote_bid", "quote_bid_e6", "amount"),
    ("quote_ask", "quote_ask_e6", "amount"),
    ("quote_at", "quote_at", "time"),
    ("slippage_bps", "slippage_bps_e6", "amount"),
    ("fee_bps", "fee_bps_e6", "amount"),
    ("run_id", "run_id", "string"),
    ("epoch", "epoch", "int"),
)
_ORDER_COLUMNS = (
    ("submitted_at", "submitted_at", "time"),
    ("order_id", "order_id", "string"),
    ("client_order_id", "client_order_id", "string"),
    ("symbol", "symbol", "category"),
    ("side", "side", "category"),
    ("order_type", "order_type", "category"),
    ("status", "status", "category"),
    ("qty", "qty_e6", "amount"),
    ("limit_price", "limit_price_e6", "amount"),
    ("filled_qty", "filled_qty_e6", "amount"),
    ("reserved_cash", "reserved_cash_e6", "amount"),
    ("reserved_qty", "reserved_qty_e6", "amount"),
    ("slippage_bps", "slippage_bps_e6", "amount"),
    ("fee_bps", "fee_bps_e6", "amount"),
    ("reject_reason", "reject_reason", "string"),
    ("updated_at", "updated_at", "time"),
    ("run_id", "run_id", "string"),
    ("epoch", "epoch", "int"),
)
_POSITION_COLUMNS = (
    ("symbol", "symbol", "category"),
    ("qty", "qty", "amount"),
    ("reserved_qty", "reserved_qty", "amount"),
    ("avg_cost", "avg_cost", "amount"),
    ("cost_basis", "cost_basis", "amount"),
    ("last_price", "last_price", "amount"),
    ("market_value", "market_value", "amount"),
    ("unrealized_pnl", "unrealized_pnl", "amount"),
    ("realized_pnl", "realized_pnl", "amount"),
)
_EQUITY_COLUMNS = (
    ("timestamp", "timestamp", "time"),
    ("cash", "cash", "amount"),
    ("positions_value", "positions_value", "amount"),
    ("equity", "equity", "amount"),
)


def fills_frame(
    source: Source, account: str, since: datetime | None = None, symbol: str | None = None
) -> pd.DataFrame:
    """The account's fills, oldest first; ``since`` (UTC-aware, inclusive) and ``symbol`` filter in SQL.

    Columns: filled_at, order_id (public id), symbol, side, qty, price, notional, fee, realized_pnl,
    quote_bid, quote_ask, quote_at (the quote the fill was priced from), slippage_bps, fee_bps, run_id, epoch.
    """
    since_utc = None if since is None else require_utc(since, "since")
    with _reading(source) as conn:
        account_row = _account(conn, account)
        rows = conn.execute(fills_stmt(account_row.id, since=since_utc, symbol=symbol)).all()
    return _frame(rows, _FILL_COLUMNS)


FILLS_CSV_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def write_fills_csv(
    source: Source, account: str, handle: IO[str], since: datetime | None = None, symbol: str | None = None
) -> int:
    """:func:`fills_frame` as CSV on ``handle`` (times ISO-8601 UTC with microseconds): the one fills CSV export,
    of ``paper-ledger fills --format csv`` and the dashboard's download. Returns the number of fills written."""
    frame = fills_frame(source, account, since=since, symbol=symbol)
    frame.to_csv(handle, index=False, date_format=FILLS_CSV_TIME_FORMAT)
    return len(frame)


def orders_frame(source: Source, account: str, status: str | None = None) -> pd.DataFrame:
    """The account's orders in submission order (rejected ones included), optionally of one ``status``.

    Columns: submitted_at, order_id, client_order_id, symbol, side, order_type, status, qty, limit_price,
    filled_qty, reserved_cash, reserved_qty, slippage_bps, fee_bps, reject_reason, updated_at, run_id, epoch.
    """
    if status is not None and status not in ORDER_STATUSES:
        raise ValueError(f"unknown order status {status!r}; expected one of {', '.join(ORDER_STATUSES)}")
    with _reading(source) as conn:
        account_row = _account(conn, account)
        rows = conn.execute(orders_stmt(account_row.id, status=status)).all()
    return _frame(rows, _ORDER_COLUMNS)


def positions_frame(source: Source, account: str) -> pd.DataFrame:
    """Every position of the current epoch, closed ones included (they carry realized P&L), by symbol.

    ``avg_cost`` = cost_basis / qty (buy fees included; NaN when flat). ``last_price`` is the mid of the
    account's last quote for the symbol, the price the broker values positions at; without a quote it is
    NaN and so are ``market_value`` (qty x last_price) and ``unrealized_pnl`` (market_value - cost_basis).
    Computed in Decimal, converted to float last.
    """
    with _reading(source) as conn:
        account_row = _account(conn, account)
        rows = position_rows(conn, account_row.id, include_flat=True)
    records = [position_figures(row) for row in rows]
    return _frame(records, _POSITION_COLUMNS)


def equity_curve(source: Source, account: str) -> pd.DataFrame:
    """Account value over the current epoch, marked to market: one row at its start, then one per equity mark
    (``equity_marks``: at every fill, deposit or withdrawal, every replay bar, and on quote updates at most
    once per the account's ``equity_mark_interval_s``; the last mark at each time).

    ``cash``; ``positions_value`` = long plus short market value at the mid of each symbol's last quote;
    ``equity`` = cash + positions_value. A ledger made before marks existed falls back to its fills (each
    symbol valued at its last fill price, one row per fill, deposit or withdrawal time).
    """
    with _reading(source) as conn:
        points = _equity_points(conn, _account(conn, account))
    return _frame(points, _EQUITY_COLUMNS)


def max_drawdown(values: Sequence[Decimal]) -> Decimal:
    """The largest fall from a running peak, as a fraction of that peak (0 for a curve that never falls)."""
    peak: Decimal | None = None
    worst = Decimal(0)
    for value in values:
        peak = value if peak is None or value > peak else peak
        if peak > 0:
            worst = max(worst, (peak - value) / peak)
    return worst


def account_max_drawdown(source: Source, account: str) -> Decimal:
    """THE max drawdown of an account's current epoch: of its :func:`equity_curve` net of deposits and
    withdrawals, computed exactly (Decimal).

    ``paper-ledger report`` and the replay summary both show this figure.
    """
    with _reading(source) as conn:
        points = _equity_points(conn, _account(conn, account))
    # Deposits and withdrawals are not gains or losses: each point is taken as if every flow of the epoch had
    # happened at its start (equity + the flows still to come), so only trading moves the curve's peaks.
    total = points[-1]["net_deposits"]
    return max_drawdown([point["equity"] + total - point["net_deposits"] for point in points])


def equity_points(source: Source, account: str) -> list[dict[str, Any]]:
    """The points of :func:`equity_curve` in Decimal, for charts drawn exactly: ``timestamp``, ``cash``,
    ``positions_value``, ``equity`` and ``net_deposits`` (the epoch's deposits less withdrawals up to the point)."""
    with _reading(source) as conn:
        return _equity_points(conn, _account(conn, account))


def _equity_points(conn: Connection, account_row: Any) -> list[dict[str, Any]]:
    """The points of :func:`equity_curve`, in Decimal, from the epoch's equity marks (the last at each time),
    after a point at the epoch's start; a ledger without marks (made before they existed) from its fills."""
    start = conn.execute(_epoch_start_stmt(account_row)).one()
    marks = conn.execute(_marks_stmt(account_row)).all()
    if not marks:
        return _fill_points(conn, account_row, start)
    flows = conn.execute(_flows_stmt(account_row)).all()
    last_per_time: dict[datetime, Any] = {}
    for mark in marks:
        last_per_time[mark.at] = mark  # ordered by id: the later mark at one time wins
    points = [_point(start.at, start.amount_e6, Decimal(0), start.amount_e6, Decimal(0))]
    for at, mark in last_per_time.items():
        deposited = sum((flow.amount_e6 for flow in flows if flow.at <= at), Decimal(0))
        points.append(_point(at, mark.cash_e6, mark.long_value_e6 + mark.short_value_e6, mark.equity_e6, deposited))
    return points


def equity_chart_points(
    source: Source, account: str, window: timedelta | None, max_points: int,
    *, since: datetime | None = None, until: datetime | None = None,
) -> list[dict[str, Any]]:
    """The points of :func:`equity_points` over the last ``window`` before the newest mark (None: the whole
    epoch), or between ``since`` and ``until`` (UTC, inclusive; either may be None) when one is given, at most
    about ``max_points`` of them, for a chart: every mark of the range when it holds no more (so a zoomed-in
    range is at full resolution), else the mark in force at ``max_points`` evenly spaced times.

    Reads a bounded number of rows however long the history (index seeks, no scan of the marks). A ledger
    without marks (made before they existed) gets one point per UTC day from its fills, each symbol valued at
    that day's last fill price (a scan of the epoch's fills, grouped in SQL).
    """
    with _reading(source) as conn:
        account_row = _account(conn, account)
        start = conn.execute(_epoch_start_stmt(account_row)).one()
        flows = conn.execute(_flows_stmt(account_row)).all()
        explicit = since is not None or until is not None
        newest = last_equity_mark_at(conn, account_row.id, account_row.epoch)
        if newest is None:
            points = _daily_fill_points(conn, account_row, start, flows)
            if not explicit:
                since = None if window is None else points[-1]["timestamp"] - window
            chosen = [point for point in points if (since is None or point["timestamp"] >= since)
                      and (until is None or point["timestamp"] <= until)]
            return chosen or ([] if explicit else points[-1:])
        last = newest if until is None else last_equity_mark_at(conn, account_row.id, account_row.epoch, until)
        if last is None:  # no mark at or before ``until``
            return []
        if not explicit:
            since = None if window is None else last - window
        marks = conn.execute(
            equity_marks_from_stmt(account_row.id, account_row.epoch, since, max_points + 1, until)).all()
        if len(marks) > max_points:
            first = marks[0].at
            step = (last - first) / (max_points - 1)
            ticks = [first + step * index for index in range(max_points - 1)] + [last]
            marks = conn.execute(equity_marks_sampled_stmt(account_row.id, account_row.epoch, ticks)).all()
    flow_times = [flow.at for flow in flows]
    deposited_after = [Decimal(0)]
    for flow in flows:
        deposited_after.append(deposited_after[-1] + flow.amount_e6)
    last_per_time: dict[datetime, Any] = {}
    for mark in marks:
        last_per_time[mark.at] = mark  # ordered by time then id: the later mark at one time wins
    before_range = since is not None and start.at < since
    points = [] if before_range or (until is not None and start.at > until) else [
        _point(start.at, start.amount_e6, Decimal(0), start.amount_e6, Decimal(0))]
    for at, mark in last_per_time.items():
        deposited = deposited_after[bisect_right(flow_times, at)]
        points.append(_point(at, mark.cash_e6, mark.long_value_e6 + mark.short_value_e6, mark.equity_e6, deposited))
    return points


def _daily_fill_points(conn: Connection, account_row: Any, start: Any, flows: Sequence[Any]) -> list[dict[str, Any]]:
    """One point at the epoch's start, then one at each UTC day's last fill (positions valued at each symbol's
    last fill price up to then), deposits and withdrawals counted on the day they happen."""
    days = conn.execute(daily_closes_stmt(account_row.id, account_row.epoch)).all()
    cash: Decimal = start.amount_e6
    deposited = Decimal(0)
    held: dict[str, Decimal] = {}
    last_price: dict[str, Decimal] = {}
    points = [_equity_point(start.at, cash, held, last_price, deposited)]
    pending = list(flows)
    index = 0
    while index < len(days):
        day, at = days[index].day, days[index].last_filled_at
        while index < len(days) and days[index].day == day:
            row = days[index]
            cash += row.net_cash
            held[row.symbol] = held.get(row.symbol, Decimal(0)) + row.signed_qty
            last_price[row.symbol] = row.last_price_e6
            at = max(at, row.last_filled_at)
            index += 1
        while pending and pending[0].at <= at:
            cash += pending[0].amount_e6
            deposited += pending[0].amount_e6
            pending.pop(0)
        points.append(_equity_point(at, cash, held, last_price, deposited))
    for flow in pending:
        cash += flow.amount_e6
        deposited += flow.amount_e6
        points.append(_equity_point(flow.at, cash, held, last_price, deposited))
    return points


def _point(at: datetime, cash: Decimal, positions_value: Decimal, equity: Decimal, net_deposits: Decimal) -> dict[str, Any]:
    return {"timestamp": at, "cash": cash, "positions_value": positions_value, "equity": equity,
            "net_deposits": net_deposits}


def _marks_stmt(account: Any) -> Select[Any]:
    """The current epoch's equity marks, in time order (ties in the order they were written)."""
    return (
        select(equity_marks.c.at, equity_marks.c.cash_e6, equity_marks.c.long_value_e6,
               equity_marks.c.short_value_e6, equity_marks.c.equity_e6)
        .where(equity_marks.c.account_id == account.id, equity_marks.c.epoch == account.epoch)
        .order_by(equity_marks.c.at, equity_marks.c.id)
    )


def _fill_points(conn: Connection, account_row: Any, start: Any) -> list[dict[str, Any]]:
    """Equity points from the fills alone (each symbol valued at its last fill price), for ledgers without marks:
    one at the epoch's start, then one per distinct time of a fill, deposit or withdrawal."""
    fills = conn.execute(fills_stmt(account_row.id)).all()
    flows = conn.execute(_flows_stmt(account_row)).all()
    events = sorted([(fill.filled_at, 0, index) for index, fill in enumerate(fills)]
                    + [(flow.at, 1, index) for index, flow in enumerate(flows)])
    cash: Decimal = start.amount_e6
    deposited = Decimal(0)
    held: dict[str, Decimal] = {}
    last_price: dict[str, Decimal] = {}
    points = [_equity_point(start.at, cash, held, last_price, deposited)]
    for position, (at, kind, index) in enumerate(events):
        if kind == 1:
            cash += flows[index].amount_e6
            deposited += flows[index].amount_e6
        else:
            fill = fills[index]
            signed_qty = fill.qty_e6 if fill.side == SIDE_BUY else -fill.qty_e6
            cash += -(fill.notional_e6 + fill.fee_e6) if fill.side == SIDE_BUY else fill.notional_e6 - fill.fee_e6
            held[fill.symbol] = held.get(fill.symbol, Decimal(0)) + signed_qty
            last_price[fill.symbol] = fill.price_e6
        if position + 1 == len(events) or events[position + 1][0] != at:
            points.append(_equity_point(at, cash, held, last_price, deposited))
    return points


def _flows_stmt(account: Any) -> Select[Any]:
    """The current epoch's deposits and withdrawals, in order."""
    return (
        select(cash_movements.c.at, cash_movements.c.amount_e6)
        .where(
            cash_movements.c.account_id == account.id,
            cash_movements.c.epoch == account.epoch,
            cash_flow(),
        )
        # "+ 0": sort the few flows the partial index finds; ordered by id, SQLite's planner (no statistics)
        # walks every cash movement of the account in id order instead (0.23 s on 900k fills).
        .order_by(cash_movements.c.id + 0)
    )


def _equity_point(
    at: datetime, cash: Decimal, held: dict[str, Decimal], price: dict[str, Decimal], net_deposits: Decimal
) -> dict[str, Any]:
    positions_value = sum((qty * price[symbol] for symbol, qty in held.items()), Decimal(0))
    equity = cash + positions_value
    return {"timestamp": at, "cash": cash, "positions_value": positions_value, "equity": equity,
            "net_deposits": net_deposits}


def _epoch_start_stmt(account: Any) -> Select[Any]:
    """The deposit that opened the account's current epoch (its time and amount)."""
    return (
        select(cash_movements.c.at, cash_movements.c.amount_e6)
        .where(
            cash_movements.c.account_id == account.id,
            cash_movements.c.epoch == account.epoch,
            cash_movements.c.kind == "initial",
        )
        .order_by(cash_movements.c.id)
        .limit(1)
    )


@contextmanager
def _reading(source: Source) -> Iterator[Connection]:
    """A connection inside one read transaction (the caller's own, when it already has one open)."""
    if isinstance(source, Connection):
        if source.in_transaction():
            yield source
        else:
            with read_transaction(source):
                yield source
        return
    engine = source if isinstance(source, Engine) else get_engine(resolve_db_url(source))
    with translate_db_errors(engine), engine.connect() as conn, read_transaction(conn):
        yield conn


def _account(conn: Connection, name: str) -> Any:
    """The account's id and current epoch, read in the caller's transaction."""
    row = None
    if isinstance(name, str):
        stmt = select(accounts.c.id, accounts.c.epoch).where(accounts.c.name == name)
        row = conn.execute(stmt).one_or_none()
    if row is None:
        raise LedgerError(f"no account named {name!r}"[:200])
    return row


def _frame(rows: Sequence[Any], columns: Sequence[tuple[str, str, str]]) -> pd.DataFrame:
    """Rows (objects or dicts) as a frame with the fixed dtype of each column's kind."""

    def values(attribute: str) -> list[Any]:
        return [row[attribute] if isinstance(row, dict) else getattr(row, attribute) for row in rows]

    return pd.DataFrame({name: _column(values(attribute), kind) for name, attribute, kind in columns})


def _column(values: list[Any], kind: str) -> Any:
    if kind == "amount":
        return np.array([np.nan if value is None else float(value) for value in values], dtype="float64")
    if kind == "time":
        return pd.DatetimeIndex(values, dtype=TIME_DTYPE)
    if kind == "category":
        return pd.Categorical(values)
    if kind == "string":
        return pd.array(values, dtype="string")
    if kind == "int":
        return np.array(values, dtype="int64")
    raise AssertionError(f"unknown column kind {kind!r}")
