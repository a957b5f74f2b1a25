"""The replay against an in-memory backtester, and the quote write path against the raw driver.

``replay``: the same generated daily bars (N symbols x M bars, seeded random walks), the same SMA crossover
(10/30 bars, market orders, sells first, buys sized from cash with a 2% buffer), the same costs, run by
``paper-ledger``'s replay (durable, resumable) and by backtrader (in memory), each in a fresh interpreter: wall
time (imports included), peak RSS of the child (``os.wait4``'s rusage), trades and final equity of each, so the
comparison can be checked to be fair. backtrader is an optional benchmark dependency (``pip install -e
'.[bench]'``); without it only our side is reported.

How the costs line up: our replay quotes a synthetic spread of 10 bps around each close and fills a market
order at the touch with ``SLIPPAGE_BPS`` of slippage; backtrader fills at the close ("cheat on close") with a
slippage percentage that compounds the half spread and the slippage; both charge ``FEE_BPS`` on the notional.

``quotes``: per quote, ``set_quote`` one symbol per transaction vs ``set_quotes`` of a whole bar in one
transaction vs the floor: raw ``sqlite3``, one ``executemany`` upsert of the bar's quotes in one transaction.
"""

from __future__ import annotations

import json
import math
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPLAY_SIZES = ((50, 500), (500, 500))  # symbols x daily bars
FULL_REPLAY_SIZES = (*REPLAY_SIZES, (500, 2520))
QUICK_REPLAY_SIZES = ((5, 60),)
REPLAY_CASH = 10_000_000
REPLAY_SLIPPAGE_BPS, REPLAY_FEE_BPS = 5, 1
HALF_SPREAD_BPS = 5  # half of the replay's synthetic spread (ledger.brokers.data_provider)
FAST, SLOW, CASH_BUFFER = 10, 30, 0.02


def write_bars(path: Path, symbols: int, bars: int, seed: int = 12) -> None:
    """Daily bars of ``symbols`` seeded random walks (2-decimal prices), long CSV format, in time order."""
    import pandas as pd

    rng = random.Random(seed)
    names = [f"S{i:04d}" for i in range(symbols)]
    prices = [rng.uniform(20, 200) for _ in names]
    days = pd.bdate_range("2010-01-04", periods=bars, tz="UTC") + pd.Timedelta(hours=21)
    with open(path, "w") as out:
        out.write("timestamp,symbol,open,high,low,close,volume\n")
        for day in days:
            stamp = day.isoformat()
            for i, name in enumerate(names):
                open_ = prices[i]
                close = max(1.0, open_ * math.exp(rng.gauss(0.0002, 0.02)))
                high = max(open_, close) * (1 + abs(rng.gauss(0, 0.005)))
                low = min(open_, close) * (1 - abs(rng.gauss(0, 0.005)))
                prices[i] = close
                out.write(f"{stamp},{name},{open_:.2f},{high:.2f},{low:.2f},{close:.2f},{rng.randint(10_000, 1_000_000)}\n")


# -- the two sides, each run in a fresh interpreter --------------------------------------------------------------
def child_replay_ours(bars_csv: str, db_path: str) -> dict[str, Any]:
    from ledger.replay import Costs, load_bar_file, run_replay, start_replay

    data = load_bar_file(bars_csv)
    with start_replay(
        data, account="bench", strategy="sma-crossover", db_url=f"sqlite:///{db_path}", initial_cash=REPLAY_CASH,
        costs=Costs(REPLAY_SLIPPAGE_BPS, REPLAY_FEE_BPS),
    ) as job:
        summary = run_replay(job)
    return {"trades": summary.trades, "equity": float(summary.equity), "vm_hwm_mb": high_water_mb()}


def child_replay_backtrader(bars_csv: str) -> dict[str, Any]:
    import backtrader as bt
    import pandas as pd

    class SmaCrossover(bt.Strategy):
        """ledger.strategies.MovingAverageCrossover, in backtrader's terms."""

        def __init__(self) -> None:
            self.trend = {data: bt.indicators.SMA(data.close, period=FAST) - bt.indicators.SMA(data.close, period=SLOW)
                          for data in self.datas}
            self.trades = 0

        def notify_order(self, order: Any) -> None:
            if order.status == order.Completed:
                self.trades += 1

        def next(self) -> None:
            equity = self.broker.getvalue()
            sells = [data for data in self.datas if self.trend[data][0] <= 0 and self.getposition(data).size > 0]
            entries = [data for data in self.datas if self.trend[data][0] > 0 and self.getposition(data).size == 0]
            cash = self.broker.getcash() - equity * CASH_BUFFER
            for data in sells:
                size = self.getposition(data).size
                cash += size * data.close[0] * (1 - HALF_SPREAD_BPS / 1e4) * (1 - REPLAY_SLIPPAGE_BPS / 1e4) * (1 - REPLAY_FEE_BPS / 1e4)
                self.sell(data=data, size=size)
            budget = equity / len(self.datas)
            for data in entries:
                unit = data.close[0] * (1 + HALF_SPREAD_BPS / 1e4) * (1 + REPLAY_SLIPPAGE_BPS / 1e4) * (1 + REPLAY_FEE_BPS / 1e4)
                size = math.floor(min(budget, cash) / unit)
                if size > 0:
                    self.buy(data=data, size=size)
                    cash -= size * unit

    frame = pd.read_csv(bars_csv, dtype={"symbol": str}, parse_dates=["timestamp"])
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.broker.setcash(REPLAY_CASH)
    cerebro.broker.set_coc(True)  # a market order fills at the close of the bar that decided it, as ours does
    slip = (1 + HALF_SPREAD_BPS / 1e4) * (1 + REPLAY_SLIPPAGE_BPS / 1e4) - 1
    cerebro.broker.set_slippage_perc(slip, slip_open=True, slip_limit=True, slip_match=True, slip_out=True)
    cerebro.broker.setcommission(commission=REPLAY_FEE_BPS / 1e4)
    for symbol, rows in frame.groupby("symbol", sort=True):
        feed = rows.set_index("timestamp").drop(columns="symbol")
        feed.index = feed.index.tz_localize(None)
        cerebro.adddata(bt.feeds.PandasData(dataname=feed, openinterest=None), name=symbol)
    cerebro.addstrategy(SmaCrossover)
    (strategy,) = cerebro.run()
    return {"trades": strategy.trades, "equity": cerebro.broker.getvalue(), "vm_hwm_mb": high_water_mb()}


def run_measured_child(tmp: Path, *args: str) -> dict[str, Any]:
    """``python -m benchmarks.run --child ...`` in a fresh interpreter: its JSON, wall seconds (imports included)
    and peak RSS.

    The peak RSS is the child's ``VmHWM`` (its address space's high-water mark since exec). The child's rusage
    (``os.wait4``) is kept beside it as ``rusage_maxrss_mb``, but Linux folds the forked copy of the parent
    into it (a child of a parent holding 160 MB reports at least 160 MB), so it is not the figure used."""
    root = Path(__file__).resolve().parent.parent
    out_path, err_path = tmp / "child.out", tmp / "child.err"
    with open(out_path, "w") as out, open(err_path, "w") as err:
        started = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-m", "benchmarks.run", "--child", *args], cwd=root,
                                 stdout=out, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)  # reaped here, so its rusage is its own
        seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{err_path.read_text()}")
    result = json.loads(out_path.read_text().strip().splitlines()[-1])
    result["seconds"] = seconds
    result["rusage_maxrss_mb"] = usage.ru_maxrss / 1024
    result["peak_rss_mb"] = result.pop("vm_hwm_mb")
    return result


def high_water_mb() -> float:
    """This process's peak RSS since its exec (Linux ``VmHWM``), to cross-check the parent's rusage figure."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def backtrader_available() -> bool:
    try:
        import backtrader  # noqa: F401
    except ImportError:
        return False
    return True


@dataclass(frozen=True)
class ReplayFigures:
    symbols: int
    bars: int
    ours: dict[str, Any]
    backtrader: dict[str, Any] | None


def measure_replay(tmp: Path, symbols: int, bars: int) -> ReplayFigures:
    bars_csv = tmp / f"bars-{symbols}x{bars}.csv"
    write_bars(bars_csv, symbols, bars)
    ours = run_measured_child(tmp, "replay-ours", str(bars_csv), str(tmp / f"ledger-{symbols}x{bars}.db"))
    theirs = run_measured_child(tmp, "replay-backtrader", str(bars_csv)) if backtrader_available() else None
    return ReplayFigures(symbols, bars, ours, theirs)


# -- quotes: single vs batch vs the raw driver ---------------------------------------------------------------------
QUOTE_FLOOR_UPSERT = (
    "INSERT INTO quotes (account_id, symbol, bid_e6, ask_e6, bid_size_e6, ask_size_e6, quoted_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (account_id, symbol) DO UPDATE SET bid_e6 = excluded.bid_e6, ask_e6 = excluded.ask_e6,"
    " bid_size_e6 = excluded.bid_size_e6, ask_size_e6 = excluded.ask_size_e6, quoted_at = excluded.quoted_at,"
    " bid_taken_e6 = 0, ask_taken_e6 = 0"
)


def measure_quotes(tmp: Path, symbols: int, rounds: int) -> dict[str, float | None]:
    """Seconds per quote of each way to store ``rounds`` bars of ``symbols`` quotes (no resting orders)."""
    from datetime import UTC, datetime, timedelta

    from ledger.brokers.paper import PaperBroker
    from ledger.db.engine import dispose_engines

    names = [f"Q{i:04d}" for i in range(symbols)]
    moment = [datetime(2024, 1, 2, 15, tzinfo=UTC)]

    def clock() -> datetime:
        return moment[0]

    def bar_quotes(n: int) -> dict[str, tuple[float, float]]:
        return {name: (round(100 + i + n * 0.01, 2), round(100.05 + i + n * 0.01, 2)) for i, name in enumerate(names)}

    url = f"sqlite:///{tmp / 'quotes.db'}"
    broker = PaperBroker(account="quotes", db_url=url, initial_cash=1_000_000, clock=clock)
    single, batch = [], []
    try:
        for n in range(rounds):
            moment[0] += timedelta(minutes=1)
            started = time.perf_counter()
            for name, (bid, ask) in bar_quotes(n).items():
                broker.set_quote(name, bid, ask)
            single.append((time.perf_counter() - started) / symbols)
            if hasattr(broker, "set_quotes"):
                moment[0] += timedelta(minutes=1)
                started = time.perf_counter()
                broker.set_quotes(bar_quotes(n))
                batch.append((time.perf_counter() - started) / symbols)
        account_id = broker.account_id
        assert broker.verify() == []
    finally:
        broker.close()
        dispose_engines()
    floor = []
    db = sqlite3.connect(tmp / "quotes.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    try:
        for n in range(rounds):
            moment[0] += timedelta(minutes=1)
            stamp = moment[0].replace(tzinfo=None).isoformat(" ", "microseconds")
            started = time.perf_counter()
            rows = [(account_id, name, round(bid * 1e6), round(ask * 1e6), 100_000_000, 100_000_000, stamp)
                    for name, (bid, ask) in bar_quotes(n).items()]
            db.execute("BEGIN IMMEDIATE")
            db.executemany(QUOTE_FLOOR_UPSERT, rows)
            db.execute("COMMIT")
            floor.append((time.perf_counter() - started) / symbols)
    finally:
        db.close()
    return {
        "single": statistics.median(single),
        "batch": statistics.median(batch) if batch else None,
        "floor": statistics.median(floor),
    }
