"""``paper-ledger replay``: the main job, with a progress bar and a closing summary (see ledger.replay)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ledger.cli.common import CASH, DECIMAL, db_option, fail, fmt_money, fmt_percent, ledger_url, print_fields
from ledger.strategies import DEFAULT_STRATEGY, STRATEGIES, get_strategy, strategy_spec

if TYPE_CHECKING:
    from ledger.replay import BarData, ReplayJob, ReplaySummary, StepReport

DEFAULT_REPLAY_ACCOUNT = "replay"
EXIT_JOB_LOCKED = 4


@click.command()
@click.option("--account", "-a", default=DEFAULT_REPLAY_ACCOUNT, show_default=True,
              help="Account to trade (created on first use with --cash).")
@click.option("--data", "data_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Bars to replay: CSV or Parquet with timestamp, symbol, open, high, low, close, volume. "
              "Default: the packaged synthetic sample (offline).")
@click.option("--symbols", default=None, help="Comma-separated tickers to fetch from Yahoo Finance instead of --data.")
@click.option("--start", default=None, help="With --symbols: first day (YYYY-MM-DD, inclusive).")
@click.option("--end", default=None, help="With --symbols: last day (YYYY-MM-DD, exclusive).")
@click.option("--strategy", type=click.Choice(sorted(STRATEGIES)), default=DEFAULT_STRATEGY, show_default=True,
              help="; ".join(f"{name}: {cls.summary}" for name, cls in sorted(STRATEGIES.items())) + ".")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
              help="A strategy parameter, e.g. --param fast=5 --param slow=20 (sma-crossover, sma-stops). Other "
              "parameters make another job.")
@click.option("--cash", type=CASH, default=None,
              help="Initial cash of a new account (default: config initial_cash, 100000).")
@click.option("--slippage-bps", type=DECIMAL, default=None,
              help="Market-order slippage of a new job's run, in bps (default: config). A resumed job keeps its run's.")
@click.option("--fee-bps", type=DECIMAL, default=None,
              help="Fee of a new job's run, in bps of the notional (default: config). A resumed job keeps its run's.")
@click.option("--force-unlock", is_flag=True,
              help="Take the account's replay lock even from a holder this host cannot check (another host). "
              "Only when you know that process is gone.")
@click.option("--verbose", "-v", is_flag=True, help="One line per bar instead of a progress bar.")
@db_option
def replay(
    account: str,
    data_file: Path | None,
    symbols: str | None,
    start: str | None,
    end: str | None,
    strategy: str,
    params: tuple[str, ...],
    cash: Decimal | None,
    slippage_bps: Decimal | None,
    fee_bps: Decimal | None,
    force_unlock: bool,
    verbose: bool,
    db: str | None,
) -> None:
    """Replay daily bars as quotes, in market time, to an example strategy trading a paper account.

    Each bar sets one quote per symbol (a 10 bps synthetic spread around the close, stamped with the
    bar's time), then the strategy's market orders for that bar are placed in one transaction with
    deterministic client_order_ids. With no options it runs offline on the packaged synthetic sample.

    Resumable: killed at any point and started again with the same options, it continues after the last
    bar it traded and ends in the same state as an uninterrupted run; nothing is ordered twice. Progress
    is read from the ledger itself. A finished job run again writes nothing and just prints its summary; to replay an account
    from scratch, `paper-ledger account reset NAME` first (or use another account).

    One replay at a time per account: a running replay holds the account's `replay` lock (table job_locks),
    and a second replay of the same account, whatever its strategy or bars, is refused with exit status 4
    and a line naming the holder's host, pid and start time. A lock left by a killed replay is taken over
    by the next run on the same host once that pid is gone; a holder on another host cannot be checked from
    here, so it is refused until you run with --force-unlock (only when you know that process is gone).

    Summary figures: equity at the last quotes, return on initial cash, max drawdown (the account's, as
    `paper-ledger report` computes it), number of fills, fees, and turnover (traded notional / initial cash).

    Exit status: 0 done (or already finished), 1 error, 2 usage error, 4 another replay holds the account,
    130 interrupted.
    """
    # Imported here: the replay brings pandas, start-up time the other commands do not need.
    from ledger.jobs import JobLockedError
    from ledger.replay import Costs, start_replay

    strategy = _strategy(strategy, params)
    url = ledger_url(db, must_exist=False)
    data = _bar_data(data_file, symbols, start, end, url)
    click.echo(f"replaying {data.describe()}")
    click.echo(f"strategy {strategy} on account {account!r}, ledger {_shown(url)}")
    try:
        with start_replay(
            data, account=account, strategy=strategy, db_url=url, initial_cash=cash,
            costs=Costs(slippage_bps, fee_bps), force_unlock=force_unlock,
        ) as job:
            if job.lock is not None and job.lock.taken_over is not None:
                click.echo(f"took over the replay lock of {job.lock.taken_over.describe()}: that process is gone",
                           err=True)
            if job.finished:
                click.echo("this job already finished: nothing to replay, nothing written")
            elif job.resume.resumed:
                at = job.resume.index
                click.echo(f"resuming at bar {at + 1}/{len(data.timestamps)} ({data.timestamps[at]:%Y-%m-%d}), "
                           "the last bar this job stored")
            summary = _run(job, verbose)
    except JobLockedError as exc:
        fail(str(exc), EXIT_JOB_LOCKED)
    _print_summary(summary)


def _strategy(name: str, params: tuple[str, ...]) -> str:
    """The strategy spec of ``--strategy`` and its ``--param NAME=VALUE`` options (a usage error when wrong)."""
    chosen: dict[str, str] = {}
    for item in params:
        param, equals, value = item.partition("=")
        if not equals or not param.strip() or param.strip() in chosen:
            raise click.BadParameter(f"expected NAME=VALUE, each name once; got {item!r}"[:120], param_hint="--param")
        chosen[param.strip()] = value.strip()
    try:
        spec = strategy_spec(name, chosen)
        get_strategy(spec)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--param") from None
    return spec


def _bar_data(data_file: Path | None, symbols: str | None, start: str | None, end: str | None, url: str) -> BarData:
    from ledger.data import sample_bars_path
    from ledger.replay import fetch_bar_data, load_bar_file

    if symbols is None:
        if start is not None or end is not None:
            raise click.UsageError("--start/--end go with --symbols")
        if data_file is not None:
            return load_bar_file(data_file)
        return load_bar_file(sample_bars_path(), "packaged synthetic sample (not real market data)")
    if data_file is not None:
        raise click.UsageError("give either --data or --symbols, not both")
    if start is None or end is None:
        raise click.UsageError("--symbols needs --start and --end")
    tickers = [ticker.strip().upper() for ticker in symbols.split(",") if ticker.strip()]
    return fetch_bar_data(tickers, start, end, url)


def _shown(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _run(job: ReplayJob, verbose: bool) -> ReplaySummary:
    """Run the job showing one line per bar (--verbose, flushed: scripts can follow it) or a progress bar."""
    from ledger.replay import run_replay

    rejections: list[str] = []
    progress_console = Console(stderr=True)
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=progress_console, disable=verbose or not progress_console.is_terminal,
    )
    task = progress.add_task("replaying", total=len(job.data.timestamps))

    def show(step: StepReport) -> None:
        if step.rejected:
            rejections.append(f"{step.timestamp:%Y-%m-%d}: {step.rejected}")
        if verbose:
            state = "traded" if step.traded else "already done"
            line = f"bar {step.index + 1}/{step.total} {step.timestamp:%Y-%m-%d} {state} orders={step.orders}"
            click.echo(line + (f" rejected: {step.rejected}" if step.rejected else ""))
        else:
            progress.update(task, completed=step.index + 1, description=f"{step.timestamp:%Y-%m-%d}")

    try:
        with progress:
            summary = run_replay(job, on_step=show)
    except KeyboardInterrupt:
        fail("interrupted; run the same command again to resume where it stopped", 130)
    if not verbose:  # in verbose mode each bar's line already said it
        for rejection in rejections:
            click.echo(f"orders not placed on {rejection}", err=True)
    return summary


def _print_summary(summary: ReplaySummary) -> None:
    if summary.already_finished:
        resumed = "already finished"
    else:
        resumed = "no" if summary.resumed_at is None else f"yes, from bar {summary.resumed_at + 1}"
    print_fields(
        "summary",
        [
            ("bars", str(summary.bars)),
            ("resumed", resumed),
            ("initial cash", fmt_money(summary.initial_cash)),
            ("equity", fmt_money(summary.equity.quantize(Decimal("0.01")))),
            ("return", fmt_percent(summary.total_return)),
            ("max drawdown", fmt_percent(summary.max_drawdown, signed=False)),
            ("trades (fills)", str(summary.trades)),
            ("fees", fmt_money(summary.fees)),
            ("turnover", f"{summary.turnover:.2f}x initial cash "
                         f"({fmt_money(summary.traded_notional)} traded)"),
            ("run", summary.run_id or "none (no order placed)"),
        ],
    )
