"""What every ``paper-ledger`` command shares: the ``--db`` option, one-line errors, opening the ledger, output.

Errors: every command runs under :class:`LedgerGroup`, which turns a LedgerError, ValueError, database error
or click usage error into ONE line on stderr and a non-zero exit status, never a traceback.

Start-up: this module is imported by every command, ``--help`` included, so it imports only click and the
standard library at the top; SQLAlchemy, Alembic and rich are imported inside the functions that use them.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import sys
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from ledger.exceptions import LedgerError
from ledger.money import MAX_AMOUNT, AmountError, to_decimal

if TYPE_CHECKING:
    from rich.console import Console
    from sqlalchemy import Connection, Engine

    from ledger.book.store import AccountState
    from ledger.brokers.paper import PaperBroker

F = TypeVar("F", bound=Callable[..., Any])

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    """Print ``Error: message`` as one line on stderr and exit with ``code``."""
    one_line = " ".join(str(message).split())
    click.echo(f"Error: {one_line}", err=True)
    sys.exit(code)


class LedgerGroup(click.Group):
    """A click group whose errors are one line on stderr, both as a console script and under CliRunner."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None, **extra: Any) -> Any:  # type: ignore[override]
        standalone = extra.pop("standalone_mode", True)
        try:
            code = super().main(args=args, prog_name=prog_name, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:  # `paper-ledger db` alone: show that group's help
            click.echo(exc.ctx.get_help() if exc.ctx else str(exc))
            code = 0
        except click.UsageError as exc:
            where = f"{exc.ctx.command_path}: " if exc.ctx is not None else ""
            fail(where + exc.format_message(), EXIT_USAGE)
        except click.ClickException as exc:
            fail(exc.format_message(), exc.exit_code)
        except click.exceptions.Abort:
            fail("aborted", EXIT_INTERRUPTED)
        except KeyboardInterrupt:
            fail("interrupted", EXIT_INTERRUPTED)
        except (LedgerError, ValueError) as exc:
            fail(str(exc) or type(exc).__name__)
        except OSError as exc:
            fail(f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""))
        except Exception as exc:
            sqlalchemy_errors = sys.modules.get("sqlalchemy.exc")  # not imported: not a database error
            if sqlalchemy_errors is not None and isinstance(exc, sqlalchemy_errors.SQLAlchemyError):
                from ledger.db.engine import describe_db_error

                fail(f"database error: {describe_db_error(exc)}")
            fail(f"unexpected {type(exc).__name__}: {exc} (please report this)")  # a bug, still one line
        if not standalone:
            return code
        sys.exit(code if isinstance(code, int) else 0)


def db_option(command: F) -> F:
    """The ``--db URL`` option every command takes."""
    return click.option(
        "--db",
        "db",
        metavar="URL",
        default=None,
        help="Ledger database: a SQLAlchemy URL (sqlite:///file.db, postgresql+psycopg://...) or a SQLite "
        "file path. Default: $LEDGER_DATABASE_URL, then database_url in the config file, then ./paper_ledger.db.",
    )(command)


class DecimalParam(click.ParamType):
    """A number typed on the command line, kept exact (``0.1`` stays ``Decimal('0.1')``).

    Quantities and prices are checked by the broker (which records a rejected order for audit); amounts
    of cash are checked here (``non_negative``).
    """

    name = "number"

    def __init__(self, *, non_negative: bool = False):
        self.non_negative = non_negative

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Decimal:
        if isinstance(value, Decimal):
            return value
        try:
            parsed = Decimal(str(value).strip().replace("_", ""))
        except ArithmeticError:
            self.fail(f"{value!r} is not a finite number", param, ctx)
        if parsed.is_finite() and abs(parsed) >= MAX_AMOUNT:
            self.fail(f"{value!r} is out of range: numbers must be below {MAX_AMOUNT:,} in absolute value", param, ctx)
        try:
            number = to_decimal(parsed, self.name)
        except (AmountError, ValueError):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        if self.non_negative and number < 0:
            self.fail(f"{value} is negative", param, ctx)
        return number


class UtcTimeParam(click.ParamType):
    """An ISO-8601 date or time; a date means its midnight and a time without a zone means UTC."""

    name = "time"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        text = str(value).strip()
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            self.fail(f"{value!r} is not an ISO date or time such as 2024-01-31 or 2024-01-31T14:30:00Z", param, ctx)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


class NonEmptyPath(click.Path):
    """``click.Path`` that refuses an empty (or all-blank) value.

    An empty ``--out ""`` would otherwise mean the working directory, and ``--plot ""`` a file named ``.png``.
    Every path option and argument of paper-ledger uses this type.
    """

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, (str, bytes)) and not value.strip():
            self.fail("an empty path names no file; give a file or directory name", param, ctx)
        return super().convert(value, param, ctx)


DECIMAL = DecimalParam()
CASH = DecimalParam(non_negative=True)
UTC_TIME = UtcTimeParam()


# -- opening the ledger ----------------------------------------------------------------------------------------
# Two ways in. Commands that write (order, cancel, quote, account create/reset, replay, db upgrade) open the
# ledger as PaperBroker does: the schema is created or migrated to head first. Commands that only read open it
# read-only (SQLite mode=ro, PostgreSQL read-only sessions) and never migrate: they refuse an empty or older
# database with a message saying what to run, so reading a ledger can never change it.
def ledger_url(db: str | None, *, must_exist: bool = True) -> str:
    """The resolved URL; a SQLite file must already exist unless ``must_exist`` is False (no accidental files)."""
    from sqlalchemy.engine import make_url

    from ledger.db.engine import resolve_db_url

    url = resolve_db_url(db)
    parsed = make_url(url)
    if must_exist and parsed.get_backend_name() == "sqlite" and parsed.database:
        path = Path(parsed.database).expanduser()
        if not path.is_file():
            raise LedgerError(
                f"no ledger here (no ledger database at {path.resolve()}): create one with `paper-ledger account "
                "create NAME --cash N` or `paper-ledger db upgrade`, or pass --db"
            )
    return url


def open_ledger(db: str | None, *, must_exist: bool = True) -> tuple[str, Engine]:
    """URL and engine of a ledger for a command that writes: its schema created or brought to head."""
    from ledger.db.engine import get_engine
    from ledger.db.migrate import ensure_schema

    url = ledger_url(db, must_exist=must_exist)
    engine = get_engine(url)
    ensure_schema(engine)
    return url, engine


@contextmanager
def reading(db: str | None, *, must_exist: bool = True) -> Iterator[Connection]:
    """A connection inside one read transaction on a ledger: a consistent snapshot.

    By default (the read-only commands) the connection cannot write and the schema must already be at head
    (see :func:`check_schema_at_head`). ``must_exist=False`` is for a command about to create the ledger
    (``account create``): like the writing commands, it creates or migrates the schema first.
    """
    from ledger.db.engine import get_read_only_engine, read_transaction, translate_db_errors
    from ledger.db.migrate import check_schema_at_head

    if must_exist:
        url = ledger_url(db)
        engine = get_read_only_engine(url)
    else:
        url, engine = open_ledger(db, must_exist=False)
    with translate_db_errors(engine), engine.connect() as conn, read_transaction(conn):
        if must_exist:
            check_schema_at_head(conn, ledger_location(url))
        yield conn


def ledger_location(url: str) -> str:
    """The ledger's file (SQLite) or URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        return str(Path(parsed.database).expanduser().resolve())
    return parsed.render_as_string(hide_password=True)


def require_account(conn: Connection, name: str) -> AccountState:
    """The account named ``name``; LedgerError "no such account" otherwise (nothing is created)."""
    from ledger.book.accounts import account_lookup_name
    from ledger.book.store import find_account

    name = account_lookup_name(name)  # a bounded, clear error before a 10k-character name is echoed back
    account = find_account(conn, name)
    if account is None:
        raise LedgerError(f"no such account {name!r} (list them with `paper-ledger accounts`; create one with "
                          f"`paper-ledger account create {name} --cash N`)")
    return account


@contextmanager
def existing_broker(
    db: str | None, account: str, slippage_bps: Decimal | None = None, fee_bps: Decimal | None = None
) -> Iterator[PaperBroker]:
    """A PaperBroker on an account that must already exist (PaperBroker alone would create it); its run has
    these costs (None: the configured ones).

    The commands using it write, so an older schema is migrated first, as opening a broker does.
    """
    from ledger.brokers.paper import PaperBroker
    from ledger.db.engine import read_transaction, translate_db_errors

    url, engine = open_ledger(db)
    with translate_db_errors(engine), engine.connect() as conn, read_transaction(conn):
        require_account(conn, account)
    with PaperBroker(account=account, db_url=url, slippage_bps=slippage_bps, fee_bps=fee_bps) as broker:
        yield broker


# -- output ----------------------------------------------------------------------------------------------------
def console(file: IO[str] | None = None) -> Console:
    """Rich console on ``file`` (default stdout); wide when not a terminal so piped tables are not cut."""
    from rich.console import Console

    target = sys.stdout if file is None else file
    width = None if target.isatty() else max(200, shutil.get_terminal_size().columns)
    return Console(file=file, highlight=False, soft_wrap=False, width=width)


def fmt_number(value: Decimal | float | None, min_places: int = 0) -> str:
    """A number with thousands separators, exactly as stored (up to 6 decimals), at least ``min_places``."""
    if value is None:
        return ""
    if isinstance(value, float):
        if value != value:  # NaN: a missing value in a frame
            return ""
        value = Decimal(repr(value))
    number = Decimal(value)
    places = max(min_places, min(6, -number.normalize().as_tuple().exponent))  # type: ignore[operator]
    return f"{number:,.{places}f}"


def fmt_money(value: Decimal | float | None) -> str:
    return fmt_number(value, 2)


def fmt_percent(fraction: Decimal, signed: bool = True) -> str:
    """A fraction as a percentage with two decimals: 0.0123 -> +1.23%."""
    return f"{fraction * 100:{'+' if signed else ''}.2f}%"


def fmt_time(value: datetime | date | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value.tzinfo else value.isoformat()
    return str(value) if not isinstance(value, date) else value.isoformat()


TABLE_CELL_LIMIT = 200
OUTPUT_FORMATS = ("table", "csv", "json")


def table_text(value: Any) -> tuple[str, bool]:
    """A cell as table text and whether it was shortened: at most TABLE_CELL_LIMIT characters, a blob as its size.

    A table is for reading: a 10 MB cell would take minutes to lay out and nobody reads it there.
    """
    if value is None:
        return "", False
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<blob {len(value):,} bytes>", True
    text = str(value)
    if len(text) > TABLE_CELL_LIMIT:
        return text[:TABLE_CELL_LIMIT] + "…", True
    return text, False


def print_table(
    title: str | None,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    numeric: Collection[str] = (),
    *,
    file: IO[str] | None = None,
) -> None:
    """A rich table on ``file`` (default stdout); cells are plain text (no markup is interpreted), ``numeric``
    columns right-aligned. Long cells and blobs are shortened (see :func:`table_text`) and a footnote says so."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, title_justify="left", show_lines=False)
    for column in columns:
        table.add_column(column, justify="right" if column in numeric else "left", overflow="fold")
    shortened = 0
    for row in rows:
        cells = [table_text(cell) for cell in row]
        shortened += sum(cut for _, cut in cells)
        table.add_row(*(Text(text) for text, _ in cells))
    console(file).print(table)
    if shortened:
        print(f"({shortened} cell{'s' if shortened != 1 else ''} shortened: longer text cut at {TABLE_CELL_LIMIT} "
              "characters, blobs shown as their size; --format csv or json gives every value whole)",
              file=file or sys.stdout)


def print_fields(title: str, fields: Sequence[tuple[str, str]]) -> None:
    """Key/value lines under a title, aligned."""
    click.echo(title)
    width = max(len(key) for key, _ in fields)
    for key, value in fields:
        click.echo(f"  {key.ljust(width)}  {value}")


def json_value(value: Any) -> Any:
    """A database value as JSON: exact amounts as numbers, times as ISO-8601 text, blobs as hex text.

    JSON has no Infinity or NaN: non-finite numbers become the strings "Infinity", "-Infinity" and "NaN".
    """
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    return value


def csv_value(value: Any) -> Any:
    """A database value as a CSV field: NULL empty, times as ISO-8601 text, blobs as hex text."""
    if value is None:
        return ""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    return value


def write_csv(handle: IO[str], columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([csv_value(cell) for cell in row])


def write_json(handle: IO[str], columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    records = [{column: json_value(cell) for column, cell in zip(columns, row)} for row in rows]
    json.dump(records, handle, indent=1, allow_nan=False)
    handle.write("\n")


def write_rows(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    fmt: str,
    out: Path | None = None,
    *,
    numeric: Collection[str] = (),
    title: str | None = None,
) -> None:
    """Rows as ``fmt`` (one of OUTPUT_FORMATS) to the file ``out`` or stdout: the listing commands' one output.

    table: :func:`print_table` (``numeric`` columns right-aligned, ``title`` above it; pass display text);
    csv: a header line then one line per row; json: an array of objects keyed by column (see :func:`json_value`).
    """
    writers = {
        "table": lambda handle: print_table(title, columns, rows, numeric, file=handle),
        "csv": lambda handle: write_csv(handle, columns, rows),
        "json": lambda handle: write_json(handle, columns, rows),
    }
    if fmt not in writers:
        raise ValueError(f"unknown output format {fmt!r}; choose one of {', '.join(OUTPUT_FORMATS)}")
    with output_handle(out) as handle:
        writers[fmt](handle)


@contextmanager
def output_handle(out: Path | None) -> Iterator[IO[str]]:
    """``out`` opened for writing text, or stdout."""
    if out is None:
        yield sys.stdout
        return
    with open(out, "w", encoding="utf-8", newline="") as handle:
        yield handle


# -- rows in a chosen format: table, csv or json -----------------------------------------------------------------
# A column: (key, kind). The table shows ``key`` with spaces and formats by kind (text, number, money, time);
# csv and json carry the exact value under ``key`` (amounts as numbers, times ISO-8601).
Column = tuple[str, str]
_CELL_FORMATS: dict[str, Callable[[Any], str]] = {
    "text": lambda value: "" if value is None else str(value),
    "number": fmt_number,
    "money": fmt_money,
    "time": fmt_time,
}


def row_format_options(command: F) -> F:
    """``--format table|csv|json`` and ``--out FILE``."""
    command = click.option("--out", type=NonEmptyPath(dir_okay=False, path_type=Path), default=None,
                           help="Write to this file instead of stdout.")(command)
    return click.option("--format", "fmt", type=click.Choice(OUTPUT_FORMATS), default="table", show_default=True,
                        help="table to read; csv or json with exact values (amounts as numbers, ISO times).")(command)


def print_rows(fmt: str, out: Path | None, columns: Sequence[Column], rows: Sequence[Sequence[Any]],
               *, title: str | None = None) -> None:
    """``rows`` as a table (cells formatted by their column's kind), csv or json, to ``out`` or stdout."""
    keys = [key for key, _ in columns]
    if fmt == "table":
        write_rows(
            [key.replace("_", " ") for key in keys],
            [[_CELL_FORMATS[kind](cell) for (_, kind), cell in zip(columns, row)] for row in rows],
            fmt,
            out,
            numeric={key.replace("_", " ") for key, kind in columns if kind in ("number", "money")},
            title=title,
        )
    else:
        write_rows(keys, rows, fmt, out)
    if out is not None:
        click.echo(f"wrote {len(rows)} row(s) to {out}", err=True)
