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
from tests.conftest import FakeClock, ledger_problems, table_snapshot
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


# -- the order model: a replace, and a quote that triggers stops and partially fills, killed at every write --------
def _prepared_account(db_url: str, account: str, action: str) -> None:
    """Displayed-size fills. ``replace``: a limit buy of 20 at 150.20 that took the 5 shown and rests for 15 under
    an ask of 150.25 (the replace to 150.30 takes its 5). ``quote``:
    40 AAPL held, and resting a stop sell, a trailing stop sell, a limit buy and a stop_limit buy."""
    clock = FakeClock()
    with PaperBroker(db_url=db_url, account=account, initial_cash=100_000, clock=clock) as broker:
        broker.configure(fill_model="displayed_size")
        if action == "replace":
            broker.set_quote("AAPL", bid=150.0, ask=150.10, bid_size=5, ask_size=5)
            broker.submit_order("AAPL", "BUY", 20, "limit", 150.2)
            broker.set_quote("AAPL", bid=150.1, ask=150.25, bid_size=5, ask_size=5)  # above the limit: rests
            return
        broker.set_quote("AAPL", bid=150.0, ask=150.10, bid_size=100, ask_size=100)
        broker.submit_order("AAPL", "BUY", 40)
        broker.submit_order("AAPL", "SELL", 15, "stop", stop_price=149.0)
        broker.submit_order("AAPL", "SELL", 10, "trailing_stop", trail_price=0.5)
        broker.submit_order("AAPL", "BUY", 10, "limit", 148.5)
        broker.submit_order("AAPL", "BUY", 5, "stop_limit", stop_price=152.0, limit_price=153.0)


def _account_book(db_url: str, account: str) -> tuple[object, ...]:
    """An account's orders (type, status, quantities, links), fills, cash and positions, without ids or runs."""
    with PaperBroker(db_url=db_url, account=account, clock=lambda: ACTION_TIME) as broker:
        orders = broker.get_orders()
        index = {order["order_id"]: n for n, order in enumerate(orders)}
        return (
            [(o["side"], o["order_type"], o["status"], o["qty"], o["filled_qty"], o["filled_avg_price"], o["stop_price"],
              o["hwm"], o["triggered_at"], index.get(o["replaces"]), index.get(o["replaced_by"])) for o in orders],
            [(f["order_id"] in index, f["side"], f["qty"], f["fill_price"], f["fee"]) for f in broker.get_fills()],
            broker.get_account()["cash"], broker.get_account()["reserved_cash"], broker.get_positions(),
        )


ACTION_TIME = FakeClock().advance(minutes=1)


@pytest.mark.parametrize("action", ["replace", "quote"])
def test_a_replace_or_a_stop_triggering_quote_killed_at_every_write_is_all_or_nothing(
    db_url: str, action: str
) -> None:
    from tests.workers.order_model_trader import run_action

    _prepared_account(db_url, "scout", action)
    with PaperBroker(db_url=db_url, account="scout", clock=lambda: ACTION_TIME) as scout:
        run_action(scout, action)
    expected = _account_book(db_url, "scout")
    outcomes = {(order_type, status) for _, order_type, status, *_ in expected[0]}  # type: ignore[index]
    assert outcomes >= ({("limit", "replaced"), ("limit", "partially_filled")} if action == "replace" else
                        {("stop", "partially_filled"), ("trailing_stop", "new"), ("limit", "partially_filled")}), outcomes

    _prepared_account(db_url, "victim", action)
    untouched = table_snapshot(db_url)
    kills = 0
    while True:
        child = Child("order_model_trader", db_url, "victim", action, str(kills + 1), ACTION_TIME.isoformat())
        try:
            child.expect("ready")
            message = child.read()
            if message["event"] == "done":
                break  # no write left to stop after: the action committed whole
            assert message["event"] == "stalled", message
            child.kill()
            assert child.proc.returncode == -signal.SIGKILL
        finally:
            child.close()
        kills += 1
        assert table_snapshot(db_url) == untouched, f"{action} killed after write #{kills} left a trace"
        assert ledger_problems(db_url) == [], f"{action} killed after write #{kills}"
    assert kills >= 3, f"{action} should take several row writes, took {kills}"
    assert _account_book(db_url, "victim") == expected, "the action, once it ran whole, did what it does on the scout"
    assert ledger_problems(db_url) == []
    print(f"\n[crash/order model] {action}: killed after each of its {kills} row writes, then run whole")
