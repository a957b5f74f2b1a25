"""The SQL the use cases run: precompiled statements on the driver cursor of the caller's transaction.

Nothing here opens or commits a transaction: the use case's caller owns it (``write_transaction`` in
``ledger.db.engine``: ``BEGIN IMMEDIATE`` on SQLite), and ``Store`` runs its statements on the raw DBAPI cursor
of that same SQLAlchemy connection. Going under SQLAlchemy's statement layer is deliberate: building,
caching and executing a Core statement costs 12-17 us of Python, several times the work SQLite does, and a
market order needs ten statements. The SQL text is written once, with the driver's placeholder style chosen
per dialect, so SQLite and PostgreSQL run the same code path.

Reads go to the database at once and are cached for the transaction (the account, each symbol's quote and
position). New rows are queued and written by ``flush()`` in one ``executemany`` per table, with keys
allocated up front (SQLite: the next rowids, under the write lock; PostgreSQL: the tables' sequences), so a
batch of orders costs a handful of statements, not a few per order. Values cross the boundary in the
ledger's storage forms: amounts as integer millionths (``ledger.money``, the same as ``ScaledDecimal``),
times as UTC (``UTCDateTime``'s text on SQLite, ``timestamptz`` on PostgreSQL). Driver errors are re-raised
as SQLAlchemy's ``DBAPIError`` family, so ``translate_db_errors`` and ``IntegrityError`` handling work as
for Core statements.

The Core ``Table`` objects are exported for the read side (``ledger.queries``) and the few cold paths that
stay in Core (creating accounts and runs).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from operator import itemgetter
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import Connection, Row, insert, select, update
from sqlalchemy.exc import DBAPIError

from ledger.constants import SIDE_BUY, STATUS_REJECTED
from ledger.db.models import OPEN_ORDER_CONDITION, Account, CashMovement, DailyTotal, Fill, Order, OrderEvent, Position, Quote, Run
from ledger.exceptions import ClockWentBackwardsError
from ledger.money import from_scaled, to_scaled

accounts = Account.__table__
runs = Run.__table__
orders = Order.__table__
order_events = OrderEvent.__table__
fills = Fill.__table__
positions = Position.__table__
daily_totals = DailyTotal.__table__
cash_movements = CashMovement.__table__
quotes = Quote.__table__

ZERO = Decimal(0)


@dataclass
class AccountState:
    """The account row as read under its lock; the use case edits it and the store saves it once."""

    id: int
    name: str
    epoch: int
    initial_cash: Decimal
    cash: Decimal
    reserved_cash: Decimal
    clock_at: datetime  # the latest broker time of any write on the account
    # Settings (changed by ``configure``, not by trading): see ledger.book.settings.
    shorting_enabled: bool = False
    max_margin_multiplier: Decimal = Decimal(1)
    fill_model: str = "full"
    calendar: str = "XNYS"
    equity_mark_interval_s: int = 60

    @property
    def available_cash(self) -> Decimal:
        return self.cash - self.reserved_cash


@dataclass
class PositionState:
    symbol: str
    qty: Decimal = ZERO
    reserved_qty: Decimal = ZERO
    cost_basis: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    # Totals of the position's fills (see ledger.book.fills.apply_fill), saved in its row.
    fill_count: int = 0
    bought_qty: Decimal = ZERO
    sold_qty: Decimal = ZERO
    bought_notional: Decimal = ZERO
    sold_notional: Decimal = ZERO
    fees: Decimal = ZERO

    @property
    def available_qty(self) -> Decimal:
        return self.qty - self.reserved_qty


class QuoteSnapshot(NamedTuple):
    """The quote a fill was priced from (recorded on the fill for audit). A named tuple: a batch of quotes makes
    one per symbol, and a tuple is several times cheaper to build than a frozen dataclass."""

    bid: Decimal
    ask: Decimal
    quoted_at: datetime
    bid_size: Decimal = ZERO  # displayed sizes; 0 means unknown
    ask_size: Decimal = ZERO
    bid_taken: Decimal = ZERO  # how much of them fills have taken already
    ask_taken: Decimal = ZERO


# -- storage forms --------------------------------------------------------------------------------------------
def _sqlite_time_in(moment: datetime) -> str:
    # The text form SQLAlchemy's SQLite DateTime reads and writes (UTCDateTime stores UTC in it).
    if moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment!r}: the ledger stores UTC-aware datetimes only")
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _sqlite_time_out(text: str) -> datetime:
    return datetime.fromisoformat(text + "+00:00")  # tzinfo UTC, faster than parsing then replace(tzinfo=UTC)


def _pg_time_in(moment: datetime) -> datetime:
    if moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment!r}: the ledger stores UTC-aware datetimes only")
    return moment


def _pg_time_out(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def _sqlite_day_of(stored: str) -> str:
    return stored[:10]  # the UTC day of a stored time, as Date stores it: 'YYYY-MM-DD'


def _pg_day_of(stored: datetime) -> date:
    return stored.astimezone(UTC).date()


_TIME_COLUMNS = frozenset({
    "submitted_at", "updated_at", "at", "quote_at", "filled_at", "quoted_at", "expires_at", "triggered_at",
    "canceled_at", "expired_at", "replaced_at",
})


class _Table:
    """One table's column list, INSERT statement and row encoding for the raw driver."""

    def __init__(self, name: str, columns: Sequence[str], mark: str):
        self.columns = tuple(columns)
        self.insert = f"INSERT INTO {name} ({', '.join(self.columns)}) VALUES ({', '.join([mark] * len(self.columns))})"
        self.values_of = itemgetter(*self.columns)  # a queued row dict -> its values in column order
        self.amount_indexes = [i for i, column in enumerate(self.columns) if column.endswith("_e6")]
        self.time_indexes = [i for i, column in enumerate(self.columns) if column in _TIME_COLUMNS]

    def decoders(self, time_out: Callable[[Any], datetime]) -> list[tuple[str, Callable[[Any], Any] | None]]:
        return [(column, _decoder(column, time_out)) for column in self.columns]


def _decoder(column: str, time_out: Callable[[Any], datetime]) -> Callable[[Any], Any] | None:
    if column.endswith("_e6"):
        return from_scaled
    if column in _TIME_COLUMNS:
        return time_out
    return None


# The account row as AccountState reads it, in its field order.
_ACCOUNT_STATE_COLUMNS = (
    "id", "name", "epoch", "initial_cash_e6", "cash_e6", "reserved_cash_e6", "clock_at", "shorting_enabled",
    "max_margin_multiplier_e6", "fill_model", "calendar", "equity_mark_interval_s",
)
# Column lists come from the models, so the raw statements follow the schema. Orders and fills get their keys
# up front (see Store.reserve_keys); events and cash movements take the database's.
_ORDER_COLUMNS = tuple(orders.c.keys())
_FILL_COLUMNS = tuple(fills.c.keys())
_EVENT_COLUMNS = tuple(name for name in order_events.c.keys() if name != "id")
_CASH_COLUMNS = tuple(name for name in cash_movements.c.keys() if name != "id")
# A position as PositionState holds it (after its key), and the totals each fill adds to its day's row.
_POSITION_COLUMNS = (
    "qty_e6", "reserved_qty_e6", "cost_basis_e6", "realized_pnl_e6", "fill_count", "bought_qty_e6", "sold_qty_e6",
    "bought_notional_e6", "sold_notional_e6", "fees_e6",
)
_DAILY_TOTALS = (
    "fill_count", "bought_qty_e6", "sold_qty_e6", "bought_notional_e6", "sold_notional_e6", "fees_e6",
    "realized_pnl_e6",
)
# What a use case may change on an existing order (everything else is fixed when the order is placed).
_ORDER_UPDATE_COLUMNS = (
    "status", "filled_qty_e6", "filled_avg_price_e6", "reserved_cash_e6", "reserved_qty_e6", "stop_price_e6",
    "hwm_e6", "triggered_at", "filled_at", "canceled_at", "expired_at", "replaced_at", "replaced_by_id",
    "updated_at",
)


def order_columns() -> tuple[str, ...]:
    """Every column of an ``orders`` row, in the models' order (a new order's dict has each of them)."""
    return _ORDER_COLUMNS


class _Dialect:
    """The ledger's statements in one driver's placeholder style, and its time conversions."""

    def __init__(self, name: str):
        pg = name == "postgresql"
        mark = "%s" if pg else "?"
        self.time_in: Callable[[datetime], Any] = _pg_time_in if pg else _sqlite_time_in
        self.time_out: Callable[[Any], datetime] = _pg_time_out if pg else _sqlite_time_out
        self.orders = _Table("orders", _ORDER_COLUMNS, mark)
        self.order_updates = _Table("orders", (*_ORDER_UPDATE_COLUMNS, "id"), mark)  # encoding of update rows
        self.fills = _Table("fills", _FILL_COLUMNS, mark)
        self.events = _Table("order_events", _EVENT_COLUMNS, mark)
        self.cash = _Table("cash_movements", _CASH_COLUMNS, mark)
        self.order_decoders = self.orders.decoders(self.time_out)
        self.fill_decoders = self.fills.decoders(self.time_out)

        def sql(text: str) -> str:
            return text.replace("?", mark)

        order_list = ", ".join(_ORDER_COLUMNS)
        fill_list = ", ".join(_FILL_COLUMNS)
        self.lock_account = sql(
            f"SELECT {', '.join(_ACCOUNT_STATE_COLUMNS)} FROM accounts WHERE id = ?" + (" FOR UPDATE" if pg else "")
        )
        self.save_settings = sql(
            "UPDATE accounts SET shorting_enabled = ?, max_margin_multiplier_e6 = ?, fill_model = ?, calendar = ?,"
            " equity_mark_interval_s = ? WHERE id = ?"
        )
        # Keys for the rows a transaction will insert: the tables' sequences on PostgreSQL; on SQLite the next
        # rowids, safe because BEGIN IMMEDIATE holds the only write lock until COMMIT.
        self.next_keys = (
            "SELECT nextval(pg_get_serial_sequence('orders', 'id')), nextval(pg_get_serial_sequence('fills', 'id'))"
            " FROM generate_series(1, %s)"
            if pg
            else "SELECT (SELECT COALESCE(MAX(id), 0) FROM orders), (SELECT COALESCE(MAX(id), 0) FROM fills)"
        )
        self.symbol_state = sql(
            "SELECT q.bid_e6, q.ask_e6, q.quoted_at, q.bid_size_e6, q.ask_size_e6, q.bid_taken_e6, q.ask_taken_e6,"
            f" {', '.join(f'p.{column}' for column in _POSITION_COLUMNS)}"
            " FROM (SELECT 1 AS one) AS here"
            " LEFT JOIN quotes q ON q.account_id = ? AND q.symbol = ?"
            " LEFT JOIN positions p ON p.account_id = ? AND p.epoch = ? AND p.symbol = ?"
        )
        self.save_account = sql(
            "UPDATE accounts SET epoch = ?, initial_cash_e6 = ?, cash_e6 = ?, reserved_cash_e6 = ?, clock_at = ?,"
            " updated_at = ? WHERE id = ?"
        )
        position_list = ", ".join((*_POSITION_COLUMNS, "updated_at"))
        self.upsert_position = sql(
            f"INSERT INTO positions (account_id, epoch, symbol, {position_list})"
            f" VALUES (?, ?, ?, {', '.join(['?'] * (len(_POSITION_COLUMNS) + 1))})"
            " ON CONFLICT (account_id, epoch, symbol) DO UPDATE SET "
            + ", ".join(f"{column} = excluded.{column}" for column in (*_POSITION_COLUMNS, "updated_at"))
        )
        # A transaction's fills added to their days' totals (one row per account, epoch, UTC day and symbol).
        self.day_of: Callable[[Any], Any] = _pg_day_of if pg else _sqlite_day_of
        self.add_daily_totals = sql(
            f"INSERT INTO daily_totals (account_id, epoch, day, symbol, {', '.join(_DAILY_TOTALS)})"
            f" VALUES (?, ?, ?, ?, {', '.join(['?'] * len(_DAILY_TOTALS))})"
            " ON CONFLICT (account_id, epoch, day, symbol) DO UPDATE SET "
            + ", ".join(f"{column} = daily_totals.{column} + excluded.{column}" for column in _DAILY_TOTALS)
        )
        self.upsert_quote = sql(
            "INSERT INTO quotes (account_id, symbol, bid_e6, ask_e6, bid_size_e6, ask_size_e6, quoted_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (account_id, symbol) DO UPDATE SET bid_e6 = excluded.bid_e6, ask_e6 = excluded.ask_e6,"
            " bid_size_e6 = excluded.bid_size_e6, ask_size_e6 = excluded.ask_size_e6, quoted_at = excluded.quoted_at,"
            " bid_taken_e6 = 0, ask_taken_e6 = 0"
        )
        self.take_size = {
            side: sql(f"UPDATE quotes SET {column} = {column} + ? WHERE account_id = ? AND symbol = ?")
            for side, column in (("BUY", "ask_taken_e6"), ("SELL", "bid_taken_e6"))
        }
        self.update_order = sql(
            f"UPDATE orders SET {', '.join(f'{column} = ?' for column in _ORDER_UPDATE_COLUMNS)} WHERE id = ?"
        )
        self.order_by_public_id = sql(f"SELECT {order_list} FROM orders WHERE account_id = ? AND order_id = ?")
        self.order_by_client_id = sql(
            f"SELECT {order_list} FROM orders WHERE account_id = ? AND client_order_id = ? AND status <> ?"
        )
        self.orders_by_client_ids = sql(
            f"SELECT {order_list} FROM orders WHERE account_id = ? AND status <> ? AND client_order_id IN "
        )
        # Open orders are few: found through a status index and sorted. "id + 0": without it SQLite's planner
        # (no statistics) walks every order of the epoch in id order through (account_id, epoch, id) to avoid
        # that sort, ~0.2 s per quote or order on a ledger of a million orders. "+epoch" steers a quote's lookup
        # to (account_id, symbol, status), the one symbol's open orders, rather than every open order of the
        # account through (account_id, epoch, status).
        self.open_orders = sql(
            f"SELECT {order_list} FROM orders WHERE account_id = ? AND epoch = ? AND {OPEN_ORDER_CONDITION}"
            " ORDER BY id + 0"
        )
        # Completed with "IN (?, ...)" of a batch's symbols: ix_orders_account_id_symbol_status serves each symbol
        # ("+epoch": not the (account_id, epoch, status) index, every open order of the account).
        self.open_orders_of_symbols = sql(
            f"SELECT {order_list} FROM orders WHERE account_id = ? AND +epoch = ? AND {OPEN_ORDER_CONDITION}"
            " AND symbol IN "
        )
        self.mark = mark
        self.due_orders = sql(
            f"SELECT {order_list} FROM orders WHERE account_id = ? AND epoch = ? AND {OPEN_ORDER_CONDITION}"
            " AND expires_at IS NOT NULL AND expires_at <= ? ORDER BY id + 0"
        )
        self.fill_prices = sql("SELECT qty_e6, price_e6 FROM fills WHERE order_id = ?")
        self.positions_with_quotes = sql(
            "SELECT p.symbol, p.qty_e6, p.cost_basis_e6, q.bid_e6, q.ask_e6 FROM positions p"
            " LEFT JOIN quotes q ON q.account_id = p.account_id AND q.symbol = p.symbol"
            " WHERE p.account_id = ? AND p.epoch = ? AND p.qty_e6 <> 0"
        )
        self.last_mark = sql("SELECT MAX(at) FROM equity_marks WHERE account_id = ? AND epoch = ?")
        self.insert_mark = sql(
            "INSERT INTO equity_marks (account_id, epoch, at, cash_e6, long_value_e6, short_value_e6, equity_e6)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)"
        )
        self.insert_run = sql(
            "INSERT INTO runs (id, account_id, started_at, ended_at, slippage_bps_e6, fee_bps_e6, host, pid)"
            " VALUES (?, ?, ?, NULL, ?, ?, ?, ?)"
        )
        self.end_run = sql("UPDATE runs SET ended_at = ? WHERE id = ?")
        self.first_fill = sql(f"SELECT {fill_list} FROM fills WHERE order_id = ? ORDER BY id LIMIT 1")


_DIALECTS: dict[str, _Dialect] = {}
_SYMBOLS_PER_STATEMENT = 500  # bound parameters per statement stay far below SQLite's and PostgreSQL's limits



def _pipeline_supported(driver_connection: Any) -> bool:
    pipeline = getattr(type(driver_connection), "pipeline", None)
    if pipeline is None:
        return False
    import psycopg

    return bool(psycopg.Pipeline.is_supported())


def _account_values(account: AccountState) -> tuple[Any, ...]:
    return (account.epoch, account.initial_cash, account.cash, account.reserved_cash, account.clock_at)


def _position_state(symbol: str, qty: int, reserved_qty: int, cost_basis: int, realized_pnl: int, fill_count: int,
                    *amounts: int) -> PositionState:
    return PositionState(symbol, from_scaled(qty), from_scaled(reserved_qty), from_scaled(cost_basis),
                         from_scaled(realized_pnl), fill_count, *map(from_scaled, amounts))


# Where _daily_totals finds what it needs in an encoded fill row.
_ACCOUNT, _EPOCH, _FILLED_AT, _SYMBOL, _SIDE, _QTY, _NOTIONAL, _FEE, _REALIZED = (
    _FILL_COLUMNS.index(column) for column in (
        "account_id", "epoch", "filled_at", "symbol", "side", "qty_e6", "notional_e6", "fee_e6", "realized_pnl_e6")
)


def _daily_totals(encoded_fills: list[list[Any]], day_of: Callable[[Any], Any]) -> list[tuple[Any, ...]]:
    """The rows ``add_daily_totals`` adds for a transaction's fills (encoded: amounts in millionths, stored
    times): one per (account, epoch, UTC day, symbol), in ``_DAILY_TOTALS`` order."""
    totals: dict[tuple[Any, ...], list[int]] = {}
    for fill in encoded_fills:
        key = (fill[_ACCOUNT], fill[_EPOCH], day_of(fill[_FILLED_AT]), fill[_SYMBOL])
        row = totals.get(key)
        if row is None:
            row = totals[key] = [0] * len(_DAILY_TOTALS)
        bought = fill[_SIDE] == SIDE_BUY
        row[0] += 1
        row[1 if bought else 2] += fill[_QTY]
        row[3 if bought else 4] += fill[_NOTIONAL]
        row[5] += fill[_FEE]
        row[6] += fill[_REALIZED]
    return [(*key, *row) for key, row in totals.items()]


def _dialect(name: str) -> _Dialect:
    found = _DIALECTS.get(name)
    if found is None:
        found = _DIALECTS[name] = _Dialect(name)
    return found


class Store:
    """The ledger tables as seen from one open transaction (see the module docstring).

    The use case reads through it, edits the returned ``AccountState`` and ``PositionState`` objects in place,
    queues new rows with the ``add_*`` methods and calls ``flush()`` before its transaction commits.
    """

    def __init__(self, conn: Connection):
        self._conn = conn
        self._sql = _dialect(conn.dialect.name)
        self._postgres = conn.dialect.name == "postgresql"
        self._driver = conn.connection.driver_connection
        self._cursor = self._driver.cursor()
        self._pipelined = self._postgres and _pipeline_supported(self._driver)
        self._driver_error: type[Exception] = conn.dialect.dbapi.Error  # type: ignore[union-attr]
        self.account: AccountState | None = None
        self._account_as_read: tuple[Any, ...] = ()
        self._quotes: dict[str, QuoteSnapshot | None] = {}
        self._positions: dict[str, PositionState] = {}
        self._dirty_positions: dict[str, PositionState] = {}
        self._order_keys: deque[int] = deque()  # PostgreSQL: sequence values fetched ahead
        self._fill_keys: deque[int] = deque()
        self._last_keys: list[int] | None = None  # SQLite: the last order and fill keys in use
        self._new_orders: list[dict[str, Any]] = []
        self._queued_orders: dict[int, dict[str, Any]] = {}  # by key: the rows _new_orders will insert
        self._new_fills: list[dict[str, Any]] = []
        self._new_events: list[tuple[Any, ...]] = []
        self._new_cash: list[tuple[Any, ...]] = []
        self._order_updates: list[tuple[Any, ...]] = []
        self._stored_times: dict[datetime, Any] = {}
        self._pending_by_client_id: dict[str, tuple[dict[str, Any], dict[str, Any] | None]] = {}
        self._stored_by_client_id: dict[str, dict[str, Any]] = {}  # read ahead by look_up_client_order_ids
        self._free_client_ids: set[str] = set()  # likewise: held by no live order when read
        self._unwritten_run: PendingRun | None = None
        self.run_written = False
        # Set by a multi-call transaction (``PaperBroker.transaction``): ``ledger.book.marks.mark_equity`` then
        # only records the strongest reason here, and one mark of the final state is written at its end.
        self.defer_marks = False
        self.deferred_mark: str | None = None
        self._savepoints = 0

    # -- driver calls ------------------------------------------------------------------------------------------
    def _execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        try:
            return self._cursor.execute(sql, params)
        except self._driver_error as exc:
            raise self._failure(sql, params, exc) from exc

    def _execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not rows:
            return
        try:
            if len(rows) == 1:  # psycopg's executemany sets up a pipeline of its own: costly for one row
                self._cursor.execute(sql, rows[0])
            else:
                self._cursor.executemany(sql, rows)
        except self._driver_error as exc:
            raise self._failure(sql, rows, exc) from exc

    def _failure(self, sql: str, params: Any, exc: Exception) -> DBAPIError:
        """A driver error as SQLAlchemy raises it for Core statements; a lost connection is invalidated likewise."""
        dialect = self._conn.dialect
        lost = dialect.is_disconnect(exc, self._driver, self._cursor)
        if lost:
            self._conn.invalidate(exc)
        return DBAPIError.instance(
            sql, params, exc, self._driver_error, dialect=dialect, connection_invalidated=lost
        )

    def _decode(self, row: Sequence[Any] | None, decoders: list[tuple[str, Any]]) -> dict[str, Any] | None:
        if row is None:
            return None
        return {name: value if decode is None or value is None else decode(value)
                for (name, decode), value in zip(decoders, row)}

    # -- reads -------------------------------------------------------------------------------------------------
    def lock_account(self, account_id: int, now: datetime | None = None) -> AccountState:
        """Read the account row and lock it (``FOR UPDATE`` on PostgreSQL; SQLite already holds the write lock).

        A write passes its broker time ``now``: earlier than the account's clock is ClockWentBackwardsError,
        else the clock advances to ``now`` (saved with the account by ``flush``). The row is read once per
        transaction: locked, it changes only through this store, so later calls return the same (edited) state.
        """
        held = self.account
        if held is not None and held.id == account_id:
            if now is not None:
                advance_clock(held, now)
            return held
        row = self._execute(self._sql.lock_account, (account_id,)).fetchone()
        if row is None:
            raise LookupError(f"account {account_id} does not exist")
        self.account = AccountState(
            row[0], row[1], row[2], from_scaled(row[3]), from_scaled(row[4]), from_scaled(row[5]),
            self._sql.time_out(row[6]), bool(row[7]), from_scaled(row[8]), row[9], row[10], row[11],
        )
        self._account_as_read = _account_values(self.account)
        if now is not None:
            advance_clock(self.account, now)
        return self.account

    def _load_symbol(self, account: AccountState, symbol: str) -> None:
        row = self._execute(
            self._sql.symbol_state, (account.id, symbol, account.id, account.epoch, symbol)
        ).fetchone()
        bid, ask, quoted_at, bid_size, ask_size, bid_taken, ask_taken, qty, *position = row
        self._quotes[symbol] = (
            None if bid is None else QuoteSnapshot(
                from_scaled(bid), from_scaled(ask), self._sql.time_out(quoted_at), from_scaled(bid_size),
                from_scaled(ask_size), from_scaled(bid_taken), from_scaled(ask_taken),
            )
        )
        self._positions[symbol] = PositionState(symbol) if qty is None else _position_state(symbol, qty, *position)

    def quote(self, account: AccountState, symbol: str) -> QuoteSnapshot | None:
        """The account's last quote for the symbol (as of this transaction), None when there is none."""
        if symbol not in self._quotes:
            self._load_symbol(account, symbol)
        return self._quotes[symbol]

    def position(self, account: AccountState, symbol: str) -> PositionState:
        """The position of the account's current epoch; edit it in place and call ``touch_position``."""
        position = self._positions.get(symbol)
        if position is None:
            self._load_symbol(account, symbol)
            position = self._positions[symbol]
        return position

    def touch_position(self, position: PositionState) -> None:
        self._dirty_positions[position.symbol] = position

    def order(self, account_id: int, order_id: str) -> dict[str, Any] | None:
        """An order of the account (any epoch) by its public id."""
        row = self._execute(self._sql.order_by_public_id, (account_id, order_id)).fetchone()
        return self._decode(row, self._sql.order_decoders)

    def live_order_by_client_id(
        self, account_id: int, client_order_id: str
    ) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
        """The non-rejected order holding a client_order_id, with its fill (if any): queued in this use case (not
        yet flushed) or stored."""
        pending = self._pending_by_client_id.get(client_order_id)
        if pending is not None:
            return pending
        if client_order_id in self._free_client_ids:
            return None
        order = self._stored_by_client_id.get(client_order_id) or self._decode(
            self._execute(self._sql.order_by_client_id, (account_id, client_order_id, STATUS_REJECTED)).fetchone(),
            self._sql.order_decoders,
        )
        if order is None:
            return None
        fill = self._decode(self._execute(self._sql.first_fill, (order["id"],)).fetchone(), self._sql.fill_decoders)
        if fill is not None:
            fill["order_id"] = order["order_id"]
        return order, fill

    def look_up_client_order_ids(self, account_id: int, client_order_ids: Sequence[str]) -> None:
        """Read the live orders holding any of ``client_order_ids`` in one statement per 500 ids (a batch of
        orders calls this once), so ``live_order_by_client_id`` answers for them without a query each."""
        wanted = [cid for cid in dict.fromkeys(client_order_ids) if cid not in self._pending_by_client_id]
        for start in range(0, len(wanted), _SYMBOLS_PER_STATEMENT):
            chunk = wanted[start : start + _SYMBOLS_PER_STATEMENT]
            sql = f"{self._sql.orders_by_client_ids}({', '.join([self._sql.mark] * len(chunk))})"
            for row in self._execute(sql, (account_id, STATUS_REJECTED, *chunk)).fetchall():
                order = self._decode(row, self._sql.order_decoders)
                assert order is not None
                self._stored_by_client_id[order["client_order_id"]] = order
            self._free_client_ids.update(cid for cid in chunk if cid not in self._stored_by_client_id)

    def open_orders(self, account: AccountState, symbols: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Open (``new`` or ``partially_filled``) orders of the current epoch, oldest first; optionally only those
        of ``symbols`` (one statement per 500 symbols, however many have no order)."""
        if isinstance(symbols, str):  # a str is a sequence of one-letter symbols: surely a caller's mistake
            raise TypeError(f"open_orders takes a list of symbols, got the string {symbols!r}")
        if symbols is None:
            rows = self._execute(self._sql.open_orders, (account.id, account.epoch)).fetchall()
        else:
            rows = []
            for start in range(0, len(symbols), _SYMBOLS_PER_STATEMENT):
                chunk = symbols[start : start + _SYMBOLS_PER_STATEMENT]
                marks = ", ".join([self._sql.mark] * len(chunk))
                sql = f"{self._sql.open_orders_of_symbols}({marks}) ORDER BY id + 0"
                rows += self._execute(sql, (account.id, account.epoch, *chunk)).fetchall()
            if len(symbols) > _SYMBOLS_PER_STATEMENT:
                rows.sort(key=itemgetter(0))  # oldest first across the statements (``id`` is the first column)
        return [self._decode(row, self._sql.order_decoders) for row in rows]  # type: ignore[misc]

    def due_orders(self, account: AccountState, now: datetime) -> list[dict[str, Any]]:
        """Open orders of the current epoch whose ``expires_at`` is at or before ``now``, oldest first."""
        rows = self._execute(self._sql.due_orders, (account.id, account.epoch, self._time_in(now))).fetchall()
        return [self._decode(row, self._sql.order_decoders) for row in rows]  # type: ignore[misc]

    def fill_prices(self, order_key: int) -> list[tuple[Decimal, Decimal]]:
        """(qty, price) of each stored fill of an order (for its average fill price)."""
        rows = self._execute(self._sql.fill_prices, (order_key,)).fetchall()
        return [(from_scaled(qty), from_scaled(price)) for qty, price in rows]

    def position_marks(self, account: AccountState) -> list[tuple[str, Decimal, Decimal, Decimal | None]]:
        """(symbol, qty, cost basis, quote mid or None) of each non-zero position of the current epoch, as stored
        (``flush`` first when this transaction changed positions)."""
        rows = self._execute(self._sql.positions_with_quotes, (account.id, account.epoch)).fetchall()
        return [
            (symbol, from_scaled(qty), from_scaled(cost), None if bid is None else (from_scaled(bid) + from_scaled(ask)) / 2)
            for symbol, qty, cost, bid, ask in rows
        ]

    def last_equity_mark(self, account: AccountState) -> datetime | None:
        """The time of the current epoch's latest equity mark, None when there is none."""
        at = self._execute(self._sql.last_mark, (account.id, account.epoch)).fetchone()[0]
        return None if at is None else self._sql.time_out(at)

    def add_equity_mark(
        self, account: AccountState, at: datetime, long_value: Decimal, short_value: Decimal, equity: Decimal
    ) -> None:
        """Write an equity mark of the account at ``at`` at once (cash as it stands in ``account``)."""
        self._execute(self._sql.insert_mark, (
            account.id, account.epoch, self._time_in(at), to_scaled(account.cash), to_scaled(long_value),
            to_scaled(short_value), to_scaled(equity),
        ))

    def save_settings(self, account: AccountState) -> None:
        """Write the account's settings (``configure``) at once."""
        self._execute(self._sql.save_settings, (
            account.shorting_enabled, to_scaled(account.max_margin_multiplier), account.fill_model, account.calendar,
            account.equity_mark_interval_s, account.id,
        ))

    # -- queued writes -----------------------------------------------------------------------------------------
    def reserve_keys(self, count: int) -> None:
        """Allocate keys for up to ``count`` new orders and fills in one statement (a batch calls this once)."""
        if self._postgres:
            rows = self._execute(self._sql.next_keys, (count,)).fetchall()
            self._order_keys.extend(sorted(row[0] for row in rows))
            self._fill_keys.extend(sorted(row[1] for row in rows))
        elif self._last_keys is None:
            self._last_keys = list(self._execute(self._sql.next_keys).fetchone())

    def _next_key(self, table: int) -> int:
        """The next key of orders (``table`` 0) or fills (1), ascending so that keys follow submission order."""
        if self._postgres:
            keys = self._fill_keys if table else self._order_keys
            if not keys:
                self.reserve_keys(1)
            return keys.popleft()
        if self._last_keys is None:
            self.reserve_keys(1)
        assert self._last_keys is not None
        self._last_keys[table] += 1
        return self._last_keys[table]

    def add_order(self, values: dict[str, Any]) -> int:
        """Queue a new order row (``values`` without ``id``, which is set); returns its key."""
        values["id"] = key = self._next_key(0)
        self._new_orders.append(values)
        self._queued_orders[key] = values
        return key

    def add_event(self, order_key: int, at: datetime, from_status: str | None, to_status: str, reason: str | None) -> None:
        self._new_events.append((order_key, at, from_status, to_status, reason))

    def add_fill(self, values: dict[str, Any]) -> int:
        """Queue a fill row (``values["order_id"]`` is the order's key; ``id`` is set); returns the fill's key."""
        values["id"] = key = self._next_key(1)
        self._new_fills.append(values)
        return key

    def hold_client_order_id(self, client_order_id: str, order: dict[str, Any], fill: dict[str, Any] | None) -> None:
        """Remember a queued order under its client_order_id, so a repeat later in this transaction replays it."""
        self._pending_by_client_id[client_order_id] = (order, fill)

    def add_cash_movement(
        self, account: AccountState, run_id: str | None, kind: str, amount: Decimal, at: datetime,
        fill_key: int | None = None,
    ) -> None:
        self._new_cash.append((account.id, account.epoch, run_id, kind, amount, fill_key, at))

    def update_order(self, order: dict[str, Any], at: datetime) -> None:
        """Queue writing the order's changeable columns (``_ORDER_UPDATE_COLUMNS``) as they stand in ``order``."""
        order["updated_at"] = at
        if self._queued_orders.get(order["id"]) is order:
            return  # still queued for its INSERT, which writes ``order`` as it then stands: one row write, not two
        self._order_updates.append((*(order[column] for column in _ORDER_UPDATE_COLUMNS), order["id"]))

    # -- immediate writes --------------------------------------------------------------------------------------
    def upsert_quotes(
        self, account: AccountState, quotes: Sequence[tuple[str, Decimal, Decimal, Decimal, Decimal]], quoted_at: datetime
    ) -> dict[str, QuoteSnapshot]:
        """Replace the account's last quote of each symbol (symbol, bid, ask, bid size, ask size), in one
        ``executemany``; returns the stored quotes by symbol."""
        account_id, stamp = account.id, self._time_in(quoted_at)
        sizes: dict[Decimal, int] = {}  # most quotes of a batch share their sizes: each is scaled once
        rows = []
        snapshots = {}
        for symbol, bid, ask, bid_size, ask_size in quotes:
            scaled_bid_size = sizes.get(bid_size)
            if scaled_bid_size is None:
                scaled_bid_size = sizes[bid_size] = to_scaled(bid_size)
            scaled_ask_size = sizes.get(ask_size)
            if scaled_ask_size is None:
                scaled_ask_size = sizes[ask_size] = to_scaled(ask_size)
            rows.append((account_id, symbol, to_scaled(bid), to_scaled(ask), scaled_bid_size, scaled_ask_size, stamp))
            snapshots[symbol] = QuoteSnapshot(bid, ask, quoted_at, bid_size, ask_size)
        self._execute_many(self._sql.upsert_quote, rows)
        self._quotes.update(snapshots)
        return snapshots

    def take_displayed_size(self, account: AccountState, symbol: str, side: str, qty: Decimal) -> None:
        """Record that a fill took ``qty`` of the quote's displayed size on the side it trades (buys: the ask)."""
        self._execute(self._sql.take_size[side], (to_scaled(qty), account.id, symbol))
        cached = self._quotes.get(symbol)
        if cached is not None:  # later orders in this transaction see what is left
            taken = {"ask_taken": cached.ask_taken + qty} if side == "BUY" else {"bid_taken": cached.bid_taken + qty}
            self._quotes[symbol] = cached._replace(**taken)

    def end_run(self, run_id: str, at: datetime) -> None:
        self._execute(self._sql.end_run, (self._time_in(at), run_id))

    def start_run_with_first_row(self, run: PendingRun) -> None:
        """Insert ``run`` (started at the flush's time) before the first queued row that refers to it, if any:
        a call that writes no order, fill or cash movement leaves no run behind."""
        self._unwritten_run = run

    def flush(self, at: datetime) -> None:
        """Write every queued row, the touched positions and the locked account (stamped ``at``).

        On PostgreSQL the statements go out in one pipeline (one network round trip, not one per statement).
        """
        run = self._unwritten_run
        if run is not None and (self._new_orders or self._new_fills or self._new_cash):
            self._execute(self._sql.insert_run, (
                run.run_id, run.account_id, self._time_in(at), to_scaled(run.slippage_bps), to_scaled(run.fee_bps),
                run.host, run.pid,
            ))
            self._unwritten_run = None
            self.run_written = True
        try:
            with self._driver.pipeline() if self._pipelined else nullcontext():
                self._write_queued(at)
        except self._driver_error as exc:  # a pipeline reports a failed statement when it syncs
            raise self._failure("flush", (), exc) from exc

    def _write_queued(self, at: datetime) -> None:
        sql = self._sql
        self._execute_many(sql.orders.insert, self._encode(sql.orders, self._new_orders, dicts=True))
        self._execute_many(sql.update_order, self._encode(sql.order_updates, self._order_updates, dicts=False))
        self._execute_many(sql.events.insert, self._encode(sql.events, self._new_events, dicts=False))
        new_fills = self._encode(sql.fills, self._new_fills, dicts=True)
        self._execute_many(sql.fills.insert, new_fills)
        self._execute_many(sql.add_daily_totals, _daily_totals(new_fills, sql.day_of))
        self._execute_many(sql.cash.insert, self._encode(sql.cash, self._new_cash, dicts=False))
        if self._dirty_positions and self.account is not None:
            stamp = self._time_in(at)
            account = self.account
            self._execute_many(sql.upsert_position, [
                (account.id, account.epoch, p.symbol, to_scaled(p.qty), to_scaled(p.reserved_qty), to_scaled(p.cost_basis),
                 to_scaled(p.realized_pnl), p.fill_count, to_scaled(p.bought_qty), to_scaled(p.sold_qty),
                 to_scaled(p.bought_notional), to_scaled(p.sold_notional), to_scaled(p.fees), stamp)
                for p in self._dirty_positions.values()
            ])
        if self.account is not None and _account_values(self.account) != self._account_as_read:
            account = self.account
            self._execute(sql.save_account, (
                account.epoch, to_scaled(account.initial_cash), to_scaled(account.cash), to_scaled(account.reserved_cash),
                self._time_in(account.clock_at), self._time_in(at), account.id,
            ))
            self._account_as_read = _account_values(account)
        self._drop_queued()

    def _queues(self) -> tuple[list[Any], ...]:
        return self._new_orders, self._order_updates, self._new_events, self._new_fills, self._new_cash

    def _drop_queued(self) -> None:
        """Empty the queues, and forget what only the use case that queued the rows may rely on."""
        for queue in self._queues():
            queue.clear()
        self._dirty_positions.clear()
        self._queued_orders.clear()
        # Read-ahead answers serve the use case that asked (a batch); a later one in the transaction asks again.
        self._stored_by_client_id.clear()
        self._free_client_ids.clear()
        # Written now: a later use case of the transaction (a quote filling one, a cancel) may change them, so a
        # repeated client_order_id reads its order as stored, not as the use case that queued it left it.
        self._pending_by_client_id.clear()

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """Undo the block's writes if it raises (an SQL ``SAVEPOINT``), the transaction going on without them.

        Nothing may be queued on entry (a use case flushes before it returns). On failure the database is rolled
        back to the savepoint and this store forgets what it read or queued in the block: the account, quotes and
        positions are read again by the next use case, which sees them as they were before the block.
        """
        if any(self._queues()) or self._dirty_positions:
            raise RuntimeError("savepoint() with rows still queued: flush() first")
        self._savepoints += 1
        name = f"ledger_{self._savepoints}"
        kept = (self._unwritten_run, self.run_written, self.deferred_mark)
        self._execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self._execute(f"ROLLBACK TO SAVEPOINT {name}")
            self._execute(f"RELEASE SAVEPOINT {name}")
            self._forget()
            self._unwritten_run, self.run_written, self.deferred_mark = kept
            raise
        else:
            self._execute(f"RELEASE SAVEPOINT {name}")
        finally:
            self._savepoints -= 1

    def _forget(self) -> None:
        """Drop every cached read and queued row (after a rollback to a savepoint they may be wrong)."""
        self.account = None
        self._account_as_read = ()
        self._quotes.clear()
        self._positions.clear()
        self._drop_queued()
        self._last_keys = None  # SQLite: the rolled-back rows' keys are free again (PostgreSQL's stay unused)

    def _time_in(self, moment: datetime) -> Any:
        # A transaction stamps all its rows with one "now": convert each distinct time once.
        stored = self._stored_times.get(moment)
        if stored is None:
            stored = self._stored_times[moment] = self._sql.time_in(moment)
        return stored

    def _encode(self, table: _Table, rows: Iterable[Any], *, dicts: bool) -> list[list[Any]]:
        """Queued rows (dicts, or tuples in column order) -> driver values: integer millionths, stored times."""
        encoded = []
        for row in rows:
            values = list(table.values_of(row) if dicts else row)
            for i in table.amount_indexes:
                if values[i] is not None:
                    values[i] = to_scaled(values[i])
            for i in table.time_indexes:
                if values[i] is not None:
                    values[i] = self._time_in(values[i])
            encoded.append(values)
        return encoded


def advance_clock(account: AccountState, now: datetime) -> None:
    """Move the account's clock to ``now``; a time earlier than the clock is refused (ClockWentBackwardsError)."""
    if now < account.clock_at:
        raise ClockWentBackwardsError(
            f"broker time {now.isoformat()} is before the clock of account {account.name!r}, "
            f"{account.clock_at.isoformat()}; "
            "broker time on an account never goes backwards"
        )
    account.clock_at = now


@dataclass(frozen=True)
class PendingRun:
    """A run not yet in the ``runs`` table: its row is written with the first row that refers to it."""

    run_id: str
    account_id: int
    slippage_bps: Decimal
    fee_bps: Decimal
    host: str
    pid: int


# -- Core statements for the cold paths (accounts and runs) ---------------------------------------------------
_ACCOUNT_COLUMNS = tuple(accounts.c[name] for name in _ACCOUNT_STATE_COLUMNS)


def find_account(conn: Connection, name: str, *, lock: bool = False) -> AccountState | None:
    stmt = select(*_ACCOUNT_COLUMNS).where(accounts.c.name == name)
    row = conn.execute(stmt.with_for_update() if lock else stmt).one_or_none()
    return None if row is None else AccountState(*row)


def insert_account(conn: Connection, name: str, initial_cash: Decimal, now: datetime) -> int:
    return conn.execute(
        insert(accounts).returning(accounts.c.id),
        {
            "name": name,
            "epoch": 1,
            "initial_cash_e6": initial_cash,
            "cash_e6": initial_cash,
            "reserved_cash_e6": ZERO,
            "created_at": now,
            "updated_at": now,
            "clock_at": now,
        },
    ).scalar_one()


def find_run(conn: Connection, run_id: str) -> Row[Any] | None:
    return conn.execute(select(runs).where(runs.c.id == run_id)).one_or_none()


def update_run(conn: Connection, run_id: str, values: dict[str, Any]) -> None:
    conn.execute(update(runs).where(runs.c.id == run_id), values)
