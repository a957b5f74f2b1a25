"""Hostile input through the library API: every bad value gets a clear error and changes no balance.

Each input below goes through the public ``PaperBroker`` API of a broker that already holds cash, a position,
a quote and a resting order. Every one must raise a ``LedgerError`` subclass or ``ValueError`` whose message is
one short line, and leave every table as it was - except that a refused order is recorded with status
``rejected`` (required for audit), so ``orders`` / ``order_events`` may gain rejected rows and nothing else.
Each test prints how many inputs it tried (``pytest -s``).

The CLI half of issue 4's item 5 (exit code, one-line message, no traceback) is not here: the CLI is written
elsewhere and gets its own tests.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData, text

from ledger.brokers.paper import PaperBroker
from ledger.db.engine import get_engine
from ledger.exceptions import (
    InvalidQuoteError,
    LedgerError,
    OrderNotFoundError,
    OrderRejectedError,
    QuoteNotFoundError,
)
from tests.conftest import ledger_problems, table_snapshot

NAN, INF = math.nan, math.inf
SQL = "'; DROP TABLE orders; --"

BAD_NUMBERS: list[Any] = [
    NAN, INF, -INF, 1e308, -1e308, -1, -0.0, 0, 0.0, 1e-7, 10**30,
    Decimal("NaN"), Decimal("sNaN"), Decimal("Infinity"), Decimal("-5"), Decimal("1E+400"),
    "10", "abc", "", None, True, b"1", [1], {"qty": 1}, complex(1, 0), object(),
]
BAD_SYMBOLS: list[Any] = [
    "", "   ", "\t\n", "A" * 10_000, "A" * 33, "AA\x00PL", "\x00", SQL, "AAPL'; DELETE FROM accounts; --",
    "AAPL OR 1=1", "Robert'); DROP TABLE fills;--", "ÄPFEL", "株式", "🚀", "A A", "$AAPL",
    None, 123, 1.5, b"AAPL", ["AAPL"],
]
BAD_SIDES: list[Any] = [
    "HOLD", "SHORT", "", " ", "B", "BUYY", "\x00BUY", "BUY\x00", "ｂｕｙ", SQL, None, 1, True, ["BUY"],
]
BAD_ORDER_TYPES: list[Any] = ["stop", "stop_limit", "", "MARKET\x00", "limit;", "ｍａｒｋｅｔ", SQL, None, 0]
BAD_CLIENT_ORDER_IDS: list[Any] = [
    "", " ", "a b", "x" * 129, "id\x00", "é", "株", "tab\there", SQL, 12, 1.5, b"id", ["id"],
]
BAD_QUOTES: list[tuple[Any, Any]] = [
    (NAN, 150.1), (150.0, NAN), (INF, INF), (-INF, 150.1), (0, 150.1), (-1, 150.1), (150.0, -150.1),
    (1e308, 1e308), (151.0, 150.0), ("150", "150.1"), (None, 150.1), (150.0, None), (Decimal("NaN"), 150.1),
]
BAD_QUOTE_SIZES: list[Any] = [-1, NAN, INF, "100", None, 1e308]
BAD_SINCE: list[Any] = [
    datetime(2024, 1, 2, 14, 30),  # naive
    "2024-01-02T14:30:00+00:00", 0, 1.7e9, date(2024, 1, 2), b"2024", [datetime(2024, 1, 2, tzinfo=UTC)],
]
BAD_ORDER_IDS: list[Any] = [None, 123, "", "x" * 64, SQL, "é", b"id", ["id"], "0" * 32]
# Ids that once broke get_order/cancel_order (unbounded message, NUL reaching PostgreSQL).
ORDER_IDS_MISHANDLED: list[Any] = ["x" * 10_000, "\x00", "id\x00"]
# Symbols that get_quote once echoed raw into its message (newline, NUL).
QUOTE_SYMBOLS_MISHANDLED: list[Any] = ["\t\n", "AA\x00PL", "\x00"]
BAD_STATUSES: list[Any] = ["bogus", "", "NEW", "new\x00", SQL, 1, ["new"]]
BAD_ACCOUNT_NAMES: list[Any] = ["", "   ", "\x00", "a\x00b", "a" * 65, "x" * 10_000, None, 5, b"acct"]
BAD_CASH: list[Any] = [NAN, INF, -INF, -1, -0.000001, 1e308, 1e-7, "1000", True, object(), [1000]]
BAD_BPS: list[Any] = [-1, NAN, INF, 10_000, 1e308, 1e-7, "5", True, [5]]
BAD_RUN_IDS: list[Any] = ["nope", "", SQL, 5, b"run"]

@pytest.fixture
def trading(make_broker: Callable[..., Any]) -> PaperBroker:
    """A broker with cash, a quote, a 50-share position and a resting sell: every kind of balance is non-trivial."""
    broker = make_broker()
    broker.set_quote("AAPL", bid=150.0, ask=150.10)
    broker.submit_order("AAPL", "BUY", 50)
    broker.submit_order("AAPL", "SELL", 10, "limit", 160.0)
    broker.submit_order("AAPL", "BUY", 5, "limit", 140.0)
    return broker


def _count(db_url: str, sql: str) -> int:
    with get_engine(db_url).connect() as conn:
        return conn.execute(text(sql)).scalar_one()


ExpectedErrors = type[BaseException] | tuple[type[BaseException], ...]


class Audit:
    """Runs hostile calls and collects, instead of stopping at, every way they misbehave."""

    def __init__(self, db_url: str):
        self.db_url = db_url
        self.problems: list[str] = []
        self.tried = 0
        self.metadata = MetaData()
        with get_engine(db_url).connect() as conn:
            self.metadata.reflect(conn)

    def refused(self, label: str, call: Callable[[], object], *, may_record_rejection: bool = False,
                expected: ExpectedErrors = (LedgerError, ValueError)) -> None:
        """``call`` must raise ``expected`` with a short one-line message and change nothing.

        With ``may_record_rejection``, refused orders may add ``rejected`` rows to orders/order_events.
        """
        self.tried += 1
        before = table_snapshot(self.db_url, self.metadata)
        live_before = self._live_order_rows()
        try:
            call()
        except expected as exc:
            message = str(exc)
            if "\n" in message or "\x00" in message or len(message) > 400 or not message.strip():
                self.problems.append(f"{label}: unclear message {message[:120]!r}... ({len(message)} chars)")
        except Exception as exc:  # noqa: BLE001 - anything else is what this test hunts for
            self.problems.append(f"{label}: raised {type(exc).__name__}: {str(exc)[:200]}")
        else:
            self.problems.append(f"{label}: was accepted")
        after = table_snapshot(self.db_url, self.metadata)
        ignored = ("orders", "order_events") if may_record_rejection else ()
        changed = [table for table in after if table not in ignored and after[table] != before.get(table)]
        if changed:
            self.problems.append(f"{label}: changed {changed}")
        if may_record_rejection:
            if not set(before["orders"]) <= set(after["orders"]):
                self.problems.append(f"{label}: changed an existing order")
            if self._live_order_rows() != live_before:
                self.problems.append(f"{label}: recorded something other than a rejection")

    def _live_order_rows(self) -> tuple[int, int]:
        return (
            _count(self.db_url, "SELECT COUNT(*) FROM orders WHERE status <> 'rejected'"),
            _count(self.db_url, "SELECT COUNT(*) FROM order_events WHERE to_status <> 'rejected'"),
        )

    def finish(self, broker: PaperBroker) -> None:
        print(f"\n[hostile input] {self.tried} inputs tried")
        assert not self.problems, "\n".join(self.problems)
        assert broker.verify() == []
        assert ledger_problems(self.db_url) == []
        with get_engine(self.db_url).connect() as conn:
            stored = conn.execute(text(
                "SELECT symbol, side, order_type, reject_reason FROM orders WHERE status = 'rejected'"
            )).all()
        assert all("\x00" not in (value or "") for row in stored for value in row), "a NUL reached the database"
        # The broker still trades normally afterwards.
        assert broker.submit_order("AAPL", "BUY", 1)["status"] == "filled"


def test_hostile_order_arguments_are_rejected_and_recorded_without_touching_balances(trading: PaperBroker) -> None:
    audit = Audit(trading.db_url)
    rejected = OrderRejectedError
    for qty in BAD_NUMBERS:
        audit.refused(f"qty={qty!r:.40}", lambda: trading.submit_order("AAPL", "BUY", qty),
                      may_record_rejection=True, expected=rejected)
    for limit in BAD_NUMBERS:
        audit.refused(f"limit_price={limit!r:.40}", lambda: trading.submit_order("AAPL", "BUY", 1, "limit", limit),
                      may_record_rejection=True, expected=rejected)
    for symbol in BAD_SYMBOLS:
        audit.refused(f"symbol={symbol!r:.40}", lambda: trading.submit_order(symbol, "BUY", 1),
                      may_record_rejection=True, expected=rejected)
    for side in BAD_SIDES:
        audit.refused(f"side={side!r:.40}", lambda: trading.submit_order("AAPL", side, 1),
                      may_record_rejection=True, expected=rejected)
    for order_type in BAD_ORDER_TYPES:
        audit.refused(f"order_type={order_type!r:.40}", lambda: trading.submit_order("AAPL", "BUY", 1, order_type),
                      may_record_rejection=True, expected=rejected)
    for client_order_id in BAD_CLIENT_ORDER_IDS:
        audit.refused(f"client_order_id={client_order_id!r:.40}",
                      lambda: trading.submit_order("AAPL", "BUY", 1, client_order_id=client_order_id),
                      may_record_rejection=True, expected=rejected)
    audit.refused("limit_price on a market order", lambda: trading.submit_order("AAPL", "BUY", 1, "market", 150.0),
                  may_record_rejection=True, expected=rejected)
    audit.finish(trading)


def test_hostile_quotes_are_refused_and_store_nothing(trading: PaperBroker) -> None:
    audit = Audit(trading.db_url)
    for bid, ask in BAD_QUOTES:
        audit.refused(f"quote {bid!r}/{ask!r}", lambda: trading.set_quote("AAPL", bid=bid, ask=ask),
                      expected=InvalidQuoteError)
    for size in BAD_QUOTE_SIZES:
        audit.refused(f"bid_size={size!r}", lambda: trading.set_quote("AAPL", 150.0, 150.1, bid_size=size),
                      expected=InvalidQuoteError)
        audit.refused(f"ask_size={size!r}", lambda: trading.set_quote("AAPL", 150.0, 150.1, ask_size=size),
                      expected=InvalidQuoteError)
    for symbol in BAD_SYMBOLS:
        audit.refused(f"quote symbol={symbol!r:.40}", lambda: trading.set_quote(symbol, bid=150.0, ask=150.1),
                      expected=InvalidQuoteError)
    audit.finish(trading)


def test_hostile_lookups_raise_clear_errors_and_change_nothing(trading: PaperBroker, tmp_path: Path) -> None:
    audit = Audit(trading.db_url)
    out_dir = tmp_path / "export"
    for since in BAD_SINCE:
        audit.refused(f"get_fills(since={since!r:.40})", lambda: trading.get_fills(since=since))
        audit.refused(f"export_jsonl(since={since!r:.40})", lambda: trading.export_jsonl(out_dir, since=since))
    for order_id in BAD_ORDER_IDS:
        audit.refused(f"get_order({order_id!r:.40})", lambda: trading.get_order(order_id),
                      expected=OrderNotFoundError)
        audit.refused(f"cancel_order({order_id!r:.40})", lambda: trading.cancel_order(order_id),
                      expected=OrderNotFoundError)
    for status in BAD_STATUSES:
        audit.refused(f"get_orders(status={status!r:.40})", lambda: trading.get_orders(status=status),
                      expected=ValueError)
    for symbol in BAD_SYMBOLS:
        if symbol in QUOTE_SYMBOLS_MISHANDLED:
            continue
        audit.refused(f"get_quote({symbol!r:.40})", lambda: trading.get_quote(symbol), expected=QuoteNotFoundError)
    audit.finish(trading)
    assert not out_dir.exists() or not any(out_dir.iterdir()), "a refused export wrote files"


def test_hostile_account_settings_create_nothing(trading: PaperBroker, clock: Any) -> None:
    audit = Audit(trading.db_url)
    url = trading.db_url

    def open_broker(**settings: Any) -> None:
        PaperBroker(db_url=url, clock=clock, **settings).close()

    for name in BAD_ACCOUNT_NAMES:
        audit.refused(f"account={name!r:.40}", lambda: open_broker(account=name, initial_cash=1000))
    for cash in BAD_CASH:
        audit.refused(f"initial_cash={cash!r:.40}", lambda: open_broker(account="fresh", initial_cash=cash))
        audit.refused(f"reset(initial_cash={cash!r:.40})", lambda: trading.reset(initial_cash=cash))
    for bps in BAD_BPS:
        audit.refused(f"slippage_bps={bps!r:.40}", lambda: open_broker(account="fresh", slippage_bps=bps))
        audit.refused(f"fee_bps={bps!r:.40}", lambda: open_broker(account="fresh", fee_bps=bps))
    for run_id in BAD_RUN_IDS:
        audit.refused(f"run_id={run_id!r:.40}", lambda: open_broker(run_id=run_id))
    audit.finish(trading)


def test_sql_looking_names_are_plain_data(make_broker: Callable[..., Any]) -> None:
    """Text that looks like SQL is stored verbatim and runs nothing (every statement is parameterised)."""
    with pytest.raises(ValueError, match="account name must be"):  # new account names have a strict charset
        make_broker(account="Robert'); DROP TABLE accounts;--")
    account = "Robert DROP TABLE accounts --"
    broker = make_broker(account=account)
    broker.set_quote("AAPL", bid=150.0, ask=150.1)
    first = broker.submit_order("AAPL", "BUY", 3, client_order_id="';DROP_TABLE_orders;--")
    again = broker.submit_order("AAPL", "BUY", 3, client_order_id="';DROP_TABLE_orders;--")
    assert again["order_id"] == first["order_id"] and again["replayed"]
    assert broker.get_order(first["order_id"])["client_order_id"] == "';DROP_TABLE_orders;--"
    with get_engine(broker.db_url).connect() as conn:
        stored = conn.execute(text("SELECT name FROM accounts WHERE name = :name"), {"name": account}).scalar_one()
    assert stored == account
    assert broker.get_positions() == {"AAPL": 3.0}
    assert broker.verify() == []


def test_order_lookups_with_huge_or_nul_ids_raise_order_not_found_with_a_short_message(trading: PaperBroker) -> None:
    audit = Audit(trading.db_url)
    for order_id in ORDER_IDS_MISHANDLED:
        audit.refused(f"get_order({order_id!r:.40})", lambda: trading.get_order(order_id),
                      expected=OrderNotFoundError)
        audit.refused(f"cancel_order({order_id!r:.40})", lambda: trading.cancel_order(order_id),
                      expected=OrderNotFoundError)
    audit.finish(trading)


def test_get_quote_with_control_characters_gives_a_one_line_message(trading: PaperBroker) -> None:
    audit = Audit(trading.db_url)
    for symbol in QUOTE_SYMBOLS_MISHANDLED:
        audit.refused(f"get_quote({symbol!r:.40})", lambda: trading.get_quote(symbol), expected=QuoteNotFoundError)
    audit.finish(trading)


def test_run_id_with_nul_is_a_ledger_error(trading: PaperBroker, clock: Any) -> None:
    audit = Audit(trading.db_url)
    audit.refused("run_id='\\x00'", lambda: PaperBroker(db_url=trading.db_url, clock=clock, run_id="\x00"))
    audit.finish(trading)


def test_non_utc_since_is_refused_as_issue_4_requires(trading: PaperBroker, tmp_path: Path) -> None:
    new_york = timezone(timedelta(hours=-5))
    since = datetime(2024, 1, 2, 9, 30, tzinfo=new_york)
    with pytest.raises(ValueError, match=r"must be in UTC \(offset \+00:00\)"):
        trading.get_fills(since=since)
    with pytest.raises(ValueError, match="must be in UTC"):
        trading.export_jsonl(tmp_path / "out", since=since)
    assert not (tmp_path / "out").exists()
