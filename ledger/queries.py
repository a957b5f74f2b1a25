"""The read-side select() statements, written once and shared by the broker, reports, export and the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Connection, Select, and_, column, func, literal_column, select, table, type_coerce, values,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from ledger.book.margin import Margin, margin_figures, position_value
from ledger.book.store import accounts, cash_movements, fills, order_events, orders, positions, quotes
from ledger.constants import FLOW_KINDS, OPEN_STATUSES
from ledger.db.models import DailyTotal, EquityMark
from ledger.db.types import UTCDateTime

# The audit view of daily P&L (migration 0002); views are not in the models' metadata.
v_daily_pnl = table(
    "v_daily_pnl",
    *(column(name) for name in (
        "account_id", "account", "epoch", "is_current_epoch", "day", "symbol", "fill_count", "bought_qty",
        "sold_qty", "bought_notional", "sold_notional", "fees", "realized_pnl", "net_cash",
    )),
)
# The audit view of runs (one per trading session), with each run's order and fill counts.
RUN_COLUMNS = (
    "run_id", "started_at", "ended_at", "slippage_bps", "fee_bps", "host", "pid", "order_count", "fill_count",
)
v_runs = table("v_runs", column("account_id"), *(column(name) for name in RUN_COLUMNS))


def runs_stmt(account_id: int) -> Select[Any]:
    """The account's runs (every epoch) from the ``v_runs`` audit view, oldest first."""
    return (
        select(*(v_runs.c[name] for name in RUN_COLUMNS))
        .where(v_runs.c.account_id == account_id)
        .order_by(v_runs.c.started_at, v_runs.c.run_id)
    )


def account_row(conn: Connection, account_id: int) -> Any:
    return conn.execute(select(accounts).where(accounts.c.id == account_id)).one()


def positions_stmt(account_id: int, *, include_flat: bool = False) -> Select[Any]:
    """The current epoch's positions with their last quote (NULL bid/ask when none is stored)."""
    stmt = (
        select(
            positions.c.symbol,
            positions.c.qty_e6,
            positions.c.reserved_qty_e6,
            positions.c.cost_basis_e6,
            positions.c.realized_pnl_e6,
            quotes.c.bid_e6,
            quotes.c.ask_e6,
        )
        .select_from(
            positions.join(accounts, and_(accounts.c.id == positions.c.account_id, accounts.c.epoch == positions.c.epoch))
            .outerjoin(quotes, and_(quotes.c.account_id == positions.c.account_id, quotes.c.symbol == positions.c.symbol))
        )
        .where(positions.c.account_id == account_id)
        .order_by(positions.c.symbol)
    )
    return stmt if include_flat else stmt.where(positions.c.qty_e6 != 0)


def position_rows(conn: Connection, account_id: int, *, include_flat: bool = False) -> list[Any]:
    return list(conn.execute(positions_stmt(account_id, include_flat=include_flat)))


def mark_price(bid: Decimal | None, ask: Decimal | None) -> Decimal | None:
    """Mid of the last quote, used to value positions; None without a quote."""
    if bid is None or ask is None:
        return None
    return (bid + ask) / 2


def portfolio_value(conn: Connection, account_id: int, account: Any = None, held: list[Any] | None = None) -> Decimal:
    """Cash plus positions at the mid of their last quote (at cost basis when no quote is stored); shorts count
    negative.

    ``account`` (``account_row``) and ``held`` (``position_rows``) already read in this transaction are used
    instead of reading them again."""
    value = (account or account_row(conn, account_id)).cash_e6
    for row in held if held is not None else position_rows(conn, account_id):
        value += position_value(row.qty_e6, row.cost_basis_e6, mark_price(row.bid_e6, row.ask_e6))
    return value


def account_margin(conn: Connection, account_id: int) -> Margin:
    """The account's equity, long and short value, buying power, initial and maintenance margin and maintenance
    shortfall (ledger.book.margin), from its stored cash, reservations and positions."""
    row = account_row(conn, account_id)
    values = [
        position_value(p.qty_e6, p.cost_basis_e6, mark_price(p.bid_e6, p.ask_e6)) for p in position_rows(conn, account_id)
    ]
    return margin_figures(row.cash_e6, row.reserved_cash_e6, row.max_margin_multiplier_e6, values)


def net_deposits(conn: Connection, account_id: int) -> Decimal:
    """Deposits minus withdrawals of the account's current epoch."""
    total = conn.execute(
        select(func.sum(cash_movements.c.amount_e6, type_=cash_movements.c.amount_e6.type)).where(
            cash_movements.c.account_id == account_id,
            cash_movements.c.epoch == _current_epoch(account_id),
            cash_flow(),
        )
    ).scalar_one()
    return Decimal(0) if total is None else total


def capital(conn: Connection, account_id: int) -> Decimal:
    """What the epoch's return is measured against: its initial cash plus net deposits."""
    return account_row(conn, account_id).initial_cash_e6 + net_deposits(conn, account_id)


def total_return(equity: Decimal, capital: Decimal) -> Decimal | None:
    """equity / (initial cash + net deposits) - 1; None when no capital was put in."""
    return equity / capital - 1 if capital > 0 else None


# What the readers of fills show (records, frames, CLI, dashboard pages): not ``account_id`` (the filter)
# nor the order's internal key. Each column costs the sqlite3 driver ~4 ms per 27,000 rows (issue 12).
_SHOWN_FILL_COLUMNS = tuple(column for column in fills.c if column.name not in ("account_id", "order_id"))


def fills_stmt(
    account_id: int,
    *,
    since: datetime | None = None,
    symbol: str | None = None,
    current_epoch_only: bool = True,
) -> Select[Any]:
    """Fills with their public order id, oldest first, filtered in SQL."""
    stmt = (
        select(*_SHOWN_FILL_COLUMNS, orders.c.order_id.label("order_id"))
        .select_from(fills.join(orders, orders.c.id == fills.c.order_id))
        .where(fills.c.account_id == account_id)
        .order_by(fills.c.filled_at, fills.c.id)
    )
    if current_epoch_only:
        stmt = stmt.where(fills.c.epoch == _current_epoch(account_id))
    if since is not None:
        stmt = stmt.where(fills.c.filled_at >= since)
    if symbol is not None:
        stmt = stmt.where(fills.c.symbol == symbol)
    return stmt


# Built once: aliasing a table proxies each of its columns, which costs milliseconds per statement otherwise.
_predecessor = orders.alias("predecessor")
_successor = orders.alias("successor")


def orders_stmt(account_id: int, *, status: str | None = None, current_epoch_only: bool = True) -> Select[Any]:
    """The account's orders, oldest first, with the public ids of the orders each ``replaces`` / was
    ``replaced_by``. ``status``: one status, or ``open`` (new, partially_filled) or ``closed`` (the others)."""
    stmt = (
        select(orders, _predecessor.c.order_id.label("replaces"), _successor.c.order_id.label("replaced_by"))
        .outerjoin(_predecessor, _predecessor.c.id == orders.c.replaces_id)
        .outerjoin(_successor, _successor.c.id == orders.c.replaced_by_id)
        .where(orders.c.account_id == account_id)
        .order_by(orders.c.id)
    )
    if current_epoch_only:
        stmt = stmt.where(orders.c.epoch == _current_epoch(account_id))
    if status == "open":
        stmt = stmt.where(open_order())
    elif status == "closed":
        stmt = stmt.where(orders.c.status.not_in(OPEN_STATUSES))
    elif status is not None:
        stmt = stmt.where(orders.c.status == status)
    return stmt


def order_stmt(account_id: int, order_id: str) -> Select[Any]:
    """One order of the account (any epoch) by its public id, as ``orders_stmt`` shows it."""
    return orders_stmt(account_id, current_epoch_only=False).where(orders.c.order_id == order_id)


def orders_with_fill_price_stmt(account_id: int, *, status: str | None = None) -> Select[Any]:
    """``orders_stmt`` plus each order's filled notional and quantity summed over its fills (NULL when unfilled):
    their ratio is the average fill price."""
    filled = (
        select(
            fills.c.order_id.label("order_pk"),
            func.sum(fills.c.notional_e6).label("filled_notional_e6"),
            func.sum(fills.c.qty_e6).label("fills_qty_e6"),
        )
        .group_by(fills.c.order_id)
        .subquery()
    )
    return (
        orders_stmt(account_id, status=status)
        .outerjoin(filled, filled.c.order_pk == orders.c.id)
        .add_columns(filled.c.filled_notional_e6, filled.c.fills_qty_e6)
    )


def accounts_stmt() -> Select[Any]:
    return select(accounts).order_by(accounts.c.name)


def quotes_stmt(account_id: int) -> Select[Any]:
    """The account's stored quotes (the last one per symbol), by symbol."""
    return select(quotes).where(quotes.c.account_id == account_id).order_by(quotes.c.symbol)


def activity_stmt(account_id: int) -> Select[Any]:
    """The current epoch's cash movements in time order; a fill's movement carries the fill's details.

    ``amount_e6`` is signed (what the movement did to cash); summed in order it gives the balance after each.
    """
    return (
        select(
            cash_movements.c.at,
            cash_movements.c.kind,
            cash_movements.c.amount_e6,
            fills.c.symbol,
            fills.c.side,
            fills.c.qty_e6,
            fills.c.price_e6,
            fills.c.fee_e6,
            orders.c.order_id,
        )
        .select_from(
            cash_movements.outerjoin(fills, fills.c.id == cash_movements.c.fill_id)
            .outerjoin(orders, orders.c.id == fills.c.order_id)
        )
        .where(cash_movements.c.account_id == account_id, cash_movements.c.epoch == _current_epoch(account_id))
        .order_by(cash_movements.c.at, cash_movements.c.id)
    )


def quote_row(conn: Connection, account_id: int, symbol: str) -> Any:
    return conn.execute(
        select(quotes).where(quotes.c.account_id == account_id, quotes.c.symbol == symbol)
    ).one_or_none()


def stream(conn: Connection, stmt: Select[Any], batch: int = 1000) -> Iterator[Any]:
    """Rows of a large query in batches, without loading them all (server-side cursor where supported)."""
    # Options on the statement, not the connection: Connection.execution_options() would change it for good.
    result = conn.execute(stmt.execution_options(yield_per=batch))
    for partition in result.partitions():
        yield from partition


def open_order() -> Any:
    """``status IN ('new', 'partially_filled')`` in the words of the partial open-order indexes' condition, so
    the planner can use them (see ledger.db.models.OPEN_ORDER_CONDITION)."""
    return orders.c.status.in_([literal_column(f"'{status}'") for status in OPEN_STATUSES])


def cash_flow() -> Any:
    """``kind IN ('deposit', 'withdrawal')``, in the words of the partial flow index's condition."""
    return cash_movements.c.kind.in_([literal_column(f"'{kind}'") for kind in FLOW_KINDS])


def _current_epoch(account_id: int) -> Any:
    return select(accounts.c.epoch).where(accounts.c.id == account_id).scalar_subquery()


def symbol_totals_stmt(account_id: int) -> Select[Any]:
    """Per-symbol totals of the account's current epoch: fills, bought and sold quantity, traded notional, fees,
    realized P&L. Every fill keeps them in its position's row, so this reads one row per symbol, not the fills."""
    return (
        select(
            positions.c.symbol,
            positions.c.fill_count,
            positions.c.bought_qty_e6,
            positions.c.sold_qty_e6,
            type_coerce(positions.c.bought_notional_e6 + positions.c.sold_notional_e6, positions.c.fees_e6.type)
            .label("notional_e6"),
            positions.c.fees_e6.label("fee_e6"),
            positions.c.realized_pnl_e6,
        )
        .where(positions.c.account_id == account_id, positions.c.epoch == _current_epoch(account_id),
               positions.c.fill_count > 0)
        .order_by(positions.c.symbol)
    )


def daily_pnl_stmt(account_id: int) -> Select[Any]:
    """The account's daily P&L per symbol (current epoch) from the ``v_daily_pnl`` audit view, in human units."""
    return (
        select(v_daily_pnl)
        .where(v_daily_pnl.c.account_id == account_id, v_daily_pnl.c.epoch == _current_epoch(account_id))
        .order_by(v_daily_pnl.c.day, v_daily_pnl.c.symbol)
    )


def activities_stmt(account_id: int) -> Select[Any]:
    """The current epoch's cash movements in id order (= time order: the account's clock never goes back),
    a fill's movement with its fill, the order's public id, status and quantity, and the order's filled quantity
    up to and including this fill (``cum_qty_e6``)."""
    earlier = fills.alias("earlier")
    cum_qty = (
        select(func.sum(earlier.c.qty_e6, type_=fills.c.qty_e6.type))
        .where(earlier.c.order_id == fills.c.order_id, earlier.c.id <= fills.c.id)
        .scalar_subquery()
    )
    return (
        select(
            cash_movements.c.id.label("movement_id"),
            cash_movements.c.kind,
            cash_movements.c.amount_e6,
            cash_movements.c.at,
            fills.c.symbol,
            fills.c.side,
            fills.c.qty_e6,
            fills.c.price_e6,
            orders.c.order_id,
            orders.c.status.label("order_status"),
            orders.c.qty_e6.label("order_qty_e6"),
            cum_qty.label("cum_qty_e6"),
        )
        .select_from(
            cash_movements.outerjoin(fills, fills.c.id == cash_movements.c.fill_id)
            .outerjoin(orders, orders.c.id == fills.c.order_id)
        )
        .where(cash_movements.c.account_id == account_id, cash_movements.c.epoch == _current_epoch(account_id))
    )


def known_symbols(conn: Connection, account_id: int) -> list[str]:
    """Every symbol the ledger knows for the account: its quotes, its orders, and the bar cache."""
    from ledger.db.models import Bar

    names: set[str] = set()
    for stmt in (
        select(quotes.c.symbol).where(quotes.c.account_id == account_id).distinct(),
        select(orders.c.symbol).where(orders.c.account_id == account_id, orders.c.status != "rejected").distinct(),
        select(Bar.__table__.c.symbol).distinct(),
    ):
        names.update(conn.execute(stmt).scalars())
    return sorted(names)


equity_marks = EquityMark.__table__


def equity_marks_stmt(account_id: int, since: datetime, until: datetime) -> Select[Any]:
    """The account's equity marks of the current epoch in [since, until), oldest first (equity in millionths)."""
    return (
        select(equity_marks.c.at, equity_marks.c.equity_e6)
        .where(equity_marks.c.account_id == account_id, equity_marks.c.epoch == _current_epoch(account_id),
               equity_marks.c.at >= since, equity_marks.c.at < until)
        .order_by(equity_marks.c.at)
    )


# -- the dashboard's pages (ledger.web): filtered, paged listings and the reads behind them -------------------
def held_positions_stmt(account_id: int) -> Select[Any]:
    """The current epoch's open positions, long (qty > 0) and short (qty < 0), with their last quote."""
    return positions_stmt(account_id, include_flat=True).where(positions.c.qty_e6 != 0)


def fills_page_stmt(
    account_id: int,
    *,
    symbol: str | None = None,
    side: str | None = None,
    run_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> Select[Any]:
    """One page of the current epoch's fills, newest first (``fills_stmt``'s columns): those with an
    ``id`` below ``before_id`` (the last row of the previous page), ``since`` inclusive, ``until`` exclusive.

    Fill ids grow with broker time on an account (its clock never goes back), so paging by id is paging by time.
    """
    stmt = (
        fills_stmt(account_id, since=since, symbol=symbol)
        .order_by(None).order_by(fills.c.filled_at.desc(), fills.c.id.desc()).limit(limit)  # the (account, time) index
    )
    if side is not None:
        stmt = stmt.where(fills.c.side == side)
    if run_id is not None:
        stmt = stmt.where(fills.c.run_id == run_id)
    if until is not None:
        stmt = stmt.where(fills.c.filled_at < until)
    if before_id is not None:
        stmt = stmt.where(fills.c.id < before_id)
    return stmt


def orders_page_stmt(
    account_id: int,
    *,
    symbol: str | None = None,
    side: str | None = None,
    status: str | None = None,
    run_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> Select[Any]:
    """One page of the current epoch's orders, newest first (``orders_stmt``'s columns; ``filled_avg_price_e6`` is
    the average fill price), submitted in [since, until), with an ``id`` below ``before_id``; ``status`` as in
    ``orders_stmt``."""
    # Open orders are few: found through the (account, epoch, status) index and sorted. "id + 0" keeps SQLite's
    # planner (no statistics) from walking every order of the epoch newest first through the id index instead.
    newest_first = (orders.c.id + 0 if status == "open" else orders.c.id).desc()
    stmt = orders_stmt(account_id, status=status).order_by(None).order_by(newest_first).limit(limit)
    if symbol is not None:
        stmt = stmt.where(orders.c.symbol == symbol)
    if side is not None:
        stmt = stmt.where(orders.c.side == side)
    if run_id is not None:
        stmt = stmt.where(orders.c.run_id == run_id)
    if since is not None:
        stmt = stmt.where(orders.c.submitted_at >= since)
    if until is not None:
        stmt = stmt.where(orders.c.submitted_at < until)
    if before_id is not None:
        stmt = stmt.where(orders.c.id < before_id)
    return stmt


def order_events_stmt(order_pk: int) -> Select[Any]:
    """Every ``order_events`` row of one order (by its integer key), oldest first."""
    return (
        select(order_events.c.id, order_events.c.at, order_events.c.from_status, order_events.c.to_status,
               order_events.c.reason)
        .where(order_events.c.order_id == order_pk)
        .order_by(order_events.c.id)
    )


def order_fills_stmt(order_pk: int) -> Select[Any]:
    """The fills of one order (by its integer key), oldest first."""
    return select(fills).where(fills.c.order_id == order_pk).order_by(fills.c.id)


def ledger_version(conn: Connection, account_id: int) -> str:
    """A token that changes whenever the account's ledger rows do, read with a few index seeks (the dashboard's
    live pages poll it): an order placed (the newest order id), opened or closed (the open-order count), a fill,
    deposit or reservation (cash, reserved cash), a quote (the account's clock), a reset (the epoch)."""
    row = account_row(conn, account_id)
    newest_order = conn.execute(
        select(orders.c.id).where(orders.c.account_id == account_id, orders.c.epoch == row.epoch)
        .order_by(orders.c.id.desc()).limit(1)
    ).scalar_one_or_none()
    return ":".join(str(part) for part in (
        row.epoch, newest_order or 0, open_order_count(conn, account_id), row.cash_e6, row.reserved_cash_e6,
        row.clock_at.isoformat(),
    ))


def open_order_count(conn: Connection, account_id: int) -> int:
    """How many of the current epoch's orders are open (new or partially filled)."""
    return int(conn.execute(
        select(func.count()).select_from(orders).where(
            orders.c.account_id == account_id, orders.c.epoch == _current_epoch(account_id),
            open_order(),
        )
    ).scalar_one())


def active_key_owner(conn: Connection, key_id: str) -> Any:
    """The API key ``key_id`` while it is not revoked (``is_admin``, and its account's ``id`` and ``name``, NULL
    for an admin key), else None."""
    from ledger.db.models import ApiKey

    api_keys = ApiKey.__table__
    return conn.execute(
        select(api_keys.c.is_admin, accounts.c.id, accounts.c.name)
        .select_from(api_keys.outerjoin(accounts, accounts.c.id == api_keys.c.account_id))
        .where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
    ).one_or_none()


def account_id_by_name(conn: Connection, name: str) -> int | None:
    found = conn.execute(select(accounts.c.id).where(accounts.c.name == name)).scalar_one_or_none()
    return None if found is None else int(found)


def position_figures(row: Any) -> dict[str, Any]:
    """A ``positions_stmt`` row's figures, exact: qty, reserved_qty, avg_cost (cost basis / qty, buy fees
    included), cost_basis, last_price (the mid the broker values it at; None without a quote), market_value,
    unrealized_pnl (market value - cost basis) and realized_pnl."""
    last_price = mark_price(row.bid_e6, row.ask_e6)
    market_value = None if last_price is None else row.qty_e6 * last_price
    return {
        "symbol": row.symbol,
        "qty": row.qty_e6,
        "reserved_qty": row.reserved_qty_e6,
        "avg_cost": row.cost_basis_e6 / row.qty_e6 if row.qty_e6 else None,
        "cost_basis": row.cost_basis_e6,
        "last_price": last_price,
        "market_value": market_value,
        "unrealized_pnl": None if market_value is None else market_value - row.cost_basis_e6,
        "realized_pnl": row.realized_pnl_e6,
    }


# -- bounded series for the dashboard's charts and daily table (pages over 1M fills render in well under 1 s) --
class utc_day_end(FunctionElement[Any]):  # noqa: N801 - reads as the SQL function it renders
    """The first instant after a UTC day (a ``daily_totals.day``), comparable with stored times: the next day's
    'YYYY-MM-DD' text on SQLite (it sorts after every time of the day), its midnight UTC on PostgreSQL."""

    type = UTCDateTime()
    inherit_cache = True


@compiles(utc_day_end, "sqlite")
def _utc_day_end_sqlite(element: utc_day_end, compiler: Any, **kw: Any) -> str:
    return f"date({compiler.process(element.clauses, **kw)}, '+1 day')"


@compiles(utc_day_end, "postgresql")
def _utc_day_end_postgresql(element: utc_day_end, compiler: Any, **kw: Any) -> str:
    return f"((({compiler.process(element.clauses, **kw)}) + 1)::timestamp AT TIME ZONE 'UTC')"


def _mark_columns() -> tuple[Any, ...]:
    return (equity_marks.c.id, equity_marks.c.at, equity_marks.c.cash_e6, equity_marks.c.long_value_e6,
            equity_marks.c.short_value_e6, equity_marks.c.equity_e6)


def last_equity_mark_at(conn: Connection, account_id: int, epoch: int, until: datetime | None = None) -> datetime | None:
    """The time of the epoch's newest equity mark (at or before ``until`` when given; None without one): one
    seek of its index."""
    stmt = (
        select(equity_marks.c.at)
        .where(equity_marks.c.account_id == account_id, equity_marks.c.epoch == epoch)
        .order_by(equity_marks.c.at.desc()).limit(1)
    )
    return conn.execute(stmt if until is None else stmt.where(equity_marks.c.at <= until)).scalar_one_or_none()


def equity_marks_from_stmt(
    account_id: int, epoch: int, since: datetime | None, limit: int, until: datetime | None = None
) -> Select[Any]:
    """The epoch's first ``limit`` equity marks at or after ``since`` (None: from the first) and at or before
    ``until`` (None: to the last), oldest first."""
    stmt = (
        select(*_mark_columns())
        .where(equity_marks.c.account_id == account_id, equity_marks.c.epoch == epoch)
        .order_by(equity_marks.c.at, equity_marks.c.id).limit(limit)
    )
    if since is not None:
        stmt = stmt.where(equity_marks.c.at >= since)
    return stmt if until is None else stmt.where(equity_marks.c.at <= until)


def equity_marks_sampled_stmt(account_id: int, epoch: int, ticks: list[datetime]) -> Select[Any]:
    """The epoch's equity mark in force at each of ``ticks`` (the last one at or before it), oldest first: one
    index seek per tick, however many marks lie between them."""
    tick = values(column("tick", UTCDateTime()), name="ticks").data([(at,) for at in ticks]).cte("ticks")
    in_force = (
        select(equity_marks.c.id)
        .where(equity_marks.c.account_id == account_id, equity_marks.c.epoch == epoch, equity_marks.c.at <= tick.c.tick)
        .order_by(equity_marks.c.at.desc(), equity_marks.c.id.desc()).limit(1)
        .scalar_subquery()
    )
    return (
        select(*_mark_columns())
        .where(equity_marks.c.id.in_(select(in_force).select_from(tick)))
        .order_by(equity_marks.c.at, equity_marks.c.id)
    )


def last_fill_at(conn: Connection, account_id: int) -> datetime | None:
    """The time of the account's newest fill (any epoch; None without fills): one seek of its index."""
    return conn.execute(
        select(fills.c.filled_at).where(fills.c.account_id == account_id)
        .order_by(fills.c.filled_at.desc()).limit(1)
    ).scalar_one_or_none()


def daily_totals_stmt(account_id: int, epoch: int, since: date | None = None) -> Select[Any]:
    """Per UTC day and symbol of the epoch's fills (from ``since``, a UTC day, when given), newest day first,
    exact (``v_daily_pnl``'s figures, in Decimal): fill_count, bought/sold qty and notional, fees, realized P&L
    and net cash. Reads the ``daily_totals`` rows every fill keeps, one per day and symbol."""
    totals = DailyTotal.__table__
    amount = totals.c.fees_e6.type
    stmt = (
        select(
            totals.c.day, totals.c.symbol, totals.c.fill_count,
            totals.c.bought_qty_e6.label("bought_qty"), totals.c.sold_qty_e6.label("sold_qty"),
            totals.c.bought_notional_e6.label("bought_notional"), totals.c.sold_notional_e6.label("sold_notional"),
            totals.c.fees_e6.label("fees"), totals.c.realized_pnl_e6.label("realized_pnl"),
            type_coerce(totals.c.sold_notional_e6 - totals.c.bought_notional_e6 - totals.c.fees_e6, amount)
            .label("net_cash"),
        )
        .where(totals.c.account_id == account_id, totals.c.epoch == epoch)
        .order_by(totals.c.day.desc(), totals.c.symbol)
    )
    return stmt if since is None else stmt.where(totals.c.day >= since)


def recent_daily_pnl(conn: Connection, account_id: int, days: int = 14) -> list[Any]:
    """The epoch's daily P&L per symbol over the ``days`` UTC days up to its newest fill, newest first: the
    dashboard's table (those days' ``daily_totals`` rows)."""
    last = last_fill_at(conn, account_id)
    if last is None:
        return []
    since = last.astimezone(UTC).date() - timedelta(days=days - 1)
    epoch = account_row(conn, account_id).epoch
    return conn.execute(daily_totals_stmt(account_id, epoch, since)).all()


def daily_closes_stmt(account_id: int, epoch: int) -> Select[Any]:
    """Per UTC day and symbol of the epoch's fills, oldest day first: ``net_cash``, ``signed_qty`` (bought -
    sold), and the day's last fill's ``last_price_e6`` and ``last_filled_at``.

    Reads the ``daily_totals`` rows (one per day and symbol, not per fill) and finds each one's last fill with one
    seek of the (account, symbol, time) index: bounded by the days traded, not by the fills."""
    totals = DailyTotal.__table__
    amount = totals.c.fees_e6.type
    last_fill = (
        select(fills.c.id)
        .where(fills.c.account_id == totals.c.account_id, fills.c.symbol == totals.c.symbol,
               fills.c.filled_at < utc_day_end(totals.c.day), fills.c.epoch == totals.c.epoch)
        .order_by(fills.c.filled_at.desc(), fills.c.id.desc()).limit(1)
        .scalar_subquery()
    )
    daily = (
        select(
            totals.c.day, totals.c.symbol,
            type_coerce(totals.c.sold_notional_e6 - totals.c.bought_notional_e6 - totals.c.fees_e6, amount)
            .label("net_cash"),
            type_coerce(totals.c.bought_qty_e6 - totals.c.sold_qty_e6, amount).label("signed_qty"),
            last_fill.label("last_fill_id"),
        )
        .where(totals.c.account_id == account_id, totals.c.epoch == epoch)
        .subquery()
    )
    return (
        select(daily.c.day, daily.c.symbol, type_coerce(daily.c.net_cash, amount).label("net_cash"),
               type_coerce(daily.c.signed_qty, amount).label("signed_qty"),
               fills.c.price_e6.label("last_price_e6"), fills.c.filled_at.label("last_filled_at"))
        .join(fills, fills.c.id == daily.c.last_fill_id)
        .order_by(daily.c.day, daily.c.symbol)
    )


def keyed_account_names(conn: Connection) -> list[str]:
    """Names of the accounts holding at least one API key that is not revoked (the service's clients), sorted."""
    from ledger.db.models import ApiKey

    api_keys = ApiKey.__table__
    return list(conn.execute(
        select(accounts.c.name).distinct()
        .select_from(api_keys.join(accounts, accounts.c.id == api_keys.c.account_id))
        .where(api_keys.c.revoked_at.is_(None))
        .order_by(accounts.c.name)
    ).scalars())
