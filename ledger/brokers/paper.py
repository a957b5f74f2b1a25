"""PaperBroker: the Broker protocol on a SQL ledger. Thin: it validates at the edge and runs one use case per call.

State lives in the database only (nothing cached here that another process could change), so any number of
brokers, in any number of processes, can trade one account; each call is one transaction. One broker may also
be shared by threads: its calls take turns on its one connection (a lock serialises them).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from ledger.book.accounts import (
    account_lookup_name,
    end_run,
    move_cash,
    new_run,
    open_account,
    reset_account,
    resume_run,
)
from ledger.book.marks import MARK_BAR, Holdings, mark_equity, stored_holdings, write_deferred_mark
from ledger.book.orders import (
    ReplaceRequest,
    cancel_all_orders,
    close_all_positions,
    close_position,
    expire_due,
    open_account_for_write,
    replace_order,
    SubmitOutcome,
    TradingContext,
    batch_rejection,
    cancel_order,
    record_invalid_order,
    submit_order,
    submit_orders,
)
from ledger.book.quotes import update_quotes
from ledger.book.records import fill_record, order_record
from ledger.book.settings import configure_account, settings_record, validate_settings
from ledger.book.store import AccountState, PendingRun, Store, find_account
from ledger.book.validation import (
    DEFAULT_QUOTE_SIZE,
    InvalidOrder,
    QuoteInput,
    OrderRequest,
    ledger_id,
    normalize_symbol,
    printable,
    require_utc,
    validate_bps,
    validate_cash,
    validate_cash_amount,
    validate_order,
    validate_quote,
    validate_quotes,
)
from ledger.book.verify import verify_ledger
from ledger.config import get_cfg
from ledger.constants import DEFAULT_ACCOUNT, ORDER_MARKET, ORDER_STATUSES, TIF_GTC
from ledger.db.engine import get_engine, read_transaction, resolve_db_url, translate_db_errors, write_transaction
from ledger.db.migrate import ensure_schema
from ledger.exceptions import BrokerError, OrderNotFoundError, OrderRejectedError, QuoteNotFoundError
from ledger.export import export_jsonl
from ledger.money import to_decimal, to_float
from ledger.queries import account_margin, account_row, fills_stmt, order_stmt, orders_stmt, portfolio_value, position_rows, quote_row

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


class PaperBroker:
    """A paper-trading broker whose accounts, runs, orders, fills, positions, cash and quotes live in SQL tables.

    ``db_url``: SQLAlchemy URL (default: ``LEDGER_DATABASE_URL``, then config, then ``./paper_ledger.db``).
    ``account``: the paper account, created on first use with ``initial_cash``; reopening resumes it.
    ``slippage_bps`` / ``fee_bps``: this run's market-order slippage and fee (0 is a value, None means config).
    ``clock``: returns broker time (UTC-aware); replays pass market time. ``run_id``: resume an earlier run.
    """

    def __init__(
        self,
        *,
        account: str = DEFAULT_ACCOUNT,
        db_url: str | None = None,
        initial_cash: float | Decimal | None = None,
        slippage_bps: float | Decimal | None = None,
        fee_bps: float | Decimal | None = None,
        clock: Clock | None = None,
        run_id: str | None = None,
    ):
        self._clock = clock or system_clock
        self._lock = threading.RLock()
        name = account_lookup_name(account)
        explicit_cash = None if initial_cash is None else validate_cash(initial_cash)
        explicit_slippage = None if slippage_bps is None else validate_bps(slippage_bps, "slippage_bps")
        explicit_fee = None if fee_bps is None else validate_bps(fee_bps, "fee_bps")
        self.db_url = resolve_db_url(db_url)
        engine = get_engine(self.db_url)
        ensure_schema(engine)
        with translate_db_errors(engine):
            self._conn: Connection | None = engine.connect()
        try:
            with write_transaction(self._conn) as conn:
                now = self.now()
                account_state = open_account(conn, name, explicit_cash, validate_cash(get_cfg("initial_cash")), now)
                if run_id is None:
                    slippage = explicit_slippage if explicit_slippage is not None else validate_bps(
                        get_cfg("slippage_bps"), "slippage_bps"
                    )
                    fee = explicit_fee if explicit_fee is not None else validate_bps(get_cfg("fee_bps"), "fee_bps")
                    self._unwritten_run: PendingRun | None = new_run(account_state.id, slippage, fee)
                    run_id = self._unwritten_run.run_id
                else:
                    slippage, fee = resume_run(conn, account_state, run_id, now, explicit_slippage, explicit_fee)
                    self._unwritten_run = None
        except BaseException:
            self._conn.close()
            self._conn = None
            raise
        self.account = name
        self._ctx = TradingContext(account_state.id, run_id, slippage, fee)

    # -- identity and settings -------------------------------------------------------------------------
    @property
    def account_id(self) -> int:
        return self._ctx.account_id

    @property
    def run_id(self) -> str:
        return self._ctx.run_id

    @property
    def slippage_bps(self) -> float:
        return float(self._ctx.slippage_bps)

    @property
    def fee_bps(self) -> float:
        return float(self._ctx.fee_bps)

    def now(self) -> datetime:
        """Broker time from the injected clock, checked to be UTC-aware."""
        return require_utc(self._clock(), "clock()")

    def _connection(self) -> Connection:
        if self._conn is None:
            raise BrokerError("this PaperBroker is closed")
        return self._conn

    @contextmanager
    def _writing(self) -> Iterator[Store]:
        """One write transaction holding the account's lock, this broker's threads taking turns; the run's row
        goes in with its first row."""
        with self._lock:
            with write_transaction(self._connection()) as conn:
                store = Store(conn)
                # The account's lock is taken before the caller reads broker time (SQLite: BEGIN IMMEDIATE
                # already holds the database's), so writes are stamped in the order they commit: a clock read
                # while waiting for another process's write would be earlier than that write's time.
                store.lock_account(self.account_id)
                if self._unwritten_run is not None:
                    store.start_run_with_first_row(self._unwritten_run)
                yield store
            if store.run_written:  # committed: from now on the run exists
                self._unwritten_run = None

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        with self._lock, read_transaction(self._connection()) as conn:
            yield conn

    @contextmanager
    def transaction(self) -> Iterator[BrokerTransaction]:
        """Several calls in ONE write transaction: all commit together when the block ends, none if it raises.

        A replay's bar is one: its quotes (and the fills they make), the strategy's orders decided on the
        holdings those quotes left, and the bar's equity mark. The account stays locked until the block ends, so
        keep it short; calls on the broker itself inside the block are refused (they would need a second
        transaction). The transaction writes one equity mark at most, of its final state (see ledger.book.marks).
        """
        with self._writing() as store:
            store.defer_marks = True
            tx = BrokerTransaction(store, self._ctx, self.now)
            try:
                yield tx
                tx.finish()
            finally:
                tx.closed = True

    # -- orders ------------------------------------------------------------------------------------------
    def submit_order(
        self,
        symbol: str,
        side: str,
        qty: float | Decimal | None = None,
        order_type: str = ORDER_MARKET,
        limit_price: float | Decimal | None = None,
        client_order_id: str | None = None,
        *,
        time_in_force: str = TIF_GTC,
        stop_price: float | Decimal | None = None,
        trail_price: float | Decimal | None = None,
        trail_percent: float | Decimal | None = None,
        notional: float | Decimal | None = None,
    ) -> dict[str, Any]:
        """Submit one order: it fills now (wholly or partly), rests, or is rejected (recorded, then raised).

        ``order_type``: market, limit, stop, stop_limit, trailing_stop (``trail_price`` or ``trail_percent``).
        ``time_in_force``: gtc (default), day (expires at its session's close on the account's calendar), ioc,
        fok. ``notional``: a cash amount instead of ``qty`` (market orders). A repeated ``client_order_id`` with
        the same parameters returns the original order and fills nothing.
        """
        checked = validate_order(
            symbol, side, qty, order_type, limit_price, client_order_id, time_in_force=time_in_force,
            stop_price=stop_price, trail_price=trail_price, trail_percent=trail_percent, notional=notional,
        )
        with self._writing() as store:
            now = self.now()
            if isinstance(checked, InvalidOrder):
                outcome = record_invalid_order(store, self._ctx, checked, now)
            else:
                outcome = submit_order(store, self._ctx, checked, now)
        if outcome.error is not None:
            raise outcome.error
        return _submit_result(outcome)

    def submit_orders(self, orders: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Submit a batch (e.g. a rebalance) in ONE transaction, all or nothing; returns one result per order.

        Each dict: ``symbol``, ``side``, ``qty``, optional ``order_type`` ("market"), ``limit_price``,
        ``client_order_id``, and the order model's ``time_in_force``, ``stop_price``, ``trail_price``,
        ``trail_percent``, ``notional`` (as in ``submit_order``). Each order sees the cash and shares left by
        the orders before it. If any order
        would be rejected (invalid input, no quote, insufficient cash or shares), nothing is written and
        OrderRejectedError (or InsufficientFundsError) names the order's index and the reason. A repeated
        client_order_id replays its order, as in ``submit_order``.
        """
        requests = [_batch_request(index, order) for index, order in enumerate(orders)]
        if not requests:
            return []
        with self._writing() as store:
            outcomes = submit_orders(store, self._ctx, requests, self.now())
        return [_submit_result(outcome) for outcome in outcomes]

    def cancel_order(self, order_id: str) -> dict[str, Any]:
        """Cancel an open order (releasing its reservation); a finished order reports its status (``filled``...)."""
        with self._writing() as store:
            return cancel_order(store, self._ctx, order_id, self.now())

    def cancel_all_orders(self) -> list[dict[str, Any]]:
        """Cancel every open order of the account, in one transaction; returns the canceled orders."""
        with self._writing() as store:
            canceled = cancel_all_orders(store, self._ctx, self.now())
        return [order_record(order) for order in canceled]

    def replace_order(
        self,
        order_id: str,
        *,
        qty: float | Decimal | None = None,
        limit_price: float | Decimal | None = None,
        stop_price: float | Decimal | None = None,
        trail: float | Decimal | None = None,
        time_in_force: str | None = None,
        client_order_id: str | None = None,
    ) -> dict[str, Any]:
        """Replace an open order atomically; returns the new order (the old one becomes ``replaced``).

        Unset fields keep the old order's values (``qty``: its unfilled quantity); ``trail`` is the new
        ``trail_price`` or ``trail_percent``, whichever the order has. OrderNotReplaceableError for an order that
        is no longer open; if the new order would be rejected, nothing changes and the rejection is raised.
        """
        changes = ReplaceRequest(qty, limit_price, stop_price, trail, time_in_force, client_order_id)
        with self._writing() as store:
            outcome = replace_order(store, self._ctx, order_id, changes, self.now())
        if outcome.error is not None:
            raise outcome.error
        return _submit_result(outcome)

    def close_position(
        self, symbol: str, qty: float | Decimal | None = None, percentage: float | Decimal | None = None
    ) -> dict[str, Any]:
        """Close the position in ``symbol`` with a market order: all of it, ``qty``, or ``percentage`` percent.

        PositionNotFoundError when there is none; a rejected close is recorded and raised like any order.
        """
        if qty is not None and percentage is not None:
            raise ValueError("give qty or percentage, not both")
        clean = normalize_symbol(symbol)
        pct = None if percentage is None else to_decimal(percentage, "percentage")
        with self._writing() as store:
            outcome = close_position(store, self._ctx, clean, qty, pct, self.now())
        if outcome.error is not None:
            raise outcome.error
        return _submit_result(outcome)

    def close_all_positions(self, cancel_orders: bool = False) -> list[dict[str, Any]]:
        """Close every position with market orders in one transaction (first canceling open orders when
        ``cancel_orders``); a close that is rejected is recorded and returned with status ``rejected``."""
        with self._writing() as store:
            outcomes = close_all_positions(store, self._ctx, bool(cancel_orders), self.now())
        return [_submit_result(outcome) for outcome in outcomes]

    def expire_orders(self) -> list[dict[str, Any]]:
        """Expire the open orders whose time is up at broker time now (``day`` orders past their session's close).

        Every write does this anyway; this call does it alone (e.g. at the end of a replay). Returns them.
        """
        with self._writing() as store:
            now = self.now()
            account = store.lock_account(self._ctx.account_id, now)
            expired = expire_due(store, account, now)
            store.flush(now)
        return [order_record(order) for order in expired]

    def mark_equity(self) -> bool:
        """Write an equity mark at broker time now unless one exists at that time (the replay marks every bar
        with it); True when written."""
        with self._writing() as store:
            now = self.now()
            account = open_account_for_write(store, self._ctx, now)
            written = mark_equity(store, account, now, reason=MARK_BAR)
            store.flush(now)
        return written

    def configure(
        self,
        *,
        shorting_enabled: bool | None = None,
        max_margin_multiplier: float | Decimal | None = None,
        fill_model: str | None = None,
        calendar: str | None = None,
        equity_mark_interval_s: int | None = None,
    ) -> dict[str, Any]:
        """Change the account's settings (persisted; None keeps one); returns them all. See ``settings``."""
        changes = validate_settings(
            shorting_enabled=shorting_enabled, max_margin_multiplier=max_margin_multiplier, fill_model=fill_model,
            calendar=calendar, equity_mark_interval_s=equity_mark_interval_s,
        )
        with self._writing() as store:
            account = configure_account(store, self._ctx, changes, self.now())
        return settings_record(account)

    def settings(self) -> dict[str, Any]:
        """The account's settings: shorting_enabled, max_margin_multiplier, fill_model, calendar,
        equity_mark_interval_s."""
        with self._reading() as conn:
            state = find_account(conn, self.account)
        assert state is not None
        return settings_record(state)

    def get_order(self, order_id: str) -> dict[str, Any]:
        """One order of this account (any epoch) by id; OrderNotFoundError if there is none."""
        with self._reading() as conn:
            row = conn.execute(order_stmt(self.account_id, order_id)).one_or_none() if ledger_id(order_id) else None
        if row is None:
            raise OrderNotFoundError(printable(order_id, 40))
        return order_record(row)

    def get_orders(self, status: str | None = None) -> list[dict[str, Any]]:
        """The current epoch's orders in submission order, optionally with one status."""
        if status is not None and status not in (*ORDER_STATUSES, "open", "closed"):
            raise ValueError(f"unknown order status {status!r}; expected open, closed or one of "
                             f"{', '.join(ORDER_STATUSES)}")
        with self._reading() as conn:
            return [order_record(row) for row in conn.execute(orders_stmt(self.account_id, status=status))]

    # -- balances ----------------------------------------------------------------------------------------
    def get_positions(self) -> dict[str, float]:
        """Open positions of the current epoch: symbol -> quantity (negative for a short position)."""
        with self._reading() as conn:
            return {row.symbol: float(row.qty_e6) for row in position_rows(conn, self.account_id)}

    def get_cash(self) -> float:
        """The cash balance (resting buy orders' reservations included; see ``get_account``)."""
        with self._reading() as conn:
            return float(account_row(conn, self.account_id).cash_e6)

    def get_account(self) -> dict[str, Any]:
        """Cash, reserved and available cash, equity, epoch and initial cash of the account, and its margin
        figures (ledger.book.margin): long and short market value, buying power, initial and maintenance margin,
        maintenance shortfall (0 unless equity is below the maintenance margin)."""
        with self._reading() as conn:
            row = account_row(conn, self.account_id)
            margin = account_margin(conn, self.account_id)
            equity = portfolio_value(conn, self.account_id)  # unrounded, as get_portfolio_value
        return {
            "account": row.name,
            "epoch": row.epoch,
            "initial_cash": float(row.initial_cash_e6),
            "cash": float(row.cash_e6),
            "reserved_cash": float(row.reserved_cash_e6),
            "available_cash": float(row.cash_e6 - row.reserved_cash_e6),
            "equity": float(equity),
            "long_market_value": float(margin.long_value),
            "short_market_value": float(margin.short_value),
            "buying_power": float(margin.buying_power),
            "initial_margin": float(margin.initial_margin),
            "maintenance_margin": float(margin.maintenance_margin),
            "maintenance_shortfall": float(margin.maintenance_shortfall),
        }

    def get_portfolio_value(self) -> float:
        """Cash plus positions valued at the mid of their last quote (at cost when none is stored)."""
        with self._reading() as conn:
            return float(portfolio_value(conn, self.account_id))

    def get_fills(self, since: datetime | None = None) -> list[dict[str, Any]]:
        """The current epoch's fills, oldest first; ``since`` (UTC-aware) filters in SQL, inclusive."""
        since_utc = None if since is None else require_utc(since, "since")
        with self._reading() as conn:
            rows = conn.execute(fills_stmt(self.account_id, since=since_utc))
            return [fill_record(row._mapping) for row in rows]

    # -- quotes ------------------------------------------------------------------------------------------
    def set_quote(
        self, symbol: str, bid: float, ask: float, bid_size: float = DEFAULT_QUOTE_SIZE,
        ask_size: float = DEFAULT_QUOTE_SIZE,
    ) -> list[dict[str, Any]]:
        """Store the symbol's quote at broker time and fill the resting orders it crosses; returns those fills.

        ``set_quotes`` of one symbol (see there)."""
        return self._store_quotes([validate_quote(symbol, bid, ask, bid_size, ask_size)])

    def set_quotes(self, quotes: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Store many symbols' quotes at broker time in ONE transaction; returns the fills they made.

        ``quotes``: symbol -> ``(bid, ask)``, ``(bid, ask, bid_size, ask_size)`` or a mapping with ``bid``,
        ``ask`` and optionally ``bid_size``, ``ask_size`` (sizes default to 100). The same fills and resting
        orders as ``set_quote`` of each symbol in the mapping's order (day orders expire, stops trigger,
        trailing stops move, orders fill oldest first, displayed sizes limit fills), and one equity mark at most.
        An invalid quote (InvalidQuoteError, naming the symbol) rejects the whole batch: nothing is written.
        """
        checked = validate_quotes(quotes)
        return self._store_quotes(checked) if checked else []

    def _store_quotes(self, quotes: list[QuoteInput]) -> list[dict[str, Any]]:
        with self._writing() as store:
            fills = update_quotes(store, self._ctx, quotes, self.now())
        return [fill_record(fill) for fill in fills]

    def get_quote(self, symbol: str) -> dict[str, Any]:
        """The last stored quote for the symbol; QuoteNotFoundError (a BrokerError) when there is none."""
        try:
            clean = normalize_symbol(symbol)
        except ValueError as exc:
            raise QuoteNotFoundError(printable(symbol, 32)) from exc
        with self._reading() as conn:
            row = quote_row(conn, self.account_id, clean)
        if row is None:
            raise QuoteNotFoundError(clean)
        bid, ask = row.bid_e6, row.ask_e6
        return {
            "symbol": clean,
            "bid": float(bid),
            "ask": float(ask),
            "bid_size": float(row.bid_size_e6),
            "ask_size": float(row.ask_size_e6),
            "timestamp": row.quoted_at,
            "spread_bps": float((ask - bid) / ((ask + bid) / 2) * 10_000),
        }

    # -- account lifecycle, audit ---------------------------------------------------------------------------
    def reset(self, initial_cash: float | Decimal | None = None) -> None:
        """Start the account afresh (new epoch) in one transaction; earlier orders and fills stay queryable."""
        cash = None if initial_cash is None else validate_cash(initial_cash)
        with self._writing() as store:
            reset_account(store, self.account_id, self.run_id, cash, self.now())

    def deposit(self, amount: float | Decimal) -> dict[str, Any]:
        """Add cash to the account (a ``deposit`` cash movement, one transaction); returns ``get_account()``.

        Returns count deposits as capital: return = equity / (initial cash + net deposits) - 1.
        """
        cash = validate_cash_amount(amount, "deposit")
        with self._writing() as store:
            move_cash(store, self.account_id, self.run_id, cash, self.now())
        return self.get_account()

    def withdraw(self, amount: float | Decimal) -> dict[str, Any]:
        """Take cash out (a ``withdrawal`` movement, negative); beyond available cash: CashMovementError."""
        cash = validate_cash_amount(amount, "withdrawal")
        with self._writing() as store:
            move_cash(store, self.account_id, self.run_id, -cash, self.now())
        return self.get_account()

    def verify(self) -> list[str]:
        """Check the ledger's invariants for this account from the tables; empty when all hold."""
        with self._reading() as conn:
            return verify_ledger(conn, self.account_id)

    def export_jsonl(self, out_dir: str | Path, since: datetime | None = None) -> list[Path]:
        """Write the account's fills as daily ``YYYY-MM-DD.jsonl`` files (the seed's log format); returns paths."""
        since_utc = None if since is None else require_utc(since, "since")
        with self._reading() as conn:
            return export_jsonl(conn, self.account_id, Path(out_dir), since_utc)

    def close(self) -> None:
        """End the run (if it wrote anything) and release the connection. Safe to call twice."""
        with self._lock:
            if self._conn is None:
                return
            try:
                if self._unwritten_run is None:
                    with self._writing() as store:
                        end_run(store, self.account_id, self.run_id, self.now())
            finally:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> PaperBroker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PaperBroker(account={self.account!r}, run_id={self.run_id!r}, db_url={self.db_url!r})"


class BrokerTransaction:
    """Broker calls inside one write transaction (``PaperBroker.transaction``), under the same rules as the
    broker's own calls; each call is stamped with the broker clock's time when it is made.

    Each call is whole or nothing, as on the broker (an SQL savepoint around it): one that raises leaves nothing
    of itself and the transaction goes on. ``all_or_nothing`` makes one of several calls.
    """

    def __init__(self, store: Store, ctx: TradingContext, clock: Clock):
        self._ledger = store
        self._ctx = ctx
        self._clock = clock
        self.closed = False

    @contextmanager
    def _call(self) -> Iterator[Store]:
        if self.closed:
            raise BrokerError("this transaction has ended")
        with self._ledger.savepoint():
            yield self._ledger

    def _account(self, store: Store) -> AccountState:
        """The locked account as this transaction now holds it."""
        return store.lock_account(self._ctx.account_id)

    def set_quotes(self, quotes: Mapping[str, Any]) -> list[dict[str, Any]]:
        """As ``PaperBroker.set_quotes``: store the quotes, fill the resting orders they cross; returns the fills."""
        checked = validate_quotes(quotes)
        if not checked:
            return []
        with self._call() as store:
            fills = update_quotes(store, self._ctx, checked, self._clock())
        return [fill_record(fill) for fill in fills]

    def holdings(self) -> Holdings:
        """Available cash, equity and positions as this transaction leaves them (Decimal)."""
        with self._call() as store:
            return stored_holdings(store, self._account(store))

    def open_orders(self, symbols: list[str] | None = None) -> list[dict[str, Any]]:
        """The current epoch's open orders, oldest first; only those of ``symbols`` when given."""
        with self._call() as store:
            return [order_record(order) for order in store.open_orders(self._account(store), symbols)]

    def cancel_order(self, order_id: str) -> dict[str, Any]:
        """As ``PaperBroker.cancel_order``."""
        with self._call() as store:
            return cancel_order(store, self._ctx, order_id, self._clock())

    def submit_orders(self, orders: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """As ``PaperBroker.submit_orders``: all or nothing; a rejected batch raises and leaves nothing of itself."""
        requests = [_batch_request(index, order) for index, order in enumerate(orders)]
        if not requests:
            return []
        with self._call() as store:
            outcomes = submit_orders(store, self._ctx, requests, self._clock())
        return [_submit_result(outcome) for outcome in outcomes]

    @contextmanager
    def all_or_nothing(self) -> Iterator[None]:
        """A block of calls kept whole: if it raises, none of its writes stay and the transaction goes on."""
        with self._call():
            yield

    def mark_equity(self) -> None:
        """Mark equity at the transaction's end unless a mark exists at that broker time (as
        ``PaperBroker.mark_equity``)."""
        with self._call() as store:
            now = self._clock()
            mark_equity(store, store.lock_account(self._ctx.account_id, now), now, reason=MARK_BAR)  # clock checked
            store.flush(now)  # the advanced clock: a later call's rollback must not lose it

    def finish(self) -> None:
        """Write the transaction's one equity mark (``PaperBroker.transaction`` calls this before committing); its
        time is checked against the account's clock like any write's (ClockWentBackwardsError)."""
        if self.closed:
            raise BrokerError("this transaction has ended")
        store, now = self._ledger, self._clock()
        if store.deferred_mark is not None:
            write_deferred_mark(store, store.lock_account(self._ctx.account_id, now), now)
            store.flush(now)


_BATCH_OPTIONAL = ("order_type", "limit_price", "client_order_id", "time_in_force", "stop_price", "trail_price",
                   "trail_percent", "notional")
_BATCH_KEYS = frozenset({"symbol", "side", "qty", *_BATCH_OPTIONAL})


def _batch_request(index: int, order: object) -> OrderRequest:
    """Validate one order of a batch; an invalid one rejects the whole batch before anything is written.

    ``qty`` may be omitted (or None) for a notional order."""
    if not isinstance(order, dict) or not {"symbol", "side"} <= order.keys() <= _BATCH_KEYS:
        shown = sorted(order) if isinstance(order, dict) else type(order).__name__
        raise batch_rejection(index, OrderRejectedError(
            "?", f"an order is a dict with symbol, side, qty and optionally {', '.join(_BATCH_OPTIONAL)}; got {shown}"
        ))
    checked = validate_order(
        order["symbol"], order["side"], order.get("qty"), order.get("order_type", ORDER_MARKET),
        order.get("limit_price"), order.get("client_order_id"), time_in_force=order.get("time_in_force", TIF_GTC),
        stop_price=order.get("stop_price"), trail_price=order.get("trail_price"),
        trail_percent=order.get("trail_percent"), notional=order.get("notional"),
    )
    if isinstance(checked, InvalidOrder):
        raise batch_rejection(index, OrderRejectedError(checked.symbol, checked.reason))
    return checked


def _submit_result(outcome: SubmitOutcome) -> dict[str, Any]:
    """The order (``order_record``'s keys) and, in the seed's names, its fill of this call: ``fill_price``,
    ``notional`` and ``fee`` (None when it did not fill now)."""
    order = outcome.order
    fill = outcome.fill
    record = order_record(order)
    record.update(
        fill_price=None if fill is None else to_float(fill["price_e6"]),
        notional=None if fill is None else to_float(fill["notional_e6"]),
        fee=None if fill is None else to_float(fill["fee_e6"]),
        timestamp=order["submitted_at"] if fill is None else fill["filled_at"],
        replayed=outcome.replayed,
    )
    return record
