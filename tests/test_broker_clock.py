"""Broker time on an account never goes backwards: every write checks and advances ``accounts.clock_at``."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from ledger.book.store import accounts
from ledger.db.engine import get_engine
from ledger.exceptions import ClockWentBackwardsError


def _clock_at(db_url: str):
    with get_engine(db_url).connect() as conn:
        return conn.execute(select(accounts.c.clock_at)).scalar_one()


WRITES = {
    "submit": lambda b, ids: b.submit_order("AAPL", "BUY", 1),
    "submit a rejected order": lambda b, ids: b.submit_order("AAPL", "BUY", -1),
    "batch": lambda b, ids: b.submit_orders([{"symbol": "AAPL", "side": "BUY", "qty": 1}]),
    "quote": lambda b, ids: b.set_quote("AAPL", bid=150.0, ask=150.1),
    "cancel": lambda b, ids: b.cancel_order(ids["resting"]),
    "reset": lambda b, ids: b.reset(),
}


@pytest.mark.parametrize("write", sorted(WRITES))
def test_a_write_stamped_before_the_account_clock_is_refused_and_changes_nothing(broker, clock, db_url, write):
    resting = broker.submit_order("AAPL", "BUY", 1, "limit", 100.0)
    clock.advance(hours=1)
    broker.set_quote("AAPL", bid=150.0, ask=150.1)  # advances the account's clock
    assert _clock_at(db_url) == clock()
    before = (broker.get_cash(), broker.get_orders(), broker.get_account())
    clock.advance(days=-2)
    with pytest.raises(ClockWentBackwardsError, match=r"broker time 2023-12-31T15:30.* is before the clock of account 'default', 2024-01-02T15:30.*never goes backwards"):
        WRITES[write](broker, {"resting": resting["order_id"]})
    assert (broker.get_cash(), broker.get_orders(), broker.get_account()) == before
    clock.advance(days=2)


def test_each_write_advances_the_clock_and_equal_times_are_allowed(broker, clock, db_url):
    clock.advance(minutes=1)
    broker.set_quote("AAPL", bid=150.0, ask=150.1)
    broker.submit_order("AAPL", "BUY", 1)  # same broker time as the quote: allowed
    assert _clock_at(db_url) == clock()


def test_resuming_or_closing_a_run_before_the_account_clock_is_refused(make_broker, clock, db_url):
    first = make_broker()
    first.set_quote("AAPL", bid=150.0, ask=150.1)
    first.submit_order("AAPL", "BUY", 1)
    run_id = first.run_id
    clock.advance(hours=1)
    first.set_quote("AAPL", bid=150.0, ask=150.1)
    clock.advance(hours=-2)
    with pytest.raises(ClockWentBackwardsError):
        first.close()  # the run cannot end before the account's last write
    clock.advance(hours=2)
    first.close()
    clock.advance(hours=-2)
    with pytest.raises(ClockWentBackwardsError):
        make_broker(run_id=run_id)
    clock.advance(hours=2)


@pytest.mark.parametrize("write", ["deposit", "withdraw"])
def test_deposits_and_withdrawals_check_the_clock_too(broker, clock, write):
    clock.advance(hours=1)
    broker.set_quote("AAPL", bid=150.0, ask=150.1)
    clock.current -= timedelta(seconds=1)
    with pytest.raises(ClockWentBackwardsError):
        getattr(broker, write)(10)
    clock.current += timedelta(seconds=1)
