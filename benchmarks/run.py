"""The benchmark harness: ``python -m benchmarks.run [--quick]`` prints the issue's table of measured ratios.

Every order figure is measured in the same run as its references (``benchmarks.references``: the seed's
in-memory design and the raw-driver floors, on the ledger's schema and on a minimal one), interleaved within
each repetition, and reported as the median of the repetitions; the market order also reports each durable side's
WAL bytes per order (``wal_growth``). Absolute times on a shared machine mean little; the ratios are the result. ``--quick`` runs
tiny sizes in seconds (CI smoke run; its numbers mean nothing). Large-ledger figures use a cached million-fill
ledger (``benchmarks.bigledger``); opening and exporting run in child processes so that a fresh interpreter's
open time and peak RSS are what is measured.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.references import FloorLedger, MinimalFloor, SeedBroker, open_sqlite_floor
from ledger.exceptions import OrderRejectedError

REPO_ROOT = Path(__file__).resolve().parent.parent
SYMBOLS = ("AAPL", "MSFT", "NVDA", "AMZN")
QUOTES = {symbol: (100.0 + 10 * i, 100.05 + 10 * i) for i, symbol in enumerate(SYMBOLS)}
INITIAL_CASH = 100_000_000
SLIPPAGE_BPS, FEE_BPS = 5, 1
FIGURES = ("market", "batch", "quote", "quotes", "replay", "open", "audit", "export", "pg", "service")
OPT_IN = ("sweep",)  # run only when named in --only (minutes of replays)


@dataclass(frozen=True)
class Sizes:
    orders: int  # orders per repetition of the market-order figure (and of the batch figure)
    reps: int
    batch: int  # orders per submit_orders() call
    resting: int  # resting limit orders one quote update fills
    resting_rounds: int  # quote updates per repetition
    fills: int  # fills in the large ledger
    open_reps: int


FULL = Sizes(orders=2000, reps=5, batch=500, resting=100, resting_rounds=20, fills=1_000_000, open_reps=5)
QUICK = Sizes(orders=40, reps=2, batch=20, resting=10, resting_rounds=2, fills=2_000, open_reps=1)


@dataclass
class Row:
    figure: str
    ours: str
    reference: str
    ratio: str
    target: str
    verdict: str


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, figure: str, ours: str, reference: str, ratio: str, target: str, met: bool | None) -> None:
        verdict = "report" if met is None else ("met" if met else "MISSED")
        self.rows.append(Row(figure, ours, reference, ratio, target, verdict))
        print(f"  -> {figure}: {ours} | {reference} | {ratio} | {verdict}", flush=True)

    def table(self) -> str:
        header = Row("figure", "ours", "reference (same run)", "ratio", "target", "verdict")
        rows = [header, Row(*["---"] * 6), *self.rows]
        return "\n".join("| " + " | ".join(vars(row).values()) + " |" for row in rows)


def order_mix(count: int) -> list[tuple[str, str, int]]:
    """Round trips of 10 shares over four symbols: BUY then SELL, so positions and cash stay bounded."""
    return [(SYMBOLS[(i // 2) % len(SYMBOLS)], "BUY" if i % 2 == 0 else "SELL", 10) for i in range(count)]


def us(seconds: float) -> str:
    return f"{seconds * 1e6:,.1f} us"


@contextmanager
def scratch_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="ledger-bench-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def open_broker(db_url: str, **kwargs: Any) -> Any:
    from ledger.brokers.paper import PaperBroker

    broker = PaperBroker(
        db_url=db_url, initial_cash=INITIAL_CASH, slippage_bps=SLIPPAGE_BPS, fee_bps=FEE_BPS, **kwargs
    )
    for symbol, (bid, ask) in QUOTES.items():
        broker.set_quote(symbol, bid, ask)
    return broker


def time_calls(call: Callable[..., Any], mix: list[tuple[str, str, int]]) -> float:
    """Seconds per call of ``call(symbol, side, qty)`` over the mix."""
    started = time.perf_counter()
    for symbol, side, qty in mix:
        call(symbol, side, qty)
    return (time.perf_counter() - started) / len(mix)


# -- market orders, one transaction each ----------------------------------------------------------------------
TURN = 100  # orders per turn: ours and the references take turns, so that load on the machine hits them alike


def interleaved(mix: list[tuple[str, str, int]], calls: dict[str, Callable[..., Any]]) -> dict[str, float]:
    """Seconds per order of each ``call(symbol, side, qty)`` over the mix, the calls taking turns of TURN orders."""
    spent = dict.fromkeys(calls, 0.0)
    for start in range(0, len(mix), TURN):
        turn = mix[start : start + TURN]
        for name, call in calls.items():
            spent[name] += time_calls(call, turn) * len(turn)
    return {name: total / len(mix) for name, total in spent.items()}


def open_floor(connect: Callable[[], Any], db_url: str) -> FloorLedger:
    """Floor on the same schema: the ledger creates schema, account and run; the raw driver does the writes.

    Open it before the broker it is compared with (it disposes the process's engines).
    """
    from ledger.db.engine import dispose_engines

    broker = open_broker(db_url)
    account_id, run_id = broker.account_id, broker.run_id
    try:  # a broker writes its run with its first order: a recorded (rejected) order, no balance changes
        broker.submit_order("FLOOR", "BUY", 0)
    except OrderRejectedError:
        pass
    broker.close()
    dispose_engines()
    floor = FloorLedger(
        connect(), account_id=account_id, run_id=run_id, cash_e6=INITIAL_CASH * 1_000_000,
        slippage_bps=SLIPPAGE_BPS, fee_bps=FEE_BPS,
    )
    for symbol, (bid, ask) in QUOTES.items():
        floor.set_quote(symbol, bid, ask)
    return floor


def open_minimal(path: Path) -> MinimalFloor:
    """The minimal floor on a fresh database of its own, with the same cash, costs and quotes."""
    minimal = MinimalFloor(open_sqlite_floor(path), cash_e6=INITIAL_CASH * 1_000_000,
                           slippage_bps=SLIPPAGE_BPS, fee_bps=FEE_BPS)
    for symbol, (bid, ask) in QUOTES.items():
        minimal.set_quote(symbol, bid, ask)
    return minimal


def open_seed(log_dir: Path) -> SeedBroker:
    seed = SeedBroker(log_dir, initial_cash=INITIAL_CASH, slippage_bps=SLIPPAGE_BPS, fee_bps=FEE_BPS)
    for symbol, (bid, ask) in QUOTES.items():
        seed.set_quote(symbol, bid, ask)
    return seed


WAL_ORDERS = 200  # orders of each side's WAL measurement, after its timed orders
WAL_HEADER, WAL_FRAME_HEADER = 32, 24


@dataclass(frozen=True)
class WalGrowth:
    bytes_per_order: float
    pages_per_order: float

    def __str__(self) -> str:
        return f"WAL {self.bytes_per_order / 1024:.1f} KiB ({self.pages_per_order:.1f} pages)/order"


def wal_growth(connection: sqlite3.Connection, call: Callable[..., Any], mix: list[tuple[str, str, int]]) -> WalGrowth:
    """WAL bytes appended per order by ``call(symbol, side, qty)`` over ``mix``, ``connection`` being the one that
    writes: a TRUNCATE checkpoint empties the WAL, automatic checkpoints are off on that connection while the
    orders run (no other connection writes or checkpoints), so the file's size, less its 32-byte header, is
    every frame the commits wrote (page size + 24 bytes each)."""
    database = Path(connection.execute("PRAGMA database_list").fetchone()[2])
    page_size = connection.execute("PRAGMA page_size").fetchone()[0]
    busy, _, _ = connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    wal = Path(f"{database}-wal")
    assert busy == 0 and wal.stat().st_size == 0, f"could not empty {wal}"
    automatic = connection.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
    connection.execute("PRAGMA wal_autocheckpoint = 0")
    try:
        for symbol, side, qty in mix:
            call(symbol, side, qty)
        grown = wal.stat().st_size - WAL_HEADER
    finally:
        connection.execute(f"PRAGMA wal_autocheckpoint = {automatic}")
    return WalGrowth(grown / len(mix), grown / (page_size + WAL_FRAME_HEADER) / len(mix))


def market_rep(mix: list[tuple[str, str, int]], ours_url: str, floor: FloorLedger, *,
               minimal: MinimalFloor | None = None, seed: SeedBroker | None = None,
               wal_mix: list[tuple[str, str, int]] | None = None) -> tuple[dict[str, float], dict[str, WalGrowth]]:
    """One repetition: ours on ``ours_url`` against the floor (and the minimal floor and the seed), interleaved;
    seconds per order. With ``wal_mix`` (SQLite), then each durable side's WAL growth over those orders."""
    from ledger.db.engine import dispose_engines

    broker = open_broker(ours_url)
    calls = {"ours": broker.submit_order, "floor": floor.submit_order}
    if minimal is not None:
        calls["minimal"] = minimal.submit_order
    if seed is not None:
        calls["seed"] = seed.submit_order
    wal: dict[str, WalGrowth] = {}
    try:
        times = interleaved(mix, calls)
        if wal_mix:
            # The broker's own connection is the one its writes go through (it holds it for its lifetime).
            wal["ours"] = wal_growth(broker._connection().connection.driver_connection, broker.submit_order, wal_mix)
            wal["floor"] = wal_growth(floor.db, floor.submit_order, wal_mix)
            if minimal is not None:
                wal["minimal"] = wal_growth(minimal.db, minimal.submit_order, wal_mix)
        assert broker.verify() == [], "the benchmark left an inconsistent ledger"
    finally:
        broker.close()
        floor.db.close()
        if minimal is not None:
            minimal.db.close()
        dispose_engines()
    return times, wal


def median_ratio(numerators: list[float], denominators: list[float]) -> float:
    """Median over repetitions of the ratio measured within each repetition (robust to load drifting between them)."""
    return statistics.median(n / d for n, d in zip(numerators, denominators))


def median_wal(samples: list[WalGrowth]) -> WalGrowth:
    return WalGrowth(statistics.median(s.bytes_per_order for s in samples),
                     statistics.median(s.pages_per_order for s in samples))


def bench_market(sizes: Sizes, report: Report) -> float:
    mix = order_mix(sizes.orders)
    sides = ("ours", "floor", "minimal", "seed")
    times: dict[str, list[float]] = {side: [] for side in sides}
    wal: dict[str, list[WalGrowth]] = {side: [] for side in sides[:3]}
    for rep in range(sizes.reps):
        with scratch_dir() as tmp:
            floor_ledger = open_floor(lambda: open_sqlite_floor(tmp / "floor.db"), f"sqlite:///{tmp / 'floor.db'}")
            rep_times, rep_wal = market_rep(
                mix, f"sqlite:///{tmp / 'ours.db'}", floor_ledger, minimal=open_minimal(tmp / "minimal.db"),
                seed=open_seed(tmp / "seed-logs"), wal_mix=mix[:WAL_ORDERS],
            )
        for side, samples in times.items():
            samples.append(rep_times[side])
        for side, growths in wal.items():
            growths.append(rep_wal[side])
        print(f"  rep {rep + 1}: " + ", ".join(f"{side} {us(times[side][-1])}" for side in sides) + "; "
              + ", ".join(f"{side} {rep_wal[side]}" for side in wal), flush=True)
    ours_m, floor_m, minimal_m, seed_m = (statistics.median(times[side]) for side in sides)
    ours_wal, floor_wal, minimal_wal = (median_wal(wal[side]) for side in ("ours", "floor", "minimal"))
    vs_floor, vs_minimal = median_ratio(times["ours"], times["floor"]), median_ratio(times["ours"], times["minimal"])
    vs_seed = median_ratio(times["ours"], times["seed"])
    label = f"market order, 1 tx each, SQLite ({sizes.orders:,} orders x {sizes.reps})"
    ours_text = f"{us(ours_m)}; {ours_wal}"
    report.add(label + " vs floor (same schema)", ours_text, f"floor {us(floor_m)}; {floor_wal}",
               f"{vs_floor:.2f}x (WAL {ours_wal.bytes_per_order / floor_wal.bytes_per_order:.2f}x)", "<= 1.3x",
               vs_floor <= 1.3)
    report.add(label + " vs minimal floor", ours_text, f"minimal floor {us(minimal_m)}; {minimal_wal}",
               f"{vs_minimal:.2f}x (WAL {ours_wal.bytes_per_order / minimal_wal.bytes_per_order:.2f}x)", "<= 4x",
               vs_minimal <= 4)
    report.add(label + " vs seed", us(ours_m), f"seed {us(seed_m)}", f"{vs_seed:.2f}x", "<= 4x", vs_seed <= 4)
    return ours_m


# -- submit_orders: one transaction for a whole batch --------------------------------------------------------
def as_dicts(mix: list[tuple[str, str, int]]) -> list[dict[str, Any]]:
    return [{"symbol": symbol, "side": side, "qty": qty} for symbol, side, qty in mix]


def bench_batch(sizes: Sizes, report: Report) -> None:
    from ledger.db.engine import dispose_engines

    mix = order_mix(sizes.orders)
    chunks = [mix[i : i + sizes.batch] for i in range(0, len(mix), sizes.batch)]
    singles, batched, floor_batched = [], [], []
    for rep in range(sizes.reps):
        with scratch_dir() as tmp:
            broker = open_broker(f"sqlite:///{tmp / 'ledger.db'}")
            try:
                singles.append(time_calls(broker.submit_order, mix))
                started = time.perf_counter()
                for chunk in chunks:
                    broker.submit_orders(as_dicts(chunk))
                batched.append((time.perf_counter() - started) / len(mix))
                assert broker.verify() == []
            finally:
                broker.close()
                dispose_engines()
            floor = open_floor(lambda: open_sqlite_floor(tmp / "floor.db"), f"sqlite:///{tmp / 'floor.db'}")
            try:
                started = time.perf_counter()
                for chunk in chunks:
                    floor.submit_orders(chunk)
                floor_batched.append((time.perf_counter() - started) / len(mix))
            finally:
                floor.db.close()
        print(f"  rep {rep + 1}: single {us(singles[-1])}/order, batch {us(batched[-1])}/order, "
              f"floor batch {us(floor_batched[-1])}/order", flush=True)
    single_m, batch_m, floor_m = (statistics.median(values) for values in (singles, batched, floor_batched))
    speedup = median_ratio(singles, batched)
    report.add(
        f"submit_orders(): {sizes.batch} orders in 1 tx, per order",
        us(batch_m), f"{sizes.batch} single submits {us(single_m)}", f"{speedup:.1f}x faster",
        ">= 20x faster", speedup >= 20,
    )
    report.add(
        f"submit_orders(): {sizes.batch} orders in 1 tx vs the floor's batch",
        us(batch_m), f"floor, {sizes.batch} orders in 1 tx {us(floor_m)}",
        f"{median_ratio(batched, floor_batched):.2f}x floor", "(reported)", None,
    )


# -- a quote update filling resting limit orders --------------------------------------------------------------
def bench_quote(sizes: Sizes, report: Report) -> None:
    from ledger.db.engine import dispose_engines

    symbol = "AAPL"
    bid, ask = QUOTES[symbol]
    market_batch = [{"symbol": symbol, "side": "BUY", "qty": 10}] * sizes.resting
    quote_times, batch_times = [], []
    for rep in range(sizes.reps):
        with scratch_dir() as tmp:
            broker = open_broker(f"sqlite:///{tmp / 'ledger.db'}")
            try:
                crossing, batch = [], []
                for _ in range(sizes.resting_rounds):
                    broker.submit_orders(
                        [{"symbol": symbol, "side": "BUY", "qty": 10, "order_type": "limit", "limit_price": bid - 1}]
                        * sizes.resting
                    )
                    started = time.perf_counter()
                    fills = broker.set_quote(symbol, bid - 1.5, bid - 1.0)
                    crossing.append(time.perf_counter() - started)
                    assert len(fills) == sizes.resting, f"the quote filled {len(fills)} of {sizes.resting} resting orders"
                    broker.set_quote(symbol, bid, ask)
                    started = time.perf_counter()
                    broker.submit_orders(market_batch)
                    batch.append(time.perf_counter() - started)
                assert broker.verify() == []
            finally:
                broker.close()
                dispose_engines()
        quote_times.append(statistics.median(crossing))
        batch_times.append(statistics.median(batch))
        print(f"  rep {rep + 1}: quote filling {sizes.resting} {us(quote_times[-1])}, "
              f"batch of {sizes.resting} market {us(batch_times[-1])}", flush=True)
    quote_m, batch_m = statistics.median(quote_times), statistics.median(batch_times)
    ratio = median_ratio(quote_times, batch_times)
    report.add(
        f"quote update filling {sizes.resting} resting limits (1 tx)",
        us(quote_m), f"submit_orders() of {sizes.resting} market {us(batch_m)}", f"{ratio:.2f}x", "<= 2x", ratio <= 2,
    )


# -- the replay vs backtrader; quotes single vs batch vs the raw driver ----------------------------------------
def bench_replay(report: Report, sizes: tuple[tuple[int, int], ...]) -> None:
    from benchmarks.replay import backtrader_available, measure_replay

    if not backtrader_available():
        print("  backtrader is not installed (pip install -e '.[bench]'): our side only", flush=True)
    for symbols, bars in sizes:
        with scratch_dir() as tmp:
            figures = measure_replay(tmp, symbols, bars)
        ours, theirs = figures.ours, figures.backtrader
        print(f"  {symbols} x {bars}: ours {ours}; backtrader {theirs}", flush=True)
        mine = f"{ours['seconds']:.1f} s, {ours['peak_rss_mb']:.0f} MB, {ours['trades']:,} trades, equity {ours['equity']:,.0f}"
        if theirs is None:
            report.add(f"replay {symbols} x {bars} daily bars, sma-crossover", mine, "backtrader not installed", "-",
                       "< 0.5x backtrader", None)
            continue
        ratio = ours["seconds"] / theirs["seconds"]
        report.add(
            f"replay {symbols} x {bars} daily bars, sma-crossover (fresh process each)", mine,
            f"backtrader {theirs['seconds']:.1f} s, {theirs['peak_rss_mb']:.0f} MB, {theirs['trades']:,} trades, "
            f"equity {theirs['equity']:,.0f}",
            f"{ratio:.2f}x", "< 0.5x backtrader, < 300 MB", ratio < 0.5 and ours["peak_rss_mb"] < 300,
        )


def bench_quotes(report: Report, symbols: int, rounds: int) -> None:
    from benchmarks.replay import measure_quotes

    with scratch_dir() as tmp:
        per_quote = measure_quotes(tmp, symbols, rounds)
    single, batch, floor = per_quote["single"], per_quote["batch"], per_quote["floor"]
    print(f"  per quote: set_quote {us(single)}, set_quotes {'n/a' if batch is None else us(batch)}, "
          f"raw executemany {us(floor)}", flush=True)
    report.add(f"quote, set_quote: 1 symbol per tx ({symbols} symbols x {rounds} bars)", us(single),
               f"raw sqlite3 executemany {us(floor)}", f"{single / floor:.1f}x floor", "(reported)", None)
    if batch is not None:
        report.add(f"quote, set_quotes: {symbols} symbols in 1 tx", us(batch), f"raw sqlite3 executemany {us(floor)}",
                   f"{batch / floor:.1f}x floor; {single / batch:.1f}x faster than set_quote", "<= 3x floor",
                   batch / floor <= 3)


# -- the large ledger: open, audit queries, export ------------------------------------------------------------
def run_child(*args: str) -> dict[str, Any]:
    """Run ``python -m benchmarks.run --child ...`` in a fresh interpreter and return the JSON it prints."""
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--child", *args],
        cwd=REPO_ROOT, capture_output=True, text=True, check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{completed.stderr}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def bench_open(sizes: Sizes, report: Report, ledger: Path) -> None:
    runs = [run_child("open", str(ledger)) for _ in range(sizes.open_reps)]
    seconds = statistics.median(run["seconds"] for run in runs)
    report.add(
        f"open a ledger of {sizes.fills:,} fills (fresh process, schema check + run start)",
        f"{seconds * 1000:,.1f} ms", f"import of ledger excluded ({runs[0]['import_seconds'] * 1000:,.0f} ms)",
        "-", "< 0.5 s", seconds < 0.5,
    )


def child_open(ledger: str) -> dict[str, Any]:
    started = time.perf_counter()
    from ledger.brokers.paper import PaperBroker

    imported = time.perf_counter()
    broker = PaperBroker(account="bench", db_url=f"sqlite:///{ledger}")
    opened = time.perf_counter()
    broker.close()
    return {"seconds": opened - imported, "import_seconds": imported - started}


def audit_queries(account_id: int, since: datetime) -> dict[str, tuple[Any, float]]:
    """The audit questions, as the library asks them (ledger.queries): name -> (executable statement, target in
    seconds, issue 12's)."""
    from ledger import queries

    return {
        "per-symbol totals for one account": (queries.symbol_totals_stmt(account_id), 0.05),
        "fills since T (last 30 days) for one account": (queries.fills_stmt(account_id, since=since), 0.1),
        "daily P&L of one account": (queries.daily_pnl_stmt(account_id), 0.1),
    }


def raw_seconds(ledger: Path, statement: str, parameters: Any) -> tuple[float, float]:
    """The same SQL through the stdlib sqlite3 driver, best of three: rows fetched as plain tuples (no
    decoding), the floor under a query's time; and SQLite alone, ``count(*)`` over the statement as a
    subquery: SQLite runs the whole plan and makes every row (index ranges, table and join seeks, sorts,
    columns) but hands no value to Python."""
    import sqlite3

    db = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True)
    try:
        fetched, counted = [], []
        for _ in range(3):
            started = time.perf_counter()
            db.execute(statement, parameters).fetchall()
            fetched.append(time.perf_counter() - started)
            started = time.perf_counter()
            db.execute(f"SELECT count(*) FROM ({statement})", parameters).fetchall()
            counted.append(time.perf_counter() - started)
        return min(fetched), min(counted)
    finally:
        db.close()


@contextmanager
def gc_pauses() -> Iterator[list[float]]:
    """Seconds the cyclic garbage collector ran inside the block, one entry per collection: a read of many
    rows allocates a SQLAlchemy Row per row, which sets off collections that traverse the whole heap."""
    import gc

    pauses: list[float] = []

    def note(phase: str, _info: dict[str, Any]) -> None:
        if phase == "start":
            pauses.append(time.perf_counter())
        else:
            pauses[-1] = time.perf_counter() - pauses[-1]

    gc.callbacks.append(note)
    try:
        yield pauses
    finally:
        gc.callbacks.remove(note)


def bench_audit(sizes: Sizes, report: Report, ledger: Path) -> list[str]:
    from sqlalchemy import event

    from ledger.db.engine import dispose_engines, get_engine, read_transaction

    engine = get_engine(f"sqlite:///{ledger}")
    plans: list[str] = []
    with engine.connect() as conn:
        with read_transaction(conn):
            account_id, last = conn.exec_driver_sql(
                "SELECT a.id, (SELECT MAX(filled_at) FROM fills f WHERE f.account_id = a.id) FROM accounts a"
                " WHERE a.name = 'bench'"
            ).one()
        since = datetime.fromisoformat(last).replace(tzinfo=UTC) - timedelta(days=30)
        for name, (stmt, target) in audit_queries(account_id, since).items():
            sent: list[tuple[str, Any]] = []

            def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
                sent.append((statement, parameters))

            times, collecting, rows = [], [], 0
            for _ in range(3):
                event.listen(engine, "before_cursor_execute", capture)
                with gc_pauses() as pauses:
                    started = time.perf_counter()
                    with read_transaction(conn):
                        rows = len(conn.execute(stmt).all())
                    times.append(time.perf_counter() - started)
                collecting.append(sum(pauses))
                event.remove(engine, "before_cursor_execute", capture)
            statement, parameters = sent[-1]
            with read_transaction(conn):
                plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
            plans.append(f"-- {name} ({rows:,} rows)\n{statement}\n  params: {parameters}\n"
                         + "\n".join(f"  QUERY PLAN: {row[-1]}" for row in plan))
            seconds = statistics.median(times)
            raw, engine_only = raw_seconds(ledger, statement, parameters)
            report.add(f"audit on {sizes.fills:,} fills: {name}",
                       f"{seconds * 1000:,.1f} ms (GC {statistics.median(collecting) * 1000:,.1f} ms of it)",
                       f"{rows:,} rows; raw sqlite3, same SQL, undecoded: {raw * 1000:,.1f} ms; "
                       f"SQLite alone (rows made, none handed over): {engine_only * 1000:,.1f} ms",
                       f"{seconds / raw:.1f}x raw" if raw else "-", f"<= {target * 1000:,.0f} ms", seconds <= target)
    dispose_engines()
    return plans


def bench_export(sizes: Sizes, report: Report, ledger: Path) -> None:
    with scratch_dir() as tmp:
        result = run_child("export", str(ledger), str(tmp))
    report.add(
        f"export {result['rows']:,} fills of one account to JSONL (streamed)",
        f"{result['rows_per_s']:,.0f} rows/s, peak RSS {result['peak_rss_mb']:.0f} MB",
        f"RSS after imports {result['baseline_rss_mb']:.0f} MB; ru_maxrss {result['ru_maxrss_mb']:.0f} MB "
        f"(this parent's: {ru_maxrss_mb():.0f} MB)", "-", "peak RSS < 200 MB",
        result["peak_rss_mb"] < 200,
    )


def peak_rss_mb() -> float:
    """This process's own peak resident set: VmHWM on Linux, the high-water mark of the address space the
    interpreter has had since it started. ``ru_maxrss`` will not do in a child: Linux carries it across
    fork and exec, so a child started by a parent that holds the big ledger reports the parent's peak
    (the export figure once read 573 MB that way)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return ru_maxrss_mb()


def ru_maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_export(ledger: str, out_dir: str) -> dict[str, Any]:
    from ledger.brokers.paper import PaperBroker

    broker = PaperBroker(account="bench", db_url=f"sqlite:///{ledger}")
    baseline = peak_rss_mb()
    started = time.perf_counter()
    paths = broker.export_jsonl(out_dir)
    seconds = time.perf_counter() - started
    broker.close()
    rows = 0
    for path in paths:
        with open(path, "rb") as handle:
            rows += sum(1 for _ in handle)
    return {"rows": rows, "files": len(paths), "seconds": seconds, "rows_per_s": rows / seconds,
            "peak_rss_mb": peak_rss_mb(), "baseline_rss_mb": baseline, "ru_maxrss_mb": ru_maxrss_mb()}


# -- PostgreSQL -----------------------------------------------------------------------------------------------
def bench_pg(sizes: Sizes, report: Report, sqlite_ours: float | None) -> None:
    from benchmarks.pg import BenchPostgres

    server = BenchPostgres.start_if_available()
    if server is None:
        report.add("market order, 1 tx each, PostgreSQL", "n/a", "no PostgreSQL binaries", "-", "reported", None)
        return
    try:
        import psycopg

        mix = order_mix(sizes.orders)
        ours, floor = [], []
        for rep in range(sizes.reps):
            ours_db, floor_db = server.create_database(), server.create_database()
            floor_ledger = open_floor(lambda: psycopg.connect(server.dsn(floor_db)), server.url(floor_db))
            times, _ = market_rep(mix, server.url(ours_db), floor_ledger)
            server.drop_database(ours_db)
            server.drop_database(floor_db)
            ours.append(times["ours"])
            floor.append(times["floor"])
            print(f"  rep {rep + 1}: ours {us(ours[-1])}, psycopg floor {us(floor[-1])}", flush=True)
    finally:
        server.stop()
    ours_m, floor_m = statistics.median(ours), statistics.median(floor)
    beside = "-" if sqlite_ours is None else f"SQLite (this run): {us(sqlite_ours)}"
    report.add(f"market order, 1 tx each, PostgreSQL loopback ({sizes.orders:,} x {sizes.reps})", us(ours_m),
               f"psycopg floor {us(floor_m)}; {beside}", f"{median_ratio(ours, floor):.2f}x floor",
               "reported beside SQLite", None)


# -- entry point ----------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run in seconds, figures meaningless")
    parser.add_argument("--only", default=",".join(FIGURES),
                        help=f"comma-separated subset of {','.join(FIGURES)}, or the opt-in {','.join(OPT_IN)}")
    parser.add_argument("--reps", type=int, help="repetitions (default 5; quick 2)")
    parser.add_argument("--fills", type=int, help="fills in the large ledger (default 1,000,000; quick 2,000)")
    parser.add_argument("--full", action="store_true", help="also the 500 x 2,520-bar replay (minutes)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, *rest = args.child
        from benchmarks.replay import child_replay_backtrader, child_replay_ours

        children = {"open": child_open, "export": child_export, "replay-ours": child_replay_ours,
                    "replay-backtrader": child_replay_backtrader}
        result = children[kind](*rest)
        print(json.dumps(result))
        return 0
    sizes = QUICK if args.quick else FULL
    if args.reps or args.fills:
        sizes = Sizes(**{**vars(sizes), **({"reps": args.reps} if args.reps else {}),
                         **({"fills": args.fills} if args.fills else {})})
    selected = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(selected) - set(FIGURES) - set(OPT_IN)
    if unknown:
        parser.error(f"unknown figures {sorted(unknown)}; choose from {','.join(FIGURES)}")
    print(f"paper-ledger benchmarks ({'quick' if args.quick else 'full'}): {sizes}", flush=True)
    report = Report()
    sqlite_ours = None
    if "market" in selected:
        print("market orders, one transaction each (ours / floor / minimal floor / seed, interleaved; then each"
              f" durable side's WAL growth over {min(sizes.orders, WAL_ORDERS)} more orders, checkpoints off)",
              flush=True)
        sqlite_ours = bench_market(sizes, report)
    if "batch" in selected:
        print(f"submit_orders() batches of {sizes.batch} vs single submits", flush=True)
        bench_batch(sizes, report)
    if "quote" in selected:
        print(f"quote update filling {sizes.resting} resting limits vs a batch of {sizes.resting} market", flush=True)
        bench_quote(sizes, report)
    if "quotes" in selected:
        print("quotes: set_quote per symbol vs set_quotes of a bar vs raw executemany", flush=True)
        bench_quotes(report, *((20, 2) if args.quick else (500, 10)))
    if "replay" in selected:
        from benchmarks.replay import FULL_REPLAY_SIZES, QUICK_REPLAY_SIZES, REPLAY_SIZES

        print("replay vs backtrader (same bars, strategy, costs; each in a fresh process)", flush=True)
        bench_replay(report, QUICK_REPLAY_SIZES if args.quick else FULL_REPLAY_SIZES if args.full else REPLAY_SIZES)
    plans: list[str] = []
    if {"open", "audit", "export"} & set(selected):
        from benchmarks.bigledger import build_big_ledger

        print(f"large ledger of {sizes.fills:,} fills (cached under /tmp)", flush=True)
        ledger = build_big_ledger(sizes.fills)
        if "open" in selected:
            bench_open(sizes, report, ledger)
        if "audit" in selected:
            plans = bench_audit(sizes, report, ledger)
        if "export" in selected:
            bench_export(sizes, report, ledger)
    if "pg" in selected:
        print("market orders on PostgreSQL (server started for this run)", flush=True)
        bench_pg(sizes, report, sqlite_ours)
    if "service" in selected:
        from benchmarks.service_load import FULL as SERVICE_FULL
        from benchmarks.service_load import SMOKE as SERVICE_SMOKE
        from benchmarks.service_load import bench_service

        print("HTTP load on paper-ledger serve (benchmarks/service_load.py)", flush=True)
        bench_service(SERVICE_SMOKE if args.quick else SERVICE_FULL, report.add)
    if "sweep" in selected:
        from benchmarks.sweep import bench_sweep

        print("parallel accounts: paper-ledger sweep, 1/2/4 processes (benchmarks/sweep.py)", flush=True)
        bench_sweep(*((5, 60, 2) if args.quick else (20, 250, 4)), report.add)
    if plans:
        print("\nEXPLAIN QUERY PLAN of the audit queries (SQLite, as sent by SQLAlchemy):")
        print("\n\n".join(plans))
    print("\n" + report.table())
    print(f"\ncommand: python -m benchmarks.run {' '.join(argv if argv is not None else sys.argv[1:])}".rstrip())
    return 0


if __name__ == "__main__":
    os.environ.pop("LEDGER_DATABASE_URL", None)
    sys.exit(main())
