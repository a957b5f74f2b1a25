"""The replay job: feed stored bars, in market time, to an example strategy trading a PaperBroker; resumable.

Each bar is ONE transaction (``PaperBroker.transaction``): the bar's quotes, all in one ``set_quotes`` call (a
synthetic spread around each close, stamped with the bar's time through the broker's clock; the resting orders
they cross fill there); the strategy's decision, on the holdings as the quotes left them (a stop-loss the bar
filled is sold), placed in one ``submit_orders`` batch; and the bar's equity mark. Every order carries a
deterministic ``client_order_id`` ``rp-<job>:<bar time>:<symbol>:<side>``, where ``<job>`` hashes the account,
its epoch, the strategy and the bars themselves.

Resume semantics (no side file, no extra table: the ledger is the progress record). Killed at any point and
started again with the same arguments, the job finds the account's clock (the time of the last bar committed,
all of it: quotes, orders and mark) and its latest order in the account's current epoch. (Ledgers written
before bars were one transaction may hold a bar whose quotes committed without its orders; the rules below
cover that too.) It replays the earlier bars into the strategy without trading (strategies decide from the bars
seen and the portfolio only), restores every symbol's quote as of that bar, and continues from it:

- the bar itself: its quotes are set again (same prices, same time: no new fill, since a quote that crossed a
  resting order already filled it); when it placed orders they are not decided again (a bar that placed none
  decides again, on the same holdings, and again places none);
- later bars, which a killed run may have partly done: their quotes are set again and the strategy decides
  again on the same portfolio (no order of the job was placed after that bar), so it decides the same
  orders; any that did commit are returned by ``client_order_id`` instead of being placed twice.

So the final cash, positions, fills and equity equal those of an uninterrupted run. A batch the broker
rejects (not enough cash, say) places nothing and is reported; deciding that bar again gives the same
rejection, so it cannot make a resumed run differ either. Resting orders (``sma-stops`` leaves
a gtc stop-loss after each entry) keep this exact: a later bar's quote that fills one moves the account's clock
to that bar, so a resumed run goes on from that bar, deciding it on the portfolio that holds the fill, as the
uninterrupted run did. An account reset starts a new epoch and hence a new job: the replay starts over.

A finished job (its last bar's quotes stored and nothing left to order there) run again takes no lock, opens
no broker and writes nothing: it only summarizes. Otherwise :func:`start_replay` takes the account's
``replay`` lock (ledger.jobs) before reading the resume point, so two replays of one account never interleave:
the lock is per account, not per job key, because two different jobs (another strategy or other bars) on one
account would trade against each other's positions and the resume check (no foreign orders) only sees
orders already committed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, and_, not_, or_, select

from ledger.bars import DatabaseBarCache
from ledger.book.accounts import open_account, validate_account_name
from ledger.book.store import AccountState, fills, find_account, find_run, orders
from ledger.book.validation import validate_bps, validate_cash
from ledger.brokers.data_provider import (
    DEFAULT_SYNTHETIC_SPREAD_BPS,
    DataProvider,
    OHLCV_COLUMNS,
    ReplayProvider,
    YFinanceProvider,
    read_replay_chunks,
    synthetic_quote,
)
from ledger.book.marks import Holdings
from ledger.brokers.paper import BrokerTransaction, PaperBroker
from ledger.config import get_cfg
from ledger.constants import ORDER_STOP, SIDE_BUY, SIDE_SELL
from ledger.db.engine import get_engine, read_transaction, resolve_db_url, translate_db_errors, write_transaction
from ledger.db.migrate import ensure_schema
from ledger.exceptions import LedgerError, OrderRejectedError
from ledger.jobs import JobLock, acquire_job_lock
from ledger.money import MAX_AMOUNT, SCALE_DIGITS, round_amount, to_decimal
from ledger.queries import (
    account_row, capital, fills_stmt, portfolio_value, position_rows, quotes_stmt, symbol_totals_stmt, total_return,
)
from ledger.reports import account_max_drawdown
from ledger.strategies import OrderIntent, Portfolio, get_strategy

Bars = dict[str, dict[str, float]]
Step = tuple[datetime, Bars]
JOB_PREFIX = "rp-"
# The job_locks key: one per account, whatever the strategy and bars, so two replays of one account never interleave.
REPLAY_LOCK = "replay"
_TIME_FORMAT = "%Y%m%dT%H%M%S.%fZ"


@dataclass(frozen=True)
class BarData:
    """The bars of a replay, one step per distinct time, prices rounded to the ledger's six decimals.

    Rounding makes a first run (fresh download) and its resumption (the same bars read back from the
    database cache) see identical numbers. ``fingerprint`` identifies the data in the job key. The steps are
    not held: :meth:`steps` reads them again, in time order (a bar file a chunk at a time, so memory stays flat
    however long the history); only the bar times and the symbols are kept.
    """

    source: str
    fingerprint: str
    timestamps: list[datetime]
    symbols: list[str]
    last_bars: Bars  # the bars of the last step
    _read: Callable[[], Iterator[Step]] = field(repr=False, compare=False)

    def steps(self) -> Iterator[Step]:
        """Every step ``(time, {symbol: {open, high, low, close, volume}})``, in time order."""
        return self._read()

    @classmethod
    def from_steps(cls, steps: Sequence[Step], source: str) -> BarData:
        if not steps:
            raise ValueError(f"{source}: no bars to replay")
        rounded = [
            (stamp, {symbol: {key: _six_places(value) for key, value in bar.items()} for symbol, bar in bars.items()})
            for stamp, bars in steps
        ]
        return cls._scanned(source, lambda: iter(rounded))

    @classmethod
    def from_file(cls, path: str | Path, source: str) -> BarData:
        """Bars streamed from a long CSV or Parquet file: read once here (fingerprint, times, symbols), then
        again by each :meth:`steps`; a file changed in between is an error, not another replay."""
        file = Path(path)
        version = _file_version(file)

        def read() -> Iterator[Step]:
            if _file_version(file) != version:
                raise LedgerError(f"{file} changed while it was being replayed; run the replay again")
            for chunk in read_replay_chunks(file):
                yield from _chunk_steps(chunk)

        return cls._scanned(source, read)

    @classmethod
    def _scanned(cls, source: str, read: Callable[[], Iterator[Step]]) -> BarData:
        digest = hashlib.sha256()
        timestamps: list[datetime] = []
        symbols: set[str] = set()
        bars: Bars = {}
        for stamp, bars in read():
            timestamps.append(stamp)
            symbols.update(bars)
            at = stamp.isoformat()
            digest.update("".join([f"{at}|{symbol}|{_sorted_items(bars[symbol])}\n" for symbol in sorted(bars)]).encode())
        if not timestamps:
            raise ValueError(f"{source}: no bars to replay")
        return cls(source, digest.hexdigest(), timestamps, sorted(symbols), bars, read)

    def describe(self) -> str:
        first, last = self.timestamps[0], self.timestamps[-1]
        return (
            f"{self.source}: {', '.join(self.symbols)}, {len(self.timestamps)} bars "
            f"{first:%Y-%m-%d} .. {last:%Y-%m-%d}"
        )


def _sorted_items(bar: dict[str, float]) -> str:
    """``str(sorted(bar.items()))`` (the fingerprint's form of a bar), written out for the usual OHLCV keys."""
    if bar.keys() != _OHLCV_KEYS:
        return str(sorted(bar.items()))
    return (f"[('close', {bar['close']!r}), ('high', {bar['high']!r}), ('low', {bar['low']!r}), "
            f"('open', {bar['open']!r}), ('volume', {bar['volume']!r})]")


_OHLCV_KEYS = frozenset(OHLCV_COLUMNS)


def _six_places(value: float) -> float:
    return float(round_amount(to_decimal(value, "bar value")))


def _six_places_array(values: np.ndarray) -> list[float]:
    """``_six_places`` of each value, exactly, without a Decimal for the values it leaves unchanged.

    ``np.round(v, 6) == v`` means ``v`` is the nearest double to a number of at most six decimals, so its
    ``repr`` has at most six and the Decimal rounding gives ``v`` back; the other values (and any out of the
    ledger's range, which ``to_decimal`` refuses) take the Decimal path.
    """
    unchanged = (np.round(values, SCALE_DIGITS) == values) & (np.abs(values) < float(MAX_AMOUNT))
    result = values.tolist()
    for index in np.flatnonzero(~unchanged).tolist():
        result[index] = _six_places(result[index])
    return result


def _chunk_steps(chunk: pd.DataFrame) -> Iterator[Step]:
    """The steps of a validated chunk of bars (whole timestamps, in time order, symbols sorted within one)."""
    columns = [_six_places_array(chunk[column].to_numpy(dtype="float64")) for column in OHLCV_COLUMNS]
    rows = list(zip(*columns))
    symbols = chunk["symbol"].tolist()
    times = chunk["timestamp"]
    values = times.array.asi8  # the times as integers: comparing them costs no Timestamp objects
    starts = np.flatnonzero(np.concatenate(([True], values[1:] != values[:-1]))).tolist()
    for start, end in zip(starts, [*starts[1:], len(values)]):
        yield times.iloc[start].to_pydatetime(), {
            symbols[index]: dict(zip(OHLCV_COLUMNS, rows[index])) for index in range(start, end)
        }


def _file_version(path: Path) -> tuple[int, int]:
    status = path.stat()
    return status.st_size, status.st_mtime_ns


def load_bar_file(path: str | Path, label: str | None = None) -> BarData:
    """Bars from a CSV or Parquet file (``timestamp, symbol, open, high, low, close, volume``), streamed."""
    return BarData.from_file(path, label or str(path))


def fetch_bar_data(
    symbols: Sequence[str], start: str, end: str, db_url: str | None, provider: DataProvider | None = None
) -> BarData:
    """Daily bars of ``symbols`` with start <= time < end from Yahoo Finance, cached in the ledger database.

    A second call with the same window reads the ``bars`` table instead of the network, so a re-run
    (a resumed replay, say) replays exactly the same data.
    """
    if not symbols:
        raise ValueError("--symbols needs at least one symbol")
    source = provider or YFinanceProvider(bar_cache=DatabaseBarCache(db_url))
    frames = [
        source.get_history(symbol, start, end).rename_axis("timestamp").reset_index().assign(symbol=symbol)
        for symbol in symbols
    ]
    long = pd.concat(frames, ignore_index=True).sort_values(["timestamp", "symbol"], kind="stable")
    steps = list(ReplayProvider(long).bars())
    return BarData.from_steps(steps, f"Yahoo Finance daily bars {start} .. {end}")


class MarketClock:
    """The broker's clock during a replay: it reads the time of the bar being replayed (market time)."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def job_key(account: str, epoch: int, strategy: str, fingerprint: str) -> str:
    """Identifies one replay job: same account epoch, strategy and bars -> same key -> resumable."""
    digest = hashlib.sha256("\x1f".join((account, str(epoch), strategy, fingerprint)).encode()).hexdigest()
    return JOB_PREFIX + digest[:16]


def client_order_id(key: str, stamp: datetime, symbol: str, side: str) -> str:
    """The deterministic id of the job's order for ``symbol`` and ``side`` at bar ``stamp`` (<= 80 characters)."""
    return f"{key}:{stamp.strftime(_TIME_FORMAT)}:{symbol}:{side}"


def bar_quote(symbol: str, bar: dict[str, float], stamp: datetime) -> tuple[Decimal, Decimal]:
    """The quote a bar becomes: a synthetic spread around its close, rounded as the ledger stores it."""
    close = bar["close"]
    if not 0 < close < _ONE_ROUNDING_BELOW:
        quote = synthetic_quote(symbol, close, stamp, DEFAULT_SYNTHETIC_SPREAD_BPS)
        return round_amount(to_decimal(quote["bid"], "bid")), round_amount(to_decimal(quote["ask"], "ask"))
    # synthetic_quote's prices, rounded once: it rounds them to six places as floats and they are rounded
    # again here, but below 10^9 a number of six decimals has at most 15 digits, so its float's repr is that
    # number again and the second rounding changes nothing.
    half = close * DEFAULT_SYNTHETIC_SPREAD_BPS / 20_000.0
    return round_amount(Decimal(repr(close - half))), round_amount(Decimal(repr(close + half)))


_ONE_ROUNDING_BELOW = 1e9


@dataclass(frozen=True)
class ResumePoint:
    """Where a job (re)starts: the first bar to handle, and whether that bar's orders are already placed."""

    index: int
    orders_placed: bool
    run_id: str | None

    @property
    def resumed(self) -> bool:
        """True when an earlier run of the job stored something (the job goes on rather than starts)."""
        return self.index > 0 or self.orders_placed


def find_resume_point(conn: Connection, account: AccountState, key: str, data: BarData) -> ResumePoint:
    """Where the job goes on: the bar at the account's clock, or the bar of the job's latest order when that is
    the same bar (its orders are placed: it is not decided again). Bar 0 for a fresh account.

    Broker time never goes backwards, so a killed run resumes at the last bar it stored anything for (its
    quotes may have run ahead of its orders); the bars before it only feed the strategy.
    """
    in_epoch = and_(orders.c.account_id == account.id, orders.c.epoch == account.epoch)
    is_job_order = orders.c.client_order_id.startswith(f"{key}:", autoescape=True)
    foreign = conn.execute(
        select(orders.c.order_id).where(in_epoch, or_(orders.c.client_order_id.is_(None), not_(is_job_order))).limit(1)
    ).first()
    if foreign is not None:
        raise LedgerError(
            f"account {account.name!r} holds orders this replay did not place (e.g. {foreign.order_id}); "
            "replay into another account (a reset keeps the account's clock, so older bars cannot be replayed into it)"
        )
    clock_bar = max(
        (index for index, stamp in enumerate(data.timestamps) if stamp <= account.clock_at), default=0
    )
    latest = conn.execute(
        select(orders.c.client_order_id, orders.c.run_id).where(in_epoch, is_job_order).order_by(orders.c.id.desc()).limit(1)
    ).first()
    if latest is None:
        return ResumePoint(clock_bar, False, None)
    bar_time = latest.client_order_id.split(":")[1]
    indexes = {stamp.strftime(_TIME_FORMAT): index for index, stamp in enumerate(data.timestamps)}
    if bar_time not in indexes:
        raise LedgerError(f"order {latest.client_order_id} of this job names a bar the data does not have")
    order_bar = indexes[bar_time]
    return ResumePoint(max(order_bar, clock_bar), order_bar >= clock_bar, latest.run_id)


@dataclass(frozen=True)
class StepReport:
    """Progress of one bar, for the caller's progress display."""

    index: int
    total: int
    timestamp: datetime
    traded: bool  # False: the bar was done before (resume), it only fed the strategy
    orders: int
    rejected: str | None


@dataclass(frozen=True)
class ReplaySummary:
    """The outcome of a replay, computed from the ledger (so a resumed run reports the same as a single run)."""

    account: str
    strategy: str
    job: str
    run_id: str | None
    bars: int
    resumed_at: int | None
    already_finished: bool
    initial_cash: Decimal
    equity: Decimal
    total_return: Decimal
    max_drawdown: Decimal
    trades: int
    fees: Decimal
    traded_notional: Decimal
    turnover: Decimal


@dataclass(frozen=True)
class Costs:
    """Slippage and fee (bps) of a replay's run: given explicitly for a new run, else the run's or the config's."""

    slippage_bps: Decimal | None = None
    fee_bps: Decimal | None = None


@dataclass(frozen=True)
class ReplayJob:
    """One replay job: the bars, the account and strategy, its key, where it (re)starts, and its lock.

    ``finished``: every bar is done; running it writes nothing and only summarizes (no lock is taken).
    """

    data: BarData
    account: str
    strategy: str
    db_url: str
    key: str
    resume: ResumePoint
    finished: bool
    costs: Costs
    lock: JobLock | None


@contextmanager
def start_replay(
    data: BarData,
    *,
    account: str,
    strategy: str,
    db_url: str | None = None,
    initial_cash: Decimal | None = None,
    costs: Costs = Costs(),
    force_unlock: bool = False,
) -> Iterator[ReplayJob]:
    """The job, with its progress read from the ledger, holding the account's replay lock until the block exits.

    A finished job is found in a read transaction and yielded without a lock: nothing is written. Otherwise,
    in one write transaction: the account is created on first use (at the first bar's time, with
    ``initial_cash`` or the configured default), the ``replay`` job lock is taken (JobLockedError when another
    live replay holds it; see ledger.jobs), and the resume point is read under the lock. The lock is released
    when the block exits, by an exception or KeyboardInterrupt too; a killed process leaves it for the next run
    to take over (same host, pid gone) or for ``force_unlock``.
    """
    get_strategy(strategy)
    name = validate_account_name(account)
    explicit_cash = None if initial_cash is None else validate_cash(initial_cash)
    costs = Costs(*(None if bps is None else validate_bps(bps, what)
                    for bps, what in ((costs.slippage_bps, "slippage_bps"), (costs.fee_bps, "fee_bps"))))
    url = resolve_db_url(db_url)
    engine = get_engine(url)
    ensure_schema(engine)
    with translate_db_errors(engine), engine.connect() as conn:
        with read_transaction(conn):
            state = find_account(conn, name)
            progress = None if state is None else _progress(conn, state, strategy, data, costs)
        if progress is None or not progress[2]:
            with write_transaction(conn):
                state = open_account(conn, name, explicit_cash, validate_cash(get_cfg("initial_cash")), data.timestamps[0])
                lock: JobLock | None = acquire_job_lock(conn, state.id, name, REPLAY_LOCK, force=force_unlock)
                progress = _progress(conn, state, strategy, data, costs)
        else:
            lock = None
    key, resume, finished = progress
    try:
        yield ReplayJob(data, name, strategy, url, key, resume, finished, costs, lock)
    finally:
        if lock is not None:
            lock.release()


def _progress(
    conn: Connection, state: AccountState, strategy: str, data: BarData, costs: Costs
) -> tuple[str, ResumePoint, bool]:
    """The job's key, its resume point, and whether it is finished, from the account's current epoch."""
    key = job_key(state.name, state.epoch, strategy, data.fingerprint)
    resume = find_resume_point(conn, state, key, data)
    return key, resume, _is_finished(conn, state, strategy, data, resume, costs)


def _is_finished(
    conn: Connection, state: AccountState, strategy: str, data: BarData, resume: ResumePoint, costs: Costs
) -> bool:
    """Whether the last bar is done: its orders placed, or its quotes all stored and nothing left to order.

    A run killed between the last bar's quotes and its orders leaves the same quotes; deciding that bar
    again (read-only, on the same portfolio) tells the two apart. A last batch the broker rejected reads as
    not finished: the next run tries it again (rejected again, nothing placed).
    """
    last = len(data.timestamps) - 1
    if resume.orders_placed and resume.index == last:
        return True
    stamp, bars = data.timestamps[last], data.last_bars
    stored = {row.symbol: row for row in conn.execute(quotes_stmt(state.id))}
    quotes = {symbol: bar_quote(symbol, bars[symbol], stamp) for symbol in sorted(bars)}
    for symbol, (bid, ask) in quotes.items():
        row = stored.get(symbol)
        if row is None or row.quoted_at != stamp or (row.bid_e6, row.ask_e6) != (bid, ask):
            return False
    trader = get_strategy(strategy)
    for step_stamp, step_bars in data.steps():
        trader.observe(step_stamp, step_bars)
    if resume.run_id is not None:
        run = find_run(conn, resume.run_id)
        slippage, fee = run.slippage_bps_e6, run.fee_bps_e6
    else:
        slippage = costs.slippage_bps if costs.slippage_bps is not None else validate_bps(
            get_cfg("slippage_bps"), "slippage_bps")
        fee = costs.fee_bps if costs.fee_bps is not None else validate_bps(get_cfg("fee_bps"), "fee_bps")
    return not trader.decide(stamp, ledger_portfolio(conn, state.id, quotes, slippage, fee))


def run_replay(job: ReplayJob, *, on_step: Callable[[StepReport], None] | None = None) -> ReplaySummary:
    """Run ``job`` (from :func:`start_replay`) from its resume point to the last bar; returns its summary.

    ``on_step`` sees each bar. A finished job only summarizes: no broker is opened, nothing is written.
    """
    if job.finished:
        return summarize(job, job.resume.run_id)
    if job.lock is None:
        raise LedgerError("a replay runs only inside start_replay(), which holds the account's replay lock")
    trader = get_strategy(job.strategy)
    resume, total = job.resume, len(job.data.timestamps)
    clock = MarketClock(job.data.timestamps[resume.index])
    with PaperBroker(
        account=job.account, db_url=job.db_url, clock=clock, run_id=resume.run_id,
        slippage_bps=job.costs.slippage_bps, fee_bps=job.costs.fee_bps,
    ) as broker:
        for index, (stamp, bars) in enumerate(job.data.steps()):
            trader.observe(stamp, bars)
            if index < resume.index:
                _report(on_step, StepReport(index, total, stamp, False, 0, None))
                continue
            job.lock.heartbeat()
            already_decided = index == resume.index and resume.orders_placed
            clock.now = stamp
            quotes = {symbol: bar_quote(symbol, bars[symbol], stamp) for symbol in sorted(bars)}
            placed, rejected = 0, None
            with broker.transaction() as bar:  # the whole bar: one transaction, one commit
                bar.set_quotes(quotes)  # the bar's quotes and the fills they make
                if not already_decided:
                    portfolio = holdings_portfolio(bar.holdings(), quotes, broker.slippage_bps, broker.fee_bps)
                    placed, rejected = _submit(bar, job.key, stamp, trader.decide(stamp, portfolio))
                bar.mark_equity()  # the bar's close marked to market: the equity curve and drawdown read these
            _report(on_step, StepReport(index, total, stamp, True, placed, rejected))
        run_id = broker.run_id
    return summarize(job, run_id)


def _report(on_step: Callable[[StepReport], None] | None, report: StepReport) -> None:
    if on_step is not None:
        on_step(report)


def ledger_portfolio(
    conn: Connection,
    account_id: int,
    quotes: dict[str, tuple[Decimal, Decimal]],
    slippage_bps: Decimal | float,
    fee_bps: Decimal | float,
) -> Portfolio:
    """What the strategy is shown at a bar, read from the ledger outside a bar's transaction (as
    :func:`holdings_portfolio` shows it inside one: the same figures)."""
    account = account_row(conn, account_id)
    held = position_rows(conn, account_id)
    holdings = Holdings(
        account.cash_e6 - account.reserved_cash_e6,
        portfolio_value(conn, account_id, account, held),
        {row.symbol: row.qty_e6 for row in held},
    )
    return holdings_portfolio(holdings, quotes, slippage_bps, fee_bps)


def holdings_portfolio(
    holdings: Holdings, quotes: dict[str, tuple[Decimal, Decimal]], slippage_bps: Decimal | float, fee_bps: Decimal | float
) -> Portfolio:
    """The strategy's view of the account (floats, as the broker protocol returns them; positions in symbol
    order, whatever order the engine read them in)."""
    return Portfolio(
        cash=float(holdings.available_cash),
        equity=float(holdings.equity),
        positions={symbol: float(qty) for symbol, qty in sorted(holdings.positions.items())},
        quotes={symbol: (float(bid), float(ask)) for symbol, (bid, ask) in quotes.items()},
        slippage_bps=float(slippage_bps),
        fee_bps=float(fee_bps),
    )


def _submit(bar: BrokerTransaction, key: str, stamp: datetime, intents: list[OrderIntent]) -> tuple[int, str | None]:
    """Place the bar's orders, whole or not at all; a rejection is reported, not raised, and the bar goes on.

    A market sell first cancels the symbol's resting sells (a stop-loss holds the shares it would sell); the
    cancels and the orders stand or fall together, so a rejected batch leaves the stop-loss in place.
    """
    if not intents:
        return 0, None
    exits = sorted({intent.symbol for intent in intents if intent.side == SIDE_SELL and intent.stop_price is None})
    batch: list[dict[str, Any]] = [
        {
            "symbol": intent.symbol,
            "side": intent.side,
            "qty": intent.qty,
            "client_order_id": client_order_id(key, stamp, intent.symbol, intent.side),
            **({} if intent.stop_price is None else {"order_type": ORDER_STOP, "stop_price": intent.stop_price}),
        }
        for intent in intents
    ]
    try:
        with bar.all_or_nothing():
            for order in bar.open_orders(exits) if exits else ():
                if order["side"] == SIDE_SELL:
                    bar.cancel_order(order["order_id"])
            bar.submit_orders(batch)  # an entry and its stop-loss commit together (see the docstring)
    except OrderRejectedError as exc:
        return 0, str(exc)
    return len(batch), None


def summarize(job: ReplayJob, run_id: str | None) -> ReplaySummary:
    """The replay's figures, read from the ledger: equity, return, the account's max drawdown (as
    ``paper-ledger report`` shows it: ledger.reports.account_max_drawdown), and the trades, fees and traded
    notional of the account's epoch from its positions' fill totals (one row per symbol, not the fills)."""
    engine = get_engine(job.db_url)
    with translate_db_errors(engine), engine.connect() as conn, read_transaction(conn):
        state = find_account(conn, job.account)
        assert state is not None, "the replay's broker created the account"
        initial_cash = state.initial_cash
        invested = capital(conn, state.id)
        equity = portfolio_value(conn, state.id)
        drawdown = account_max_drawdown(conn, job.account)
        totals = conn.execute(symbol_totals_stmt(state.id)).all()
    notional = sum((row.notional_e6 for row in totals), Decimal(0))
    return ReplaySummary(
        account=job.account,
        strategy=job.strategy,
        job=job.key,
        run_id=run_id,
        bars=len(job.data.timestamps),
        resumed_at=job.resume.index if job.resume.resumed else None,
        already_finished=job.finished,
        initial_cash=initial_cash,
        equity=equity,
        total_return=total_return(equity, invested) or Decimal(0),
        max_drawdown=drawdown,
        trades=sum(row.fill_count for row in totals),
        fees=sum((row.fee_e6 for row in totals), Decimal(0)),
        traded_notional=notional,
        turnover=notional / initial_cash if initial_cash else Decimal(0),
    )


def equity_curve(job: ReplayJob) -> list[tuple[datetime, Decimal]]:
    """The account's equity at each bar of the job: cash and holdings from the ledger's fills, marked at each
    bar's quote mid. The fills are read alongside the bars (a long replay makes tens of thousands), not held."""
    engine = get_engine(job.db_url)
    with translate_db_errors(engine), engine.connect() as conn, read_transaction(conn):
        state = find_account(conn, job.account)
        if state is None:
            raise LedgerError(f"account {job.account!r} does not exist")
        # Only the columns the curve needs, read as the bars go.
        columns = ("filled_at", "symbol", "side", "qty_e6", "notional_e6", "fee_e6")
        rows = conn.execute(fills_stmt(state.id).with_only_columns(*(fills.c[name] for name in columns)))
        fill = next(rows, None)
        cash = state.initial_cash
        held: dict[str, Decimal] = {}
        marks: dict[str, Decimal] = {}
        curve: list[tuple[datetime, Decimal]] = []
        for stamp, bars in job.data.steps():
            while fill is not None and fill.filled_at <= stamp:
                buy = fill.side == SIDE_BUY
                cash += -(fill.notional_e6 + fill.fee_e6) if buy else fill.notional_e6 - fill.fee_e6
                held[fill.symbol] = held.get(fill.symbol, Decimal(0)) + (fill.qty_e6 if buy else -fill.qty_e6)
                fill = next(rows, None)
            for symbol, bar in bars.items():
                bid, ask = bar_quote(symbol, bar, stamp)
                marks[symbol] = (bid + ask) / 2
            curve.append((stamp, cash + sum((qty * marks[symbol] for symbol, qty in held.items()), Decimal(0))))
    return curve
