"""The replay job: resumable after a SIGKILL at any point, ending exactly where an uninterrupted run ends."""

from __future__ import annotations

import functools
import os
import re
import signal
import socket
import subprocess
import sys
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from sqlalchemy import func, insert, select

from ledger.book.store import find_account
from ledger import replay as replay_module
from ledger.brokers.data_provider import ReplayProvider, YFinanceProvider, read_replay_chunks
from ledger.brokers.paper import BrokerTransaction, PaperBroker
from ledger.cli import cli
from ledger.data import sample_bars_path
from ledger.db.engine import get_engine, read_transaction, write_transaction
from ledger.queries import fills_stmt, orders_stmt, portfolio_value, position_rows
from ledger.replay import (
    BarData, client_order_id, equity_curve, fetch_bar_data, load_bar_file, run_replay, start_replay,
)
from ledger.strategies import STRATEGIES, OrderIntent, Strategy
from tests.conftest import ledger_problems, table_snapshot
from tests.workers.every_bar_strategy import EveryBarStrategy
from tests.workers.harness import Child, start_together

ROOT = Path(__file__).resolve().parents[1]
BARS = 150  # of the packaged sample's 500: enough trades to kill in the middle of, quick on both engines
ACCOUNT = "kill"
CASH = Decimal(50_000)
TRADED_BAR = 41  # the first bar of a month in those days: equal-weight rebalances there


@pytest.fixture
def bars_file(tmp_path: Path) -> Path:
    """The first BARS days of the packaged sample (3 symbols), as a CSV file."""
    frame = pd.read_csv(sample_bars_path())
    days = sorted(frame["timestamp"].unique())[:BARS]
    path = tmp_path / "bars.csv"
    frame[frame["timestamp"].isin(days)].to_csv(path, index=False)
    return path


@pytest.fixture
def bars(bars_file: Path) -> BarData:
    return load_bar_file(bars_file)


@pytest.fixture
def reference_db_url(engine_name: str, tmp_path: Path, request: pytest.FixtureRequest):
    """A second empty ledger on the same engine, for the uninterrupted reference run."""
    if engine_name == "sqlite":
        yield f"sqlite:///{tmp_path / 'reference.db'}"
        return
    server = request.getfixturevalue("pg_server")
    name = server.create_database()
    yield server.url(name)
    from ledger.db.engine import dispose_engines

    dispose_engines()
    server.drop_database(name)


def replay_in_process(db_url: str, data: BarData, strategy: str = "sma-crossover", **kwargs):
    with start_replay(data, account=ACCOUNT, strategy=strategy, db_url=db_url, initial_cash=CASH) as job:
        return run_replay(job, **kwargs)


def ledger_state(db_url: str, account: str = ACCOUNT) -> dict:
    """Everything a replay decides, exactly (Decimals): cash, equity, positions, fills, orders."""
    with get_engine(db_url).connect() as conn, read_transaction(conn):
        state = find_account(conn, account)
        assert state is not None
        return {
            "epoch": state.epoch,
            "cash": state.cash,
            "equity": portfolio_value(conn, state.id),
            "positions": {
                row.symbol: (row.qty_e6, row.cost_basis_e6, row.realized_pnl_e6)
                for row in position_rows(conn, state.id, include_flat=True)
            },
            "fills": [
                (row.filled_at, row.symbol, row.side, row.qty_e6, row.price_e6, row.fee_e6, row.realized_pnl_e6)
                for row in conn.execute(fills_stmt(state.id))
            ],
            "orders": sorted(
                (row.client_order_id, row.status, row.qty_e6) for row in conn.execute(orders_stmt(state.id))
            ),
        }


def replay_arguments(db_url: str, bars_file: Path) -> list[str]:
    return [
        "replay", "--db", db_url, "--data", str(bars_file), "--account", ACCOUNT, "--cash", str(CASH), "--verbose",
    ]


def run_until_bar_then_kill(arguments: list[str], bar: int, tmp_path: Path) -> None:
    """Run the replay CLI (paused after each bar, see tests/workers/replay_child.py) and SIGKILL it at once
    after letting it go on from bar ``bar``: it dies somewhere inside bar ``bar + 1``."""
    with open(tmp_path / "child.stderr", "w+") as stderr:
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.workers.replay_child", *arguments],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True,
        )
        assert child.stdin is not None and child.stdout is not None
        for line in child.stdout:
            child.stdin.write("go\n")
            child.stdin.flush()
            if line.startswith(f"bar {bar}/"):
                assert "traded" in line, line
                os.kill(child.pid, signal.SIGKILL)
                break
        child.wait(timeout=60)
        stderr.seek(0)
        assert child.returncode == -signal.SIGKILL, f"the replay ended before bar {bar}: {stderr.read()}"


def test_replay_killed_at_several_points_resumes_to_the_state_of_an_uninterrupted_run(
    db_url, reference_db_url, bars_file, bars, tmp_path
):
    arguments = replay_arguments(db_url, bars_file)
    fills_after_kills = []
    for kill_at in (40, 75, 110):
        run_until_bar_then_kill(arguments, kill_at, tmp_path)
        assert ledger_problems(db_url) == []  # a kill never leaves half of anything
        fills_after_kills.append(len(ledger_state(db_url)["fills"]))
    finished = subprocess.run(
        [sys.executable, "-m", "ledger.cli", *arguments], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert finished.returncode == 0, finished.stderr
    assert "resuming at bar" in finished.stdout
    assert "summary" in finished.stdout

    replay_in_process(reference_db_url, bars)
    resumed, uninterrupted = ledger_state(db_url), ledger_state(reference_db_url)
    assert 0 < fills_after_kills[0] <= fills_after_kills[-1] < len(uninterrupted["fills"])
    assert resumed == uninterrupted
    client_ids = [order[0] for order in resumed["orders"]]
    assert len(client_ids) == len(set(client_ids))  # nothing ordered twice
    assert ledger_problems(db_url) == [] and ledger_problems(reference_db_url) == []


class Interrupted(BaseException):
    """Stands in for a kill inside the process (BaseException: nothing in the ledger catches it)."""


def interrupt_on_call(monkeypatch, method: str, call: int, after: bool) -> None:
    """Raise Interrupted at the ``call``-th call of ``method``, before or after it does its work.

    ``method`` is a call the replay makes inside a bar's transaction (``BrokerTransaction.set_quotes``,
    ``submit_orders``, ``cancel_order``: interrupted there, the bar's transaction rolls back), or
    ``"transaction"``: the bar's transaction itself, ``after`` meaning once it has committed.
    """
    owner = PaperBroker if method == "transaction" else BrokerTransaction
    original = getattr(owner, method)
    calls = {"n": 0}

    def counted() -> bool:
        calls["n"] += 1
        if calls["n"] == call and not after:
            raise Interrupted
        return calls["n"] == call and after

    if method == "transaction":
        @contextmanager
        def wrapper(self, *args, **kwargs):
            due = counted()
            with original(self, *args, **kwargs) as tx:
                yield tx
            if due:
                raise Interrupted
    else:
        def wrapper(self, *args, **kwargs):
            due = counted()
            result = original(self, *args, **kwargs)
            if due:
                raise Interrupted
            return result

    monkeypatch.setattr(owner, method, wrapper)


@pytest.mark.parametrize(
    ("strategy", "method", "call", "after"),
    [
        ("sma-crossover", "set_quotes", 67, True),  # a bar's quotes stored in its transaction, its orders not decided
        ("equal-weight", "submit_orders", 3, True),  # the bar's batch placed, the process dies before it commits
        ("sma-crossover", "submit_orders", 4, False),  # the bar's quotes stored, its batch never sent
        ("equal-weight", "transaction", TRADED_BAR + 1, True),  # a bar with orders committed, dies before the next
        ("sma-crossover", "transaction", 67, True),  # a bar committed, the process dies before the next
    ],
)
def test_interrupted_at_a_precise_point_the_resumed_run_ends_like_an_uninterrupted_one(
    db_url, reference_db_url, bars, monkeypatch, strategy, method, call, after
):
    with monkeypatch.context() as patch:
        interrupt_on_call(patch, method, call, after)
        with pytest.raises(Interrupted):
            replay_in_process(db_url, bars, strategy)
    summary = replay_in_process(db_url, bars, strategy)
    replay_in_process(reference_db_url, bars, strategy)
    assert ledger_state(db_url) == ledger_state(reference_db_url)
    assert summary.trades == len(ledger_state(reference_db_url)["fills"])
    assert ledger_problems(db_url) == []


class ProbeStrategy(Strategy):
    """Records the portfolio it is shown; orders sized from cash at bars 0 and 10 (not idempotent on purpose:
    deciding bar 10 again after its orders filled would size them differently)."""

    name = "probe"
    summary = "test probe"
    seen: list[tuple] = []

    def decide(self, timestamp, portfolio):
        ProbeStrategy.seen.append((timestamp, portfolio.cash, portfolio.equity, dict(portfolio.positions)))
        if len(self.timestamps) - 1 not in (0, 10):
            return []
        return [
            OrderIntent(symbol, "BUY", int(portfolio.cash * 0.05 / portfolio.buy_cost(symbol)))
            for symbol in sorted(portfolio.quotes)
        ]


def stop_after_bar(bar_index: int):
    def on_step(step):
        if step.traded and step.index == bar_index:
            raise Interrupted

    return on_step


def test_resumed_strategy_is_shown_the_same_portfolio_as_an_uninterrupted_run(
    db_url, reference_db_url, bars_file, tmp_path, monkeypatch
):
    # SYN_C trades one day in three: absent from bar 10, the job's last traded bar when it resumes.
    frame = pd.read_csv(bars_file)
    days = sorted(frame["timestamp"].unique())
    sparse = frame[(frame["symbol"] != "SYN_C") | frame["timestamp"].isin(days[::3])]
    data = BarData.from_steps(list(ReplayProvider(sparse).bars()), "sparse")
    monkeypatch.setitem(STRATEGIES, "probe", ProbeStrategy)

    ProbeStrategy.seen = []
    replay_in_process(reference_db_url, data, "probe")
    uninterrupted = dict((seen[0], seen) for seen in ProbeStrategy.seen)

    ProbeStrategy.seen = []
    with pytest.raises(Interrupted):  # right after bar 10's orders committed
        replay_in_process(db_url, data, "probe", on_step=stop_after_bar(10))
    with pytest.raises(Interrupted):  # later quotes (SYN_C's included) stored, no order since bar 10
        replay_in_process(db_url, data, "probe", on_step=stop_after_bar(40))
    replay_in_process(db_url, data, "probe")
    for stamp, *portfolio in ProbeStrategy.seen:
        assert [stamp, *portfolio] == list(uninterrupted[stamp]), f"different portfolio at {stamp}"
    assert ledger_state(db_url) == ledger_state(reference_db_url)
    assert ledger_problems(db_url) == []


def test_a_finished_job_run_again_places_nothing_and_reports_the_same_summary(db_url, bars):
    first = replay_in_process(db_url, bars)
    state = ledger_state(db_url)
    again = replay_in_process(db_url, bars)
    assert ledger_state(db_url) == state
    assert again.resumed_at is not None
    assert (again.equity, again.trades, again.fees, again.max_drawdown) == (
        first.equity, first.trades, first.fees, first.max_drawdown
    )
    assert first.equity == state["equity"]
    assert first.trades == len(state["fills"]) > 0


def test_summary_figures_follow_from_the_ledger(db_url, bars):
    with start_replay(bars, account=ACCOUNT, strategy="equal-weight", db_url=db_url, initial_cash=CASH) as job:
        summary = run_replay(job)
        curve = equity_curve(job)
    state = ledger_state(db_url)
    assert summary.trades == len(state["fills"]) > 0
    assert summary.fees == sum(fill[5] for fill in state["fills"])
    assert summary.traded_notional == sum(
        (fill[3] * fill[4]).quantize(Decimal("0.000001")) for fill in state["fills"]
    )
    assert summary.turnover == summary.traded_notional / CASH
    assert summary.total_return == summary.equity / CASH - 1
    assert [stamp for stamp, _ in curve] == bars.timestamps
    assert curve[-1][1] == summary.equity  # the curve's last mark is the broker's equity
    assert curve[0][1] < CASH  # the first bar bought: fees and the spread are paid
    peak = max(value for _, value in curve)
    assert 0 < summary.max_drawdown < 1 and peak >= curve[0][1]


def test_after_an_account_reset_older_bars_are_refused_because_broker_time_never_goes_backwards(db_url, bars):
    from ledger.exceptions import ClockWentBackwardsError

    replay_in_process(db_url, bars)
    with PaperBroker(account=ACCOUNT, db_url=db_url) as broker:
        broker.reset()  # at wall-clock time, after every bar of the sample
    after_reset = ledger_state(db_url)
    with pytest.raises(ClockWentBackwardsError, match="never goes backwards"):
        replay_in_process(db_url, bars)
    assert ledger_state(db_url) == after_reset
    assert ledger_problems(db_url) == []


def test_replay_refuses_an_account_holding_orders_it_did_not_place(db_url, bars):
    with PaperBroker(account=ACCOUNT, db_url=db_url, initial_cash=CASH) as broker:
        broker.set_quote("SYN_A", 100, 100.1)
        broker.submit_order("SYN_A", "BUY", 1)
    with pytest.raises(Exception, match="holds orders this replay did not place"):
        replay_in_process(db_url, bars)
    assert len(ledger_state(db_url)["fills"]) == 1


def test_client_order_ids_are_deterministic_printable_and_short(bars):
    stamp = bars.timestamps[0]
    longest_symbol = "A" * 32
    coid = client_order_id("rp-0123456789abcdef", stamp, longest_symbol, "SELL")
    assert coid == client_order_id("rp-0123456789abcdef", stamp, longest_symbol, "SELL")
    assert len(coid) <= 128 and coid.isprintable() and " " not in coid
    assert coid.startswith("rp-0123456789abcdef:20220103T000000.000000Z:")


class FakeYFinance:
    """Stands in for the yfinance module: serves sample bars per ticker and counts history requests."""

    def __init__(self, frame: pd.DataFrame):
        self.frame = frame
        self.requests: list[str] = []

    def Ticker(self, symbol: str):  # noqa: N802 - yfinance's name
        fake = self

        class Ticker:
            def history(self, start, end, interval, **_):
                fake.requests.append(symbol)
                rows = fake.frame[fake.frame["symbol"] == symbol].copy()
                rows.index = pd.DatetimeIndex(pd.to_datetime(rows["timestamp"]), tz="UTC")
                rows = rows[(rows.index >= pd.Timestamp(start)) & (rows.index < pd.Timestamp(end))]
                return rows.rename(columns=str.capitalize)[["Open", "High", "Low", "Close", "Volume"]]

        return Ticker()


def test_symbols_are_fetched_once_then_replayed_from_the_ledger_cache(db_url, bars_file):
    from ledger.bars import DatabaseBarCache

    fake = FakeYFinance(pd.read_csv(bars_file))
    provider = YFinanceProvider(yf_module=fake, bar_cache=DatabaseBarCache(db_url))
    first = fetch_bar_data(["SYN_A", "SYN_B"], "2022-01-01", "2022-03-01", db_url, provider)
    assert sorted(fake.requests) == ["SYN_A", "SYN_B"]
    again = fetch_bar_data(
        ["SYN_A", "SYN_B"], "2022-01-01", "2022-03-01", db_url,
        YFinanceProvider(yf_module=fake, bar_cache=DatabaseBarCache(db_url)),
    )
    assert sorted(fake.requests) == ["SYN_A", "SYN_B"]  # the re-run read the database, not the network
    assert again.fingerprint == first.fingerprint  # same bars -> same job key -> a re-run resumes
    assert first.symbols == ["SYN_A", "SYN_B"] and len(first.timestamps) > 30


def test_replay_cli_with_symbols_uses_the_data_provider_and_resumes_from_cached_bars(db_url, bars_file, monkeypatch):
    fake = FakeYFinance(pd.read_csv(bars_file))
    monkeypatch.setattr(
        "ledger.replay.YFinanceProvider", lambda **kwargs: YFinanceProvider(yf_module=fake, **kwargs)
    )
    args = ["replay", "--db", db_url, "--account", "yf", "--symbols", "SYN_A,SYN_C",
            "--start", "2022-01-01", "--end", "2022-06-01", "--strategy", "equal-weight"]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0, again.output
    assert sorted(fake.requests) == ["SYN_A", "SYN_C"]
    assert "this job already finished" in again.output  # same cached bars -> same job, recognised as done
    assert ledger_problems(db_url) == []


def test_replay_with_no_arguments_runs_offline_on_the_packaged_sample(db_url):
    result = CliRunner().invoke(cli, ["replay"])  # LEDGER_DATABASE_URL points at this test's ledger
    assert result.exit_code == 0, result.output
    assert "packaged synthetic sample" in result.output
    assert "SYN_A, SYN_B, SYN_C, 500 bars" in result.output
    for figure in ("equity", "return", "max drawdown", "trades (fills)", "fees", "turnover"):
        assert figure in result.output
    state = ledger_state(db_url, "replay")
    assert len(state["fills"]) > 10
    assert ledger_problems(db_url) == []


def test_replay_rejects_bad_options_with_one_line(db_url, bars_file):
    cases = [
        (["replay", "--strategy", "nope"], "nope"),
        (["replay", "--data", str(bars_file), "--symbols", "AAPL"], "either --data or --symbols"),
        (["replay", "--symbols", "AAPL"], "needs --start and --end"),
        (["replay", "--start", "2024-01-01"], "go with --symbols"),
        (["replay", "--cash", "-5", "--data", str(bars_file)], "-5 is negative"),
    ]
    for args, message in cases:
        result = CliRunner().invoke(cli, [*args, "--db", db_url])
        assert result.exit_code != 0, args
        assert message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


# -- one replay at a time per account (job_locks) ---------------------------------------------------------------
def lock_rows(db_url: str) -> list:
    from ledger.jobs import job_locks

    with get_engine(db_url).connect() as conn, read_transaction(conn):
        return conn.execute(select(job_locks)).all()


def read_until_bar_or_end(child: Child) -> str | None:
    """The child's stdout up to its first ``bar`` line (it then waits on stdin), or None when it ended."""
    assert child.proc.stdout is not None
    for line in child.proc.stdout:
        if line.startswith("bar "):
            return line
    return None


def drive_to_the_end(child: Child) -> str:
    """Answer every ``bar`` line until the child exits; returns the rest of its stdout."""
    assert child.proc.stdout is not None
    child.send("go")
    rest = []
    for line in child.proc.stdout:
        rest.append(line)
        if line.startswith("bar "):
            child.send("go")
    child.proc.wait(timeout=120)
    return "".join(rest)


def test_two_replays_of_one_job_started_together_one_runs_the_other_refuses(
    db_url, reference_db_url, bars_file, bars
):
    arguments = replay_arguments(db_url, bars_file)
    children = [Child("replay_child", "--start-together", *arguments) for _ in range(2)]
    try:
        start_together(children)
        first_bars = [read_until_bar_or_end(child) for child in children]
        assert sum(line is not None for line in first_bars) == 1, first_bars  # exactly one got to trade
        winner, loser = children if first_bars[0] is not None else children[::-1]
        loser.proc.wait(timeout=120)
        assert loser.proc.returncode == 4, loser.stderr()
        [error] = loser.stderr().strip().splitlines()
        assert error.startswith("Error: account 'kill' is busy") and f"pid {winner.pid} on host" in error, error
        assert "since" in error
        # The refused replay wrote nothing: no run of its pid, one lock row (the winner's).
        assert [(row.pid, row.job) for row in lock_rows(db_url)] == [(winner.pid, "replay")]
        assert scalar_runs_of_pid(db_url, loser.pid) == 0
        assert "summary" in drive_to_the_end(winner)
        assert winner.proc.returncode == 0, winner.stderr()
    finally:
        for child in children:
            child.close()
    replay_in_process(reference_db_url, bars)
    assert ledger_state(db_url) == ledger_state(reference_db_url)
    assert lock_rows(db_url) == []  # released at exit
    assert ledger_problems(db_url) == []


def scalar_runs_of_pid(db_url: str, pid: int) -> int:
    from ledger.book.store import runs

    with get_engine(db_url).connect() as conn, read_transaction(conn):
        return conn.execute(select(func.count()).select_from(runs).where(runs.c.pid == pid)).scalar_one()


def kill_while_paused_after_bar(arguments: list[str], bar: int) -> int:
    """Run the replay CLI and SIGKILL it while it waits after printing bar ``bar``: right after that bar
    committed (its quotes and orders), before the next one started. Returns the killed pid."""
    child = Child("replay_child", *arguments)
    try:
        assert child.proc.stdout is not None
        for line in child.proc.stdout:
            if line.startswith(f"bar {bar}/"):
                assert "traded" in line, line
                break
            if line.startswith("bar "):
                child.send("go")
        else:
            raise AssertionError(f"the replay ended before bar {bar}: {child.stderr()}")
        child.kill()
        assert child.proc.returncode == -signal.SIGKILL
        return child.pid
    finally:
        child.close()


def run_cli(arguments: list[str]) -> subprocess.CompletedProcess:
    """``paper-ledger ARGUMENTS`` in a child process (the replay child: ``every-bar`` known), run to its end."""
    return subprocess.run(
        [sys.executable, "-m", "tests.workers.replay_child", *arguments], cwd=ROOT, capture_output=True, text=True,
        input="go\n" * 1000, timeout=120,
    )


def test_a_lock_left_by_a_killed_replay_is_taken_over_by_the_next_run_and_the_result_is_exact(
    db_url, reference_db_url, bars_file, bars
):
    arguments = replay_arguments(db_url, bars_file)
    killed = kill_while_paused_after_bar(arguments, 60)
    [left] = lock_rows(db_url)
    assert (left.pid, left.host) == (killed, socket.gethostname())
    finished = run_cli(arguments)
    assert finished.returncode == 0, finished.stderr
    assert f"took over the replay lock of pid {killed} on host" in finished.stderr
    assert "resuming at bar" in finished.stdout
    replay_in_process(reference_db_url, bars)
    assert ledger_state(db_url) == ledger_state(reference_db_url)
    assert lock_rows(db_url) == []
    assert ledger_problems(db_url) == []


def plant_lock(db_url: str, host: str, pid: int) -> None:
    """A lock row as another process would have left it (the account must exist)."""
    from datetime import UTC, datetime

    from ledger.jobs import job_locks

    with get_engine(db_url).connect() as conn, write_transaction(conn):
        account = find_account(conn, ACCOUNT)
        at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
        conn.execute(insert(job_locks).values(account_id=account.id, job="replay", holder="x" * 32, host=host,
                                              pid=pid, acquired_at=at, heartbeat_at=at))


def test_a_lock_held_on_another_host_is_refused_until_force_unlock(db_url, reference_db_url, bars_file, bars):
    arguments = replay_arguments(db_url, bars_file)
    PaperBroker(account=ACCOUNT, db_url=db_url, initial_cash=CASH, clock=lambda: bars.timestamps[0]).close()
    plant_lock(db_url, "elsewhere.example", 4242)
    before = table_snapshot(db_url)
    refused = CliRunner().invoke(cli, arguments)
    assert refused.exit_code == 4
    [error] = refused.stderr.strip().splitlines()
    assert "pid 4242 on host 'elsewhere.example' since 2026-01-02T03:04:05Z" in error and "--force-unlock" in error
    assert table_snapshot(db_url) == before  # refused: nothing written
    forced = CliRunner().invoke(cli, [*arguments, "--force-unlock"])
    assert forced.exit_code == 0, forced.output
    assert "took over the replay lock of pid 4242 on host 'elsewhere.example'" in forced.stderr
    replay_in_process(reference_db_url, bars)
    assert ledger_state(db_url) == ledger_state(reference_db_url)
    assert lock_rows(db_url) == []


def test_a_lock_held_by_a_live_process_of_this_host_is_refused(db_url, bars_file, bars):
    PaperBroker(account=ACCOUNT, db_url=db_url, initial_cash=CASH, clock=lambda: bars.timestamps[0]).close()
    plant_lock(db_url, socket.gethostname(), os.getpid())  # this test process: certainly alive
    refused = CliRunner().invoke(cli, replay_arguments(db_url, bars_file))
    assert refused.exit_code == 4 and "wait for it to finish" in refused.stderr
    assert ledger_state(db_url)["orders"] == []


def test_a_replay_whose_lock_was_forced_away_stops_writing(db_url, bars):
    from ledger.jobs import JobLockLostError, acquire_job_lock

    with pytest.raises(JobLockLostError, match="taken over by another process"):
        with start_replay(bars, account=ACCOUNT, strategy="sma-crossover", db_url=db_url, initial_cash=CASH) as job:
            with get_engine(db_url).connect() as conn, write_transaction(conn):
                acquire_job_lock(conn, job.lock.account_id, ACCOUNT, "replay", force=True)
            job.lock.heartbeat(force=True)


def test_the_lock_is_released_when_the_replay_fails(db_url, bars, monkeypatch):
    with monkeypatch.context() as patch:
        interrupt_on_call(patch, "submit_orders", 2, False)
        with pytest.raises(Interrupted):
            replay_in_process(db_url, bars)
    assert lock_rows(db_url) == []


# -- a finished job writes nothing ------------------------------------------------------------------------------
@pytest.mark.parametrize("strategy", ["sma-crossover", "every-bar"])
def test_a_finished_job_run_again_by_the_cli_writes_nothing_and_prints_its_summary(
    db_url, bars_file, strategy, monkeypatch
):
    register_every_bar(monkeypatch)
    arguments = [*replay_arguments(db_url, bars_file), "--strategy", strategy]
    first = run_cli(arguments)
    assert first.returncode == 0, first.stderr
    before = table_snapshot(db_url)
    again = run_cli(arguments)
    assert again.returncode == 0, again.stderr
    assert table_snapshot(db_url) == before  # no quote, run, order or lock row written
    assert "this job already finished" in again.stdout and "resumed         already finished" in again.stdout
    assert summary_lines(again.stdout) == summary_lines(first.stdout)


def summary_lines(output: str) -> list[str]:
    """The summary's figures, without the line saying whether the run resumed."""
    return [line for line in output[output.index("summary"):].splitlines() if "resumed" not in line]


def register_every_bar(monkeypatch) -> None:
    monkeypatch.setitem(STRATEGIES, EveryBarStrategy.name, EveryBarStrategy)


# -- the resume point: exactly the last bar that traded -----------------------------------------------------------
def test_an_every_bar_strategy_killed_right_after_a_committed_bar_resumes_without_losing_or_repeating_a_bar(
    db_url, reference_db_url, bars_file, tmp_path, monkeypatch
):
    register_every_bar(monkeypatch)
    frame = pd.read_csv(bars_file)
    days = sorted(frame["timestamp"].unique())[:20]
    short = tmp_path / "twenty.csv"
    frame[frame["timestamp"].isin(days)].to_csv(short, index=False)
    arguments = [*replay_arguments(db_url, short), "--strategy", "every-bar"]
    kill_while_paused_after_bar(arguments, 10)
    assert len(ledger_state(db_url)["fills"]) == 10  # bars 1..10 committed, nothing of bar 11
    resumed = run_cli(arguments)
    assert resumed.returncode == 0, resumed.stderr
    replay_in_process(reference_db_url, load_bar_file(short), "every-bar")
    state, reference = ledger_state(db_url), ledger_state(reference_db_url)
    assert len(reference["fills"]) == 20
    assert len(state["fills"]) == 20, "a bar was skipped or repeated on resume"
    assert state["fills"] == reference["fills"] and state["orders"] == reference["orders"]
    assert state == reference
    assert "resuming at bar 10/20" in resumed.stdout  # bar 10 was the last traded: its decisions are not redone


# -- one max drawdown ------------------------------------------------------------------------------------------
def test_report_and_the_replay_summary_show_the_same_max_drawdown(db_url, bars_file):
    from ledger.reports import account_max_drawdown

    replayed = CliRunner().invoke(cli, replay_arguments(db_url, bars_file))
    assert replayed.exit_code == 0, replayed.output
    reported = CliRunner().invoke(cli, ["report", ACCOUNT, "--db", db_url])
    assert reported.exit_code == 0, reported.output
    in_summary = re.search(r"max drawdown\s+(\S+%)", replayed.stdout).group(1)
    in_report = re.search(r"max drawdown \([^)]*\)\s+(\S+%)", reported.stdout).group(1)
    assert in_summary == in_report
    drawdown = account_max_drawdown(db_url, ACCOUNT)
    assert 0 < drawdown < 1 and in_summary == f"{drawdown * 100:.2f}%"


def test_replay_slippage_and_fee_options_set_the_costs_of_a_new_jobs_run(db_url, bars_file):
    from ledger.book.store import runs

    arguments = [*replay_arguments(db_url, bars_file), "--slippage-bps", "7", "--fee-bps", "3"]
    first = CliRunner().invoke(cli, arguments)
    assert first.exit_code == 0, first.output
    with get_engine(db_url).connect() as conn, read_transaction(conn):
        assert conn.execute(select(runs.c.slippage_bps_e6, runs.c.fee_bps_e6)).all() == [(Decimal(7), Decimal(3))]
    fills = ledger_state(db_url)["fills"]
    assert fills and all(fill[5] == (fill[3] * fill[4] * Decimal("0.0003")).quantize(Decimal("0.000001"))
                         for fill in fills)


def test_a_bar_file_streamed_in_small_chunks_gives_the_steps_and_job_of_the_file_read_whole(
    bars_file, tmp_path, monkeypatch
):
    """Chunks of 7 rows split the 3-symbol bars inside timestamps: the steps, their rounding and the fingerprint
    (hence the job key) must not change; a row out of time order across a chunk boundary is still refused."""
    frame = pd.read_csv(bars_file)
    frame.loc[::5, "close"] = frame.loc[::5, ["close", "high"]].min(axis=1) - 0.0000004  # rounds to 6 places
    noisy = tmp_path / "noisy.csv"
    frame.to_csv(noisy, index=False)
    whole = BarData.from_steps(list(ReplayProvider.from_file(noisy).bars()), "whole")
    monkeypatch.setattr(replay_module, "read_replay_chunks", functools.partial(read_replay_chunks, chunk_rows=7))

    streamed = load_bar_file(noisy, "streamed")

    assert streamed.fingerprint == whole.fingerprint and streamed.timestamps == whole.timestamps
    assert list(streamed.steps()) == list(whole.steps())
    # Bar 3's first row moved before bar 2's rows: the end of the first chunk (row 6) is later than row 7.
    frame.iloc[[*range(6), 9, 6, 7, 8, *range(10, len(frame))]].to_csv(noisy, index=False)
    with pytest.raises(ValueError, match="row 7 .*not in time order"):
        load_bar_file(noisy)
