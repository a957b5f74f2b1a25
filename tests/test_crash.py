"""Crash safety: a trading process SIGKILLed at random moments never loses an acknowledged order or half-writes one.

A real ``python`` child (tests/workers/crash_trader.py) trades in a loop on one account and prints each result
the moment ``submit_order`` / ``set_quote`` / ``cancel_order`` has returned. The parent reads a random number of
those lines (seeded), SIGKILLs the child right there - synchronised on its output, no sleeps - and reopens the
ledger: it must open cleanly, ``verify()`` must be empty, every acknowledged order must be present with its fill,
and cash and positions must reconcile with the fills recomputed here. The next child continues on the same
database, so every round starts from the state the previous kill left behind.
"""

from __future__ import annotations

import random
import signal
from decimal import Decimal

import pytest
from ledger.brokers.paper import PaperBroker
from ledger.db.engine import get_engine
from tests.conftest import ledger_problems
from tests.workers.crash_trader import ACCOUNT, INITIAL_CASH
from tests.workers.harness import Child

KILLS_PER_ENGINE = 25
MAX_LINES_BEFORE_KILL = 80
KILL_WHILE_OPENING = 0.12  # share of kills aimed at the child opening the database (schema, account, run rows)
KILL_INSIDE_TRANSACTION = 0.3  # share stopped inside a write transaction first (the kill cannot miss it)


def dec(value: float) -> Decimal:
    """A float from the protocol back to the exact decimal it was printed from (six decimals at most)."""
    return Decimal(repr(value))


class AcknowledgedBook:
    """What the children acknowledged before they died: per order id, its status and (when filled) its fill."""

    def __init__(self) -> None:
        self.status: dict[str, str] = {}
        self.fills: dict[str, tuple[Decimal, Decimal, Decimal, Decimal]] = {}

    def record(self, messages: list[dict]) -> list[str]:
        """Take in one child's messages; returns the order ids they acknowledged."""
        seen: list[str] = []
        for message in messages:
            event = message["event"]
            if event == "order":
                self._order(message)
                seen.append(message["order_id"])
            elif event == "quote":
                for fill in message["fills"]:
                    self._order(fill)
                    seen.append(fill["order_id"])
            elif event == "cancel":
                # "filled" here means a quote filled it earlier (maybe acknowledged by a child that then died).
                self.status[message["order_id"]] = message["status"]
                seen.append(message["order_id"])
        return seen

    def _order(self, message: dict) -> None:
        self.status[message["order_id"]] = message["status"]
        if message["status"] == "filled":
            self.fills[message["order_id"]] = tuple(  # type: ignore[assignment]
                dec(message[key]) for key in ("qty", "fill_price", "notional", "fee")
            )


def run_child_until_killed(db_url: str, rng: random.Random) -> tuple[list[dict], str]:
    """Start a trader, SIGKILL it after a random number of its lines; return its lines and where it died."""
    draw = rng.random()
    stall_at = rng.randint(1, 60) if draw > 1 - KILL_INSIDE_TRANSACTION else 0
    child = Child("crash_trader", db_url, str(rng.randrange(2**32)), str(stall_at))
    try:
        messages = [child.expect("opening")]
        if draw < KILL_WHILE_OPENING:
            where = "opening"
        elif stall_at:
            messages.append(child.expect("ready"))
            while messages[-1]["event"] != "stalled":
                messages.append(child.read())
            where = "inside a write transaction"
        else:
            messages.append(child.expect("ready"))
            for _ in range(rng.randint(0, MAX_LINES_BEFORE_KILL)):
                messages.append(child.read())
            where = "trading"
        messages += child.kill()
        assert child.proc.returncode == -signal.SIGKILL, "the child must die by SIGKILL, not exit on its own"
        return messages, where
    finally:
        child.close()


def assert_ledger_intact(db_url: str, book: AcknowledgedBook, just_acknowledged: list[str]) -> int:
    """Reopen after a kill and check everything; returns how many committed orders were never acknowledged."""
    if db_url.startswith("sqlite"):
        with get_engine(db_url).connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
    # Opening runs the migrations when the kill came before the first child finished creating the schema.
    with PaperBroker(db_url=db_url, account=ACCOUNT, initial_cash=INITIAL_CASH) as broker:
        assert ledger_problems(db_url) == []
        assert broker.verify() == []
        orders = {order["order_id"]: order for order in broker.get_orders()}
        fills = {fill["order_id"]: fill for fill in broker.get_fills()}
        for order_id in just_acknowledged:
            assert broker.get_order(order_id)["order_id"] == order_id
        for order_id, acknowledged in book.status.items():
            assert order_id in orders, f"acknowledged order {order_id} ({acknowledged}) is missing after the kill"
            stored = orders[order_id]["status"]
            allowed = {"new": {"new", "filled", "canceled"}}.get(acknowledged, {acknowledged})
            assert stored in allowed, f"order {order_id} was acknowledged {acknowledged}, is {stored}"
        for order_id, (qty, price, notional, fee) in book.fills.items():
            fill = fills.get(order_id)
            assert fill is not None, f"acknowledged fill of order {order_id} is missing after the kill"
            assert (dec(fill["qty"]), dec(fill["fill_price"]), dec(fill["notional"]), dec(fill["fee"])) == (
                qty, price, notional, fee
            )
        # Cash and positions recomputed here from the fills, independently of the ledger's own SQL checks.
        expected_cash = Decimal(INITIAL_CASH)
        expected_positions: dict[str, Decimal] = {}
        for fill in fills.values():
            signed = dec(fill["qty"]) if fill["side"] == "BUY" else -dec(fill["qty"])
            expected_positions[fill["symbol"]] = expected_positions.get(fill["symbol"], Decimal(0)) + signed
            if fill["side"] == "BUY":
                expected_cash -= dec(fill["notional"]) + dec(fill["fee"])
            else:
                expected_cash += dec(fill["notional"]) - dec(fill["fee"])
        assert dec(broker.get_cash()) == expected_cash
        assert {symbol: dec(qty) for symbol, qty in broker.get_positions().items()} == {
            symbol: qty for symbol, qty in expected_positions.items() if qty != 0
        }
        return sum(
            1 for order_id, order in orders.items() if order["status"] != "rejected" and order_id not in book.status
        )


@pytest.mark.slow
def test_sigkilled_trader_loses_no_acknowledged_order_and_leaves_a_consistent_ledger(
    db_url: str, engine_name: str
) -> None:
    rng = random.Random(f"crash-test-{engine_name}")
    book = AcknowledgedBook()
    kills = {"opening": 0, "trading": 0, "inside a write transaction": 0}
    unacknowledged_commits = 0
    for _ in range(KILLS_PER_ENGINE):
        messages, where = run_child_until_killed(db_url, rng)
        kills[where] += 1
        just_acknowledged = book.record(messages)
        unacknowledged_commits = assert_ledger_intact(db_url, book, just_acknowledged)

    assert sum(kills.values()) == KILLS_PER_ENGINE
    assert kills["inside a write transaction"] > 0 and kills["trading"] > 0
    assert len(book.status) > KILLS_PER_ENGINE, "the children must actually have traded between kills"
    assert book.fills, "some acknowledged orders must have filled"
    print(
        f"\n[crash/{engine_name}] {sum(kills.values())} SIGKILLs survived ({kills['opening']} while opening, "
        f"{kills['trading']} at random while trading, {kills['inside a write transaction']} stopped inside a write "
        f"transaction); {len(book.status)} acknowledged orders, {len(book.fills)} "
        f"acknowledged fills, {unacknowledged_commits} orders committed but killed before acknowledging"
    )
