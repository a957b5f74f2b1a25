"""``paper-ledger`` audit commands: fills, export, runs, read-only SQL, verify, and the equity report."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING

import click

from ledger.book.validation import normalize_symbol
from ledger.book.verify import verify_ledger
from ledger.cli.common import (
    OUTPUT_FORMATS,
    UTC_TIME,
    NonEmptyPath,
    db_option,
    fail,
    fmt_money,
    fmt_number,
    fmt_percent,
    fmt_time,
    ledger_url,
    output_handle,
    print_fields,
    print_table,
    reading,
    require_account,
    write_rows,
)
from ledger.exceptions import LedgerError
from ledger.export import export_jsonl
from ledger.queries import RUN_COLUMNS, capital, fills_stmt, portfolio_value, runs_stmt, symbol_totals_stmt, total_return
from ledger.sql_console import run_read_only

if TYPE_CHECKING:
    import pandas as pd

# ledger.reports and ledger.replay are imported inside the commands that use them: they bring pandas,
# about half a second of start-up that the other commands do not need.

FILL_FORMATS = ("table", "csv", "jsonl", "parquet")


@click.command()
@click.argument("name")
@click.option("--since", type=UTC_TIME, default=None, help="Only fills at or after this ISO time (UTC if no zone).")
@click.option("--symbol", default=None, help="Only fills of this symbol.")
@click.option("--format", "fmt", type=click.Choice(FILL_FORMATS), default="table", show_default=True)
@click.option("--out", type=NonEmptyPath(dir_okay=False, path_type=Path), default=None,
              help="Write to this file instead of stdout (required for parquet); a table is written as its text.")
@db_option
def fills(name: str, since: datetime | None, symbol: str | None, fmt: str, out: Path | None, db: str | None) -> None:
    """List the fills of account NAME (current epoch), oldest first.

    csv, jsonl and parquet carry every column of ledger.reports.fills_frame (amounts as numbers, times
    as ISO-8601 UTC); parquet needs the `parquet` extra (pyarrow).
    """
    from ledger.reports import fills_frame, write_fills_csv

    clean_symbol = None if symbol is None else normalize_symbol(symbol)
    if fmt == "parquet" and out is None:
        raise click.UsageError("--format parquet needs --out FILE")
    with reading(db) as conn:
        state = require_account(conn, name)
        if fmt == "table":
            rows = conn.execute(fills_stmt(state.id, since=since, symbol=clean_symbol)).all()
            with output_handle(out) as handle:
                _print_fills(rows, handle)
            written = len(rows)
        elif fmt == "csv":
            with output_handle(out) as handle:
                written = write_fills_csv(conn, name, handle, since=since, symbol=clean_symbol)
        else:
            frame = fills_frame(conn, name, since=since, symbol=clean_symbol)
            written = len(frame)
    if fmt == "parquet":
        _write_parquet(frame, out)  # type: ignore[arg-type]
    elif fmt == "jsonl":
        with output_handle(out) as handle:
            frame.to_json(handle, orient="records", lines=True, date_format="iso", date_unit="us")
    if out is not None:
        click.echo(f"wrote {written} fills to {out}")


def _print_fills(rows: list, handle: IO[str]) -> None:
    if not rows:
        print("no fills", file=handle)
        return
    columns = ("filled", "side", "qty", "symbol", "price", "notional", "fee", "realized P&L", "order_id")
    print_table(
        None,
        columns,
        [(fmt_time(row.filled_at), row.side, fmt_number(row.qty_e6), row.symbol, fmt_money(row.price_e6),
          fmt_money(row.notional_e6), fmt_money(row.fee_e6), fmt_money(row.realized_pnl_e6), row.order_id)
         for row in rows],
        numeric={"qty", "price", "notional", "fee", "realized P&L"},
        file=handle,
    )


def _write_parquet(frame: pd.DataFrame, out: Path) -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise LedgerError("--format parquet needs pyarrow: pip install 'paper-ledger[parquet]'") from None
    frame.to_parquet(out, index=False)


@click.command()
@click.argument("name")
@click.option("--out", type=NonEmptyPath(file_okay=False, path_type=Path), required=True, help="Directory to write to.")
@click.option("--since", type=UTC_TIME, default=None, help="From the UTC day containing this time.")
@db_option
def export(name: str, out: Path, since: datetime | None, db: str | None) -> None:
    """Write account NAME's fills (every epoch) as daily YYYY-MM-DD.jsonl files in the seed's log format."""
    with reading(db) as conn:
        state = require_account(conn, name)
        paths = export_jsonl(conn, state.id, out, since)
    click.echo(f"wrote {len(paths)} daily file(s) to {out}")
    for path in paths:
        click.echo(f"  {path}")


@click.command()
@click.argument("name")
@click.option("--format", "fmt", type=click.Choice(OUTPUT_FORMATS), default="table", show_default=True,
              help="csv and json carry v_runs' columns, times as ISO-8601 UTC; JSON writes non-finite numbers "
              "as the strings Infinity/-Infinity/NaN.")
@click.option("--out", type=NonEmptyPath(dir_okay=False, path_type=Path), default=None,
              help="Write to this file instead of stdout.")
@db_option
def runs(name: str, fmt: str, out: Path | None, db: str | None) -> None:
    """List the runs (trading sessions, one per process or CLI command) of account NAME."""
    with reading(db) as conn:
        state = require_account(conn, name)
        rows = conn.execute(runs_stmt(state.id)).all()
    if fmt == "table":
        columns = ("run_id", "started", "ended", "slippage bps", "fee bps", "host", "pid", "orders", "fills")
        write_rows(
            columns,
            [(row.run_id, fmt_time(row.started_at), fmt_time(row.ended_at) or "(open)",
              fmt_number(row.slippage_bps), fmt_number(row.fee_bps), row.host, row.pid, row.order_count,
              row.fill_count) for row in rows],
            fmt,
            out,
            numeric={"slippage bps", "fee bps", "pid", "orders", "fills"},
        )
    else:
        write_rows(RUN_COLUMNS, [tuple(getattr(row, column) for column in RUN_COLUMNS) for row in rows], fmt, out)
    if out is not None:
        click.echo(f"wrote {len(rows)} runs to {out}")


@click.command()
@click.argument("statement")
@click.option("--format", "fmt", type=click.Choice(OUTPUT_FORMATS), default="table", show_default=True,
              help="table shortens cells to 200 characters and shows blobs as their size (a footnote says so); "
              "csv and json give every value whole, blobs as hex; JSON writes non-finite numbers as the "
              "strings Infinity/-Infinity/NaN.")
@db_option
def sql(statement: str, fmt: str, db: str | None) -> None:
    """Run one read-only SQL statement, such as "SELECT * FROM v_fills", and print its rows.

    The connection itself cannot write (SQLite opened read-only; PostgreSQL read-only transactions, always
    rolled back): UPDATE, DELETE, DROP, PRAGMA journal_mode=... and the like are refused and change nothing.
    The v_* views give amounts in human units (docs/schema.md).
    """
    with reading(db):  # the same checks as every read command: a ledger at this version's schema
        pass
    result = run_read_only(ledger_url(db), statement)
    if fmt == "table":
        write_rows(result.columns, [[_cell(value) for value in row] for row in result.rows], fmt)
        click.echo(f"({len(result.rows)} row{'s' if len(result.rows) != 1 else ''})")
    else:
        write_rows(result.columns, result.rows, fmt)


def _cell(value: object) -> object:
    if value is None:
        return "NULL"
    if isinstance(value, datetime):
        return value.isoformat()
    return value


@click.command()
@click.argument("name", required=False)
@db_option
def verify(name: str | None, db: str | None) -> None:
    """Check the ledger's invariants (for account NAME, or every account): exit 0 when all hold.

    Otherwise list each problem and exit 1. Checked from the tables: cash = sum of cash movements, positions
    = sum of signed fills, reservations = resting orders, fills match their orders and cash movements.
    """
    with reading(db) as conn:
        account_id = None if name is None else require_account(conn, name).id
        problems = verify_ledger(conn, account_id)
    scope = f"account {name!r}" if name else "every account"
    if problems:
        for problem in problems:
            click.echo(f"- {problem}")
        fail(f"{len(problems)} problem(s) found in {scope}")
    click.echo(f"ok: every invariant holds for {scope}")


@click.command()
@click.argument("name")
@click.option("--plot", type=NonEmptyPath(dir_okay=False, path_type=Path), default=None,
              help="Draw the equity curve to this image file (PNG, SVG or PDF; needs the `plot` extra).")
@db_option
def report(name: str, plot: Path | None, db: str | None) -> None:
    """Performance of account NAME (current epoch): equity, return, drawdown, fees, per-symbol totals.

    The equity curve is ledger.reports.equity_curve: the account's equity marks (cash plus positions at the
    mid of their last quote, at every fill, replay bar and quote interval).
    """
    from ledger.reports import account_max_drawdown, equity_curve

    with reading(db) as conn:
        state = require_account(conn, name)
        equity = portfolio_value(conn, state.id)
        invested = capital(conn, state.id)
        totals = conn.execute(symbol_totals_stmt(state.id)).all()
        curve = equity_curve(conn, name)
        drawdown = account_max_drawdown(conn, name)
    fees = sum((row.fee_e6 for row in totals), start=0)
    notional = sum((row.notional_e6 for row in totals), start=0)
    print_fields(
        f"account {state.name} (epoch {state.epoch})",
        [
            ("initial cash", fmt_money(state.initial_cash)),
            ("net deposits", fmt_money(invested - state.initial_cash)),
            ("equity (at last quotes)", fmt_money(equity)),
            ("return", "n/a" if (gain := total_return(equity, invested)) is None else fmt_percent(gain)),
            ("max drawdown (equity marks, net of deposits)", fmt_percent(drawdown, signed=False)),
            ("fills", str(sum(row.fill_count for row in totals))),
            ("fees", fmt_money(fees)),
            ("traded notional", fmt_money(notional)),
        ],
    )
    if totals:
        columns = ("symbol", "fills", "bought", "sold", "notional", "fees", "realized P&L")
        print_table(
            None,
            columns,
            [(row.symbol, row.fill_count, fmt_number(row.bought_qty_e6), fmt_number(row.sold_qty_e6),
              fmt_money(row.notional_e6), fmt_money(row.fee_e6), fmt_money(row.realized_pnl_e6)) for row in totals],
            numeric=set(columns[1:]),
        )
    if plot is not None:
        draw_equity(curve, plot, f"{state.name}: equity (cash + holdings at last fill price)")
        click.echo(f"equity curve drawn to {plot}")


def draw_equity(curve: pd.DataFrame, path: Path, title: str) -> None:
    """Plot ``curve`` (columns timestamp, equity) as a step line to ``path`` with matplotlib's Agg backend."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display needed, works on servers
        import matplotlib.pyplot as plt
    except ImportError:
        raise LedgerError("--plot needs matplotlib: pip install 'paper-ledger[plot]'") from None
    figure, axes = plt.subplots(figsize=(10, 4.5))
    try:
        axes.step(curve["timestamp"], curve["equity"], where="post", linewidth=1.2)
        axes.set_title(title)
        axes.set_ylabel("equity")
        axes.grid(alpha=0.3)
        figure.autofmt_xdate()
        figure.tight_layout()
        figure.savefig(path)
    finally:
        plt.close(figure)


COMMANDS = (fills, export, runs, sql, verify, report)
