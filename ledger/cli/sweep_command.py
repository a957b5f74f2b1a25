"""``paper-ledger sweep``: a replay per parameter set, each on its own account, run as parallel processes."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ledger.cli.common import CASH, DECIMAL, db_option, fail, fmt_money, fmt_percent, ledger_url, print_table
from ledger.strategies import DEFAULT_STRATEGY, STRATEGIES

if TYPE_CHECKING:
    from ledger.sweep import JobOutcome


@click.command()
@click.option("--grid", "grid_items", multiple=True, required=True, metavar="NAME=V1,V2,...",
              help="A strategy parameter and the values to sweep, e.g. --grid fast=5,10 --grid slow=20,40: "
              "every combination is one job.")
@click.option("--strategy", type=click.Choice(sorted(STRATEGIES)), default=DEFAULT_STRATEGY, show_default=True,
              help="The strategy every job replays, with its own parameters.")
@click.option("--prefix", default="sweep", show_default=True,
              help="Account names are PREFIX-<name><value>-... (one account per job).")
@click.option("--processes", "-j", type=click.IntRange(1, 64), default=None,
              help="Jobs run at once (default: the number of CPUs).")
@click.option("--data", "data_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Bars to replay (default: the packaged synthetic sample).")
@click.option("--cash", type=CASH, default=None, help="Initial cash of each new account.")
@click.option("--slippage-bps", type=DECIMAL, default=None, help="Slippage of each job's run, in bps.")
@click.option("--fee-bps", type=DECIMAL, default=None, help="Fee of each job's run, in bps of the notional.")
@db_option
def sweep(
    grid_items: tuple[str, ...], strategy: str, prefix: str, processes: int | None, data_file: Path | None,
    cash: Decimal | None, slippage_bps: Decimal | None, fee_bps: Decimal | None, db: str | None,
) -> None:
    """Replay one strategy over a grid of its parameters, one account and one process per combination.

    Every job is a `paper-ledger replay` of its own account in the same ledger: durable, resumable and locked
    like any replay, so a sweep interrupted and run again resumes the unfinished jobs and leaves the finished
    ones alone. Ends with a table of every job's equity, return, max drawdown and fills, read from the ledger.
    On PostgreSQL the jobs write in parallel; on SQLite they take turns at the single write lock.

    Exit status: 0 every job done, 1 a job failed (its output is shown), 2 usage error.
    """
    from ledger.sweep import data_options, parse_grid, plan_sweep, replay_command, run_sweep, sweep_results

    try:
        jobs = plan_sweep(strategy, parse_grid(grid_items), prefix)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--grid") from None
    url = ledger_url(db, must_exist=False)
    workers = processes or os.cpu_count() or 1
    options = data_options(data_file, cash, slippage_bps, fee_bps)
    click.echo(f"sweep of {len(jobs)} job(s) of {strategy}, {workers} at a time")

    def done(outcome: JobOutcome) -> None:
        status = "done" if outcome.returncode == 0 else f"FAILED (exit {outcome.returncode})"
        click.echo(f"  {outcome.job.account}: {status} in {outcome.seconds:.1f} s")

    outcomes = run_sweep(jobs, lambda job: replay_command(job, strategy, url, options), workers, done)
    results = sweep_results(url, jobs)
    print_table(
        "results (equity at the last quotes; return on capital; max drawdown as `paper-ledger report`)",
        ("account", "strategy", "equity", "return", "max drawdown", "fills"),
        [(r.account, r.spec, fmt_money(r.equity), fmt_percent(r.total_return), fmt_percent(r.max_drawdown, signed=False),
          str(r.fills)) for r in results],
        numeric={"equity", "return", "max drawdown", "fills"},
    )
    failed = [outcome for outcome in outcomes if outcome.returncode != 0]
    for outcome in failed:
        click.echo(f"--- {outcome.job.account} (exit {outcome.returncode}):\n{outcome.output[-2000:]}", err=True)
    if failed:
        fail(f"{len(failed)} of {len(jobs)} job(s) failed", 1)
