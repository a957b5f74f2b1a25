"""Fault injection: an error anywhere inside a write transaction leaves no partial rows and no balance changed.

For each use case (open an account, market and limit orders, a rejection, cancels, a quote that fills resting
orders, a batch of quotes filling orders of two symbols, reset; and of the order model: a replace, one that
fills a partially filled order again, a quote that triggers stops and partially fills orders by displayed size,
a quote that expires a day order, cancel all, close a position) the test first runs it once on a scout account to discover its write points, then, on an identical
account, makes it fail at each of them in turn:

- in Python, right after each call of a row-writing function or method of ``ledger.book.store`` (``insert_*``,
  ``save_*``, ``update_*``, ``upsert_*``, ``add_*``, ``touch_*``, ``flush``) - the original runs, then it raises;
- in the database, with a trigger that raises right after the statement that inserts or updates rows of each
  table the use case touches (after the order insert, after the fill insert, ...);
- at commit, from SQLAlchemy's ``commit`` event: after every statement, before the database commits (both an
  ordinary exception and ``KeyboardInterrupt``).

After each failure every row of every table must be exactly as before, the broker's connection must not hold
the write lock (another connection can lock the account at once), and ``verify()`` must be empty. Finally the
use case runs for real and must produce exactly the rows it produced on the scout account: a failed attempt that
was committed later by the next transaction on the same connection would show up as extra rows.
"""

from __future__ import annotations

import functools
import inspect
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import MetaData, event, text

from ledger.book import store
from ledger.brokers.paper import PaperBroker
from ledger.db.engine import get_engine
from ledger.exceptions import OrderRejectedError
from tests.conftest import FakeClock, ledger_problems, table_snapshot

WRITE_PREFIXES = ("insert_", "save_", "update_", "upsert_", "add_", "touch_", "flush")


class InjectedFault(Exception):
    """The error this test raises inside a write transaction."""


# -- the use cases ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scenario:
    name: str
    setup: Callable[[PaperBroker], None]
    action: Callable[[PaperBroker, str], object]


def _quote(broker: PaperBroker) -> None:
    broker.set_quote("AAPL", bid=150.0, ask=150.10)


def _holding(broker: PaperBroker) -> None:
    _quote(broker)
    broker.submit_order("AAPL", "BUY", 40)


def _resting_buys(broker: PaperBroker) -> None:
    _quote(broker)
    broker.submit_order("AAPL", "BUY", 10, "limit", 149.0)
    broker.submit_order("AAPL", "BUY", 5, "limit", 148.5)


def _resting_sell(broker: PaperBroker) -> None:
    _holding(broker)
    broker.submit_order("AAPL", "SELL", 15, "limit", 152.0)


def _open_account(broker: PaperBroker, tag: str) -> PaperBroker:
    return PaperBroker(db_url=broker.db_url, account=f"opened-{tag}", initial_cash=25_000, clock=broker._clock)


def _rejected_for_cash(broker: PaperBroker, tag: str) -> None:
    with pytest.raises(OrderRejectedError):  # recorded as rejected, then raised: the rejection must commit
        broker.submit_order("AAPL", "BUY", 10_000)


def _cancel_first_resting(broker: PaperBroker, tag: str) -> object:
    return broker.cancel_order(broker.get_orders(status="new")[0]["order_id"])


def _submit(*args: object) -> Callable[[PaperBroker, str], object]:
    return lambda broker, tag: broker.submit_order(*args)


def _quote_at(bid: float, ask: float) -> Callable[[PaperBroker, str], object]:
    return lambda broker, tag: broker.set_quote("AAPL", bid=bid, ask=ask)


def _partially_filled_buy(broker: PaperBroker) -> None:
    """Displayed-size fills: a marketable limit buy of 20 takes the 5 shown and rests for the other 15; the ask
    then moves above its limit (5 shown again)."""
    broker.configure(fill_model="displayed_size")
    broker.set_quote("AAPL", bid=150.0, ask=150.10, bid_size=5, ask_size=5)
    broker.submit_order("AAPL", "BUY", 20, "limit", 150.2)
    broker.set_quote("AAPL", bid=150.1, ask=150.25, bid_size=5, ask_size=5)


def _replace_first_open(**changes: object) -> Callable[[PaperBroker, str], object]:
    return lambda broker, tag: broker.replace_order(broker.get_orders(status="open")[0]["order_id"], **changes)


def _stops_and_limits_resting(broker: PaperBroker) -> None:
    """Displayed-size fills; 40 AAPL held; resting: a stop sell, a trailing stop sell, a limit buy, a stop buy."""
    broker.configure(fill_model="displayed_size")
    broker.set_quote("AAPL", bid=150.0, ask=150.10, bid_size=100, ask_size=100)
    broker.submit_order("AAPL", "BUY", 40)
    broker.submit_order("AAPL", "SELL", 15, "stop", stop_price=149.0)
    broker.submit_order("AAPL", "SELL", 10, "trailing_stop", trail_price=0.5)
    broker.submit_order("AAPL", "BUY", 10, "limit", 148.5)
    broker.submit_order("AAPL", "BUY", 5, "stop_limit", stop_price=152.0, limit_price=153.0)


def _resting_day_order(broker: PaperBroker) -> None:
    _quote(broker)
    broker.submit_order("AAPL", "BUY", 10, "limit", 140.0, time_in_force="day")


def _quote_after_the_close(broker: PaperBroker, tag: str) -> object:
    broker._clock.advance(hours=8)  # type: ignore[attr-defined]  # past 21:00 UTC: the day order is due
    return broker.set_quote("AAPL", bid=150.0, ask=150.10)


def _short_book(broker: PaperBroker) -> None:
    """A Reg T margin account, 30 AAPL short; resting: a short limit sell adding 10 and a buy stop covering 10."""
    broker.configure(max_margin_multiplier=2, shorting_enabled=True)
    _quote(broker)
    broker.submit_order("AAPL", "SELL", 30)
    broker.submit_order("AAPL", "SELL", 10, "limit", 151.0)
    broker.submit_order("AAPL", "BUY", 10, "stop", stop_price=152.0)


def _resting_in_two_symbols(broker: PaperBroker) -> None:
    _resting_buys(broker)
    broker.set_quote("MSFT", bid=400.0, ask=400.4)
    broker.submit_order("MSFT", "BUY", 3, "limit", 399.0)


SCENARIOS = [
    Scenario("open a new account", lambda broker: None, _open_account),
    Scenario("market buy", _quote, _submit("AAPL", "BUY", 10)),
    Scenario("market sell", _holding, _submit("AAPL", "SELL", 15)),
    Scenario("marketable limit buy", _quote, _submit("AAPL", "BUY", 10, "limit", 150.2)),
    Scenario("resting limit buy", _quote, _submit("AAPL", "BUY", 10, "limit", 140.0)),
    Scenario("resting limit sell", _holding, _submit("AAPL", "SELL", 5, "limit", 160.0)),
    Scenario("order rejected for cash", _quote, _rejected_for_cash),
    Scenario("cancel a resting buy", _resting_buys, _cancel_first_resting),
    Scenario("cancel a resting sell", _resting_sell, _cancel_first_resting),
    Scenario("quote fills two resting buys", _resting_buys, _quote_at(148.0, 148.4)),
    Scenario("quote fills a resting sell", _resting_sell, _quote_at(152.5, 152.6)),
    Scenario("reset with resting orders", _resting_sell, lambda broker, tag: broker.reset(initial_cash=70_000)),
    Scenario("replace a resting limit buy", _resting_buys, _replace_first_open(qty=8, limit_price=149.5)),
    Scenario("replace a partially filled buy, filling again", _partially_filled_buy,
             _replace_first_open(limit_price=150.3)),
    Scenario("quote triggers stops and partially fills orders", _stops_and_limits_resting,
             lambda broker, tag: broker.set_quote("AAPL", bid=148.2, ask=148.4, bid_size=12, ask_size=6)),
    Scenario("quote after the close expires a day order", _resting_day_order, _quote_after_the_close),
    Scenario("quotes batch fills resting buys of two symbols", _resting_in_two_symbols,
             lambda broker, tag: broker.set_quotes({"AAPL": (148.0, 148.4), "NVDA": (90.0, 90.1), "MSFT": (398.0, 398.5)})),
    Scenario("cancel all orders", _stops_and_limits_resting, lambda broker, tag: broker.cancel_all_orders()),
    Scenario("close a position held by no order", _holding, lambda broker, tag: broker.close_position("AAPL", qty=15)),
    Scenario("quote fills a short sale and a buy stop that covers", _short_book, _quote_at(151.5, 152.2)),
]


# -- injection points ------------------------------------------------------------------------------------------
def _store_writers() -> list[tuple[Any, str]]:
    """(owner, attribute) of every row-writing function of ledger.book.store and method of its classes."""
    owners: list[Any] = [store] + [
        cls for _, cls in inspect.getmembers(store, inspect.isclass) if cls.__module__ == store.__name__
    ]
    return [
        (owner, name)
        for owner in owners
        for name, member in vars(owner).items()
        if name.startswith(WRITE_PREFIXES) and inspect.isfunction(member)
    ]


@contextmanager
def python_writes(monkeypatch: pytest.MonkeyPatch, fail_at: int | None = None) -> Iterator[list[str]]:
    """Record each store write call; with ``fail_at`` = n, the n-th call runs and then raises InjectedFault."""
    calls: list[str] = []
    with monkeypatch.context() as patch:
        for owner, name in _store_writers():
            original = vars(owner)[name]
            patch.setattr(owner, name, _counting(original, f"{owner.__name__}.{name}", calls, fail_at))
        yield calls


def _counting(original: Callable[..., Any], name: str, calls: list[str], fail_at: int | None) -> Callable[..., Any]:
    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        calls.append(name)
        if len(calls) == fail_at:
            raise InjectedFault(f"injected fault after {name}")
        return result

    return wrapper


@contextmanager
def trigger_fault(db_url: str, table: str, operation: str) -> Iterator[None]:
    """A trigger that raises right after any row of ``table`` is inserted/updated, for the duration."""
    postgres = not db_url.startswith("sqlite")
    with get_engine(db_url).begin() as conn:
        if postgres:
            conn.execute(text(
                "CREATE OR REPLACE FUNCTION ledger_test_fault() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'injected fault after % on %', TG_OP, TG_TABLE_NAME; END $$"
            ))
            conn.execute(text(
                f"CREATE TRIGGER ledger_test_fault AFTER {operation} ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION ledger_test_fault()"
            ))
        else:
            conn.execute(text(
                f"CREATE TRIGGER ledger_test_fault AFTER {operation} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, 'injected fault after {operation} on {table}'); END"
            ))
    try:
        yield
    finally:
        with get_engine(db_url).begin() as conn:
            conn.execute(text("DROP TRIGGER ledger_test_fault" + (f" ON {table}" if postgres else "")))


@contextmanager
def fault_at_commit(db_url: str, error: BaseException) -> Iterator[None]:
    def before_commit(conn: Any) -> None:
        raise error

    engine = get_engine(db_url)
    event.listen(engine, "commit", before_commit)
    try:
        yield
    finally:
        event.remove(engine, "commit", before_commit)


# -- checks ----------------------------------------------------------------------------------------------------
def keyed_rows(db_url: str) -> dict[str, dict[tuple, tuple]]:
    """Every row of every table keyed by primary key, to tell inserted rows from updated ones."""
    metadata = MetaData()
    with get_engine(db_url).connect() as conn:
        metadata.reflect(conn)
        return {
            name: {
                tuple(row._mapping[column.name] for column in table.primary_key.columns): tuple(row)
                for row in conn.execute(table.select())
            }
            for name, table in metadata.tables.items()
        }


def touched_tables(before: dict[str, dict], after: dict[str, dict]) -> list[tuple[str, str]]:
    """(table, INSERT|UPDATE) pairs the change from ``before`` to ``after`` needed."""
    touched = []
    for table, rows in after.items():
        old = before.get(table, {})
        if any(key not in old for key in rows):
            touched.append((table, "INSERT"))
        if any(key in old and old[key] != row for key, row in rows.items()):
            touched.append((table, "UPDATE"))
    return touched


def causes(error: BaseException | None) -> str:
    """The messages of an exception and of everything it was raised from or during."""
    messages = []
    while error is not None:
        messages.append(f"{type(error).__name__}: {error}")
        error = error.__cause__ or error.__context__
    return " <- ".join(messages)


def row_counts(db_url: str) -> dict[str, int]:
    return {table: len(rows) for table, rows in table_snapshot(db_url).items()}


def assert_account_not_locked(db_url: str, account: str, where: str) -> None:
    """Another connection can take the account's write lock at once: the failed transaction let go of it."""
    try:
        if db_url.startswith("sqlite"):
            other = sqlite3.connect(db_url.removeprefix("sqlite:///"), timeout=0, isolation_level=None)
            try:
                other.execute("BEGIN IMMEDIATE")
                other.execute("ROLLBACK")
            finally:
                other.close()
            return
        with get_engine(db_url).connect() as conn, conn.begin():
            conn.execute(text("SET LOCAL lock_timeout = '50ms'"))
            conn.execute(text("SELECT id FROM accounts WHERE name = :name FOR UPDATE"), {"name": account}).all()
    except Exception as exc:  # noqa: BLE001 - any failure to lock is the finding
        raise AssertionError(f"after a fault {where}, the failed transaction still holds the lock: {exc}") from exc


# -- the test --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[scenario.name for scenario in SCENARIOS])
def test_fault_inside_a_write_transaction_leaves_no_trace(
    scenario: Scenario, db_url: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    brokers = {
        tag: PaperBroker(db_url=db_url, account=tag, initial_cash=100_000, slippage_bps=5, fee_bps=1, clock=clock)
        for tag in ("scout", "main")
    }
    for broker in brokers.values():
        scenario.setup(broker)

    # Scout run: which store writes and which tables does this use case touch?
    before, counts_before = keyed_rows(db_url), row_counts(db_url)
    with python_writes(monkeypatch) as write_calls:
        opened = scenario.action(brokers["scout"], "scout")
    scout_delta = {table: count - counts_before[table] for table, count in row_counts(db_url).items()}
    tables = touched_tables(before, keyed_rows(db_url))
    assert tables, f"{scenario.name} wrote nothing?"

    main = brokers["main"]
    injections: list[tuple[str, Callable[[], Any]]] = [
        *((f"after store write #{n} ({write_calls[n - 1]})", functools.partial(python_writes, monkeypatch, n))
          for n in range(1, len(write_calls) + 1)),
        *((f"trigger after {op} on {table}", functools.partial(trigger_fault, db_url, table, op))
          for table, op in tables),
        ("at commit", functools.partial(fault_at_commit, db_url, InjectedFault("injected fault at commit"))),
        ("Ctrl-C at commit", functools.partial(fault_at_commit, db_url, KeyboardInterrupt("injected fault"))),
    ]
    untouched = table_snapshot(db_url)
    for where, injection in injections:
        with injection(), pytest.raises((Exception, KeyboardInterrupt)) as raised:
            scenario.action(main, "main")
        assert "injected fault" in causes(raised.value), f"{where}: failed for another reason: {raised.value!r}"
        assert table_snapshot(db_url) == untouched, f"{scenario.name}: a fault {where} left rows behind"
        assert_account_not_locked(db_url, "main", where)
        assert main.verify() == [], where

    counts = row_counts(db_url)
    result = scenario.action(main, "main")
    assert {table: count - counts[table] for table, count in row_counts(db_url).items()} == scout_delta, (
        "the real run wrote different rows than the scout's: an earlier failed attempt was committed after all"
    )
    assert ledger_problems(db_url) == []
    print(f"\n[fault injection] {scenario.name}: {len(injections)} faults injected; triggers on {tables}")
    for broker in [*brokers.values(), opened, result]:
        if isinstance(broker, PaperBroker):
            broker.close()
