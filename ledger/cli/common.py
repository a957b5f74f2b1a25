"""What every ``paper-ledger`` command shares: the ``--db`` option, one-line errors, opening the ledger, output.

Errors: every command runs under :class:`LedgerGroup`, which turns a LedgerError, ValueError, database error
or click usage error into ONE line on stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import csv
import json
import shutil
import sys
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, NoReturn, TypeVar

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy import Connection, Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from ledger.book.accounts import account_lookup_name
from ledger.book.store import AccountState, find_account
from ledger.brokers.paper import PaperBroker
from ledger.db.engine import describe_db_error, get_engine, read_transaction, resolve_db_url, translate_db_errors
from ledger.db.migrate import ensure_schema
from ledger.exceptions import LedgerError
from ledger.money import AmountError, to_decimal

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
        except SQLAlchemyError as exc:
            fail(f"database error: {describe_db_error(exc)}")
        except OSError as exc:
            fail(f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""))
        except Exception as exc:  # a bug: still one line, naming the exception so it can be reported
            fail(f"unexpected {type(exc).__name__}: {exc} (please report this)")
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
            number = to_decimal(Decimal(str(value).strip().replace("_", "")), self.name)
        except (ArithmeticError, AmountError, ValueError):
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


DECIMAL = DecimalParam()
CASH = DecimalParam(non_negative=True)
UTC_TIME = UtcTimeParam()


# -- opening the ledger ----------------------------------------------------------------------------------------
def ledger_url(db: str | None, *, must_exist: bool = True) -> str:
    """The resolved URL; a SQLite file must already exist unless ``must_exist`` is False (no accidental files)."""
    url = resolve_db_url(db)
    parsed = make_url(url)
    if must_exist and parsed.get_backend_name() == "sqlite" and parsed.database:
        path = Path(parsed.database).expanduser()
        if not path.is_file():
            raise LedgerError(
                f"no ledger database at {path.resolve()}: create one with `paper-ledger account create NAME "
                "--cash N` or `paper-ledger db upgrade`, or pass --db"
            )
    return url


def open_ledger(db: str | None, *, must_exist: bool = True) -> tuple[str, Engine]:
    """URL and engine of a ledger, its schema brought to head (as opening a broker does)."""
    url = ledger_url(db, must_exist=must_exist)
    engine = get_engine(url)
    ensure_schema(engine)
    return url, engine


@contextmanager
def reading(db: str | None, *, must_exist: bool = True) -> Iterator[Connection]:
    """A connection inside one read transaction on a ledger: a consistent snapshot, no writes."""
    _, engine = open_ledger(db, must_exist=must_exist)
    with translate_db_errors(engine), engine.connect() as conn, read_transaction(conn):
        yield conn


def require_account(conn: Connection, name: str) -> AccountState:
    """The account named ``name``; LedgerError "no such account" otherwise (nothing is created)."""
    name = account_lookup_name(name)  # a bounded, clear error before a 10k-character name is echoed back
    account = find_account(conn, name)
    if account is None:
        raise LedgerError(f"no such account {name!r} (list them with `paper-ledger accounts`; create one with "
                          f"`paper-ledger account create {name} --cash N`)")
    return account


@contextmanager
def existing_broker(db: str | None, account: str) -> Iterator[PaperBroker]:
    """A PaperBroker on an account that must already exist (PaperBroker alone would create it)."""
    with reading(db) as conn:
        require_account(conn, account)
    with PaperBroker(account=account, db_url=ledger_url(db)) as broker:
        yield broker


# -- output ----------------------------------------------------------------------------------------------------
def console() -> Console:
    """Rich console on stdout; wide when not a terminal so piped tables are not cut."""
    width = None if sys.stdout.isatty() else max(200, shutil.get_terminal_size().columns)
    return Console(highlight=False, soft_wrap=False, width=width)


def fmt_number(value: Decimal | float | int | None, min_places: int = 0) -> str:
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


def print_table(
    title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]], numeric: Collection[str] = ()
) -> None:
    """A rich table; cells are plain text (no markup is interpreted), ``numeric`` columns right-aligned."""
    table = Table(title=title, title_justify="left", show_lines=False)
    for column in columns:
        table.add_column(column, justify="right" if column in numeric else "left", overflow="fold")
    for row in rows:
        table.add_row(*(Text("" if cell is None else str(cell)) for cell in row))
    console().print(table)


def print_fields(title: str, fields: Sequence[tuple[str, str]]) -> None:
    """Key/value lines under a title, aligned."""
    click.echo(title)
    width = max(len(key) for key, _ in fields)
    for key, value in fields:
        click.echo(f"  {key.ljust(width)}  {value}")


def json_value(value: Any) -> Any:
    """A database value as JSON: exact amounts as numbers, times as ISO-8601 text."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return value


def write_csv(handle: IO[str], columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if cell is None else (cell.isoformat() if isinstance(cell, (datetime, date)) else cell)
                         for cell in row])


def write_json(handle: IO[str], columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    records = [{column: json_value(cell) for column, cell in zip(columns, row)} for row in rows]
    json.dump(records, handle, indent=1)
    handle.write("\n")


@contextmanager
def output_handle(out: Path | None) -> Iterator[IO[str]]:
    """``out`` opened for writing text, or stdout."""
    if out is None:
        yield sys.stdout
        return
    with open(out, "w", encoding="utf-8", newline="") as handle:
        yield handle
