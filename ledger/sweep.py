"""A parameter sweep (``paper-ledger sweep``): one replay per parameter set, each trading its own account of one
ledger, run as separate processes at once.

Each job is an ordinary ``paper-ledger replay`` process (so it is durable, resumable and locked per account as
any replay): a sweep killed half-way and run again resumes every unfinished job and leaves the finished ones
alone. On PostgreSQL the processes write in parallel; on SQLite they take turns at the one write lock (each
transaction waits for the lock, none fails), so more processes than one help less there.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from ledger.book.accounts import validate_account_name
from ledger.book.store import find_account
from ledger.db.engine import get_engine, read_transaction, translate_db_errors
from ledger.queries import capital, portfolio_value, symbol_totals_stmt, total_return
from ledger.reports import account_max_drawdown
from ledger.strategies import strategy_spec


POLL_SECONDS = 0.2  # how often the sweep looks for finished jobs


@dataclass(frozen=True)
class SweepJob:
    """One parameter set: the account it trades and the strategy spec it replays."""

    account: str
    params: dict[str, str]
    spec: str


@dataclass
class JobOutcome:
    job: SweepJob
    returncode: int
    seconds: float
    output: str = field(repr=False)


def parse_grid(items: Sequence[str]) -> dict[str, list[str]]:
    """``("fast=5,10", "slow=20")`` -> ``{"fast": ["5", "10"], "slow": ["20"]}``; ValueError when malformed."""
    grid: dict[str, list[str]] = {}
    for item in items:
        name, equals, values = item.partition("=")
        name = name.strip()
        choices = [value.strip() for value in values.split(",") if value.strip()]
        if not equals or not name or not choices:
            raise ValueError(f"a grid is NAME=V1,V2,...; got {item!r}"[:120])
        if name in grid:
            raise ValueError(f"parameter {name!r} is given twice")
        grid[name] = list(dict.fromkeys(choices))
    return grid


def plan_sweep(strategy: str, grid: Mapping[str, Sequence[str]], prefix: str) -> list[SweepJob]:
    """Every combination of the grid's values, in order, each on the account ``PREFIX-<name><value>-...``.

    Each combination's spec is checked (strategy_spec and the strategy's own rule, e.g. fast < slow); an
    invalid one is a ValueError naming it, before anything runs."""
    from ledger.strategies import get_strategy

    names = sorted(grid)
    jobs = []
    for values in itertools.product(*(grid[name] for name in names)):
        params = dict(zip(names, values))
        spec = strategy_spec(strategy, params)
        try:
            get_strategy(spec)
        except ValueError as exc:
            raise ValueError(f"{spec}: {exc}") from None
        suffix = "-".join(f"{name}{value}" for name, value in params.items())
        jobs.append(SweepJob(validate_account_name(f"{prefix}-{suffix}" if suffix else prefix), params, spec))
    if not jobs:
        raise ValueError("the grid makes no job")
    return jobs


def replay_command(job: SweepJob, strategy: str, db_url: str, options: Sequence[str]) -> list[str]:
    """The ``paper-ledger replay`` command line of a job (``options``: --data, --cash, ... passed through)."""
    params = [arg for name, value in job.params.items() for arg in ("--param", f"{name}={value}")]
    return [sys.executable, "-m", "ledger.cli", "replay", "--account", job.account, "--strategy", strategy,
            *params, *options, "--db", db_url]


def run_sweep(
    jobs: Sequence[SweepJob],
    command: Callable[[SweepJob], list[str]],
    processes: int,
    on_done: Callable[[JobOutcome], None] | None = None,
) -> list[JobOutcome]:
    """Run the jobs' commands, at most ``processes`` at a time (each child's output kept in a temporary file);
    the outcomes in job order. Interrupted, it terminates the running children (run it again to resume)."""
    pending = list(jobs)
    running: list[tuple[subprocess.Popen[bytes], SweepJob, float, Any]] = []
    outcomes: dict[str, JobOutcome] = {}
    try:
        while pending or running:
            while pending and len(running) < processes:
                job = pending.pop(0)
                log = tempfile.TemporaryFile()
                child = subprocess.Popen(command(job), stdout=log, stderr=subprocess.STDOUT)
                running.append((child, job, time.monotonic(), log))
            for entry in [entry for entry in running if entry[0].poll() is not None]:
                child, job, started, log = entry
                running.remove(entry)
                log.seek(0)
                outcome = JobOutcome(job, child.returncode, time.monotonic() - started,
                                     log.read().decode("utf-8", "replace"))
                log.close()
                outcomes[job.account] = outcome
                if on_done is not None:
                    on_done(outcome)
            if running:
                time.sleep(POLL_SECONDS)
    finally:
        for child, _, _, log in running:
            child.terminate()
            child.wait()
            log.close()
    return [outcomes[job.account] for job in jobs]


@dataclass(frozen=True)
class SweepResult:
    account: str
    spec: str
    equity: Decimal
    total_return: Decimal | None
    max_drawdown: Decimal
    fills: int


def sweep_results(db_url: str, jobs: Sequence[SweepJob]) -> list[SweepResult]:
    """Each job's account as the ledger has it now: equity, return on capital, max drawdown, fills."""
    engine = get_engine(db_url)
    results = []
    with translate_db_errors(engine), engine.connect() as conn, read_transaction(conn):
        for job in jobs:
            account = find_account(conn, job.account)
            if account is None:
                continue
            equity = portfolio_value(conn, account.id)
            totals = symbol_totals_stmt(account.id).subquery()
            fills = conn.execute(select(func.coalesce(func.sum(totals.c.fill_count), 0))).scalar_one()
            results.append(SweepResult(
                job.account, job.spec, equity, total_return(equity, capital(conn, account.id)),
                account_max_drawdown(conn, job.account), int(fills),
            ))
    return results


def data_options(data_file: Path | None, cash: Decimal | None, slippage_bps: Decimal | None,
                 fee_bps: Decimal | None) -> list[str]:
    """The replay options a sweep passes through to each job."""
    options: list[str] = []
    for flag, value in (("--data", data_file), ("--cash", cash), ("--slippage-bps", slippage_bps),
                        ("--fee-bps", fee_bps)):
        if value is not None:
            options += [flag, str(value)]
    return options
