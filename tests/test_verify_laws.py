"""Each law verify() checks, seen to catch damage to exactly the rows it guards (SQL written straight into a
real ledger), and named in verify()'s answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from ledger.book.store import accounts, cash_movements, daily_totals, fills, order_events, orders, positions, runs
from ledger.book.verify import _LAWS
from ledger.db.engine import get_engine

pytestmark = pytest.mark.corrupts_ledger


@pytest.fixture
def ledger(make_broker, clock):
    """A ledger with a filled buy, a filled sell, a resting buy, a resting sell and a canceled order."""
    broker = make_broker()
    broker.set_quote("AAPL", bid=150.0, ask=150.1)
    broker.submit_order("AAPL", "BUY", 10)
    broker.submit_order("AAPL", "SELL", 2)
    broker.submit_order("AAPL", "BUY", 1, "limit", 100.0)
    broker.submit_order("AAPL", "SELL", 3, "limit", 500.0)
    canceled = broker.submit_order("AAPL", "BUY", 1, "limit", 90.0)
    broker.cancel_order(canceled["order_id"])
    clock.advance(minutes=1)
    broker.close()
    assert broker_problems(broker) == []
    return broker


def broker_problems(broker) -> list[str]:
    from tests.conftest import ledger_problems

    return ledger_problems(broker.db_url)


def law(description_start: str) -> str:
    [description] = [text for text, _ in _LAWS if text.startswith(description_start)]
    return description


def damage(db_url: str, *statements) -> None:
    with get_engine(db_url).begin() as conn:
        for statement in statements:
            assert conn.execute(statement).rowcount >= 1, "the damage must touch a row"


def first_fill_id(db_url: str, side: str) -> int:
    with get_engine(db_url).connect() as conn:
        return conn.execute(select(fills.c.id).where(fills.c.side == side).order_by(fills.c.id)).scalars().first()


def order_pk(db_url: str, status: str) -> int:
    with get_engine(db_url).connect() as conn:
        return conn.execute(select(orders.c.id).where(orders.c.status == status).order_by(orders.c.id)).scalars().first()


def assert_named(broker, description: str) -> None:
    problems = broker_problems(broker)
    assert any(problem.startswith(description) for problem in problems), problems


@pytest.mark.parametrize(
    ("law_start", "table", "column"),
    [
        ("cash differs", accounts, "cash_e6"),
        ("reserved cash", accounts, "reserved_cash_e6"),
        ("position differs", positions, "qty_e6"),
    ],
)
def test_balance_laws(ledger, law_start, table, column):
    damage(ledger.db_url, update(table).values({column: table.c[column] + 1}))
    assert_named(ledger, law(law_start))


def test_position_missing_for_fills_is_caught_by_the_position_quantity_law(ledger):
    damage(ledger.db_url, update(positions).values(symbol="GONE"))
    assert_named(ledger, law("position differs"))


@pytest.mark.parametrize(
    ("law_start", "column"), [("position's realized P&L", "realized_pnl_e6"), ("position's reserved shares", "reserved_qty_e6")]
)
def test_position_laws(ledger, law_start, column):
    damage(ledger.db_url, update(positions).values({column: positions.c[column] + 1}))
    assert_named(ledger, law(law_start))


@pytest.mark.parametrize(
    "column", ["fill_count", "bought_qty_e6", "sold_qty_e6", "bought_notional_e6", "sold_notional_e6", "fees_e6"]
)
def test_position_fill_totals_law(ledger, column):
    damage(ledger.db_url, update(positions).values({column: positions.c[column] + 1}))
    assert_named(ledger, law("position's fill totals"))


@pytest.mark.parametrize("column", ["fill_count", "sold_qty_e6", "fees_e6", "realized_pnl_e6"])
def test_daily_totals_law(ledger, column):
    damage(ledger.db_url, update(daily_totals).values({column: daily_totals.c[column] + 1}))
    assert_named(ledger, law("day's totals"))


def test_day_without_its_totals_row_is_caught_by_the_daily_totals_law(ledger):
    damage(ledger.db_url, daily_totals.delete())
    assert_named(ledger, law("day's totals"))


def test_position_cost_basis_sign_law(ledger):
    damage(ledger.db_url, update(positions).where(positions.c.qty_e6 > 0).values(cost_basis_e6=-positions.c.cost_basis_e6))
    assert_named(ledger, law("position's cost basis"))


def test_short_position_on_a_cash_account_law(ledger):
    with get_engine(ledger.db_url).begin() as conn:
        account_id, epoch = conn.execute(select(positions.c.account_id, positions.c.epoch)).first()
        conn.execute(positions.insert().values(
            account_id=account_id, epoch=epoch, symbol="SHORTED", qty_e6=-1, reserved_qty_e6=0, cost_basis_e6=-150,
            realized_pnl_e6=0, updated_at=datetime(2024, 1, 2, tzinfo=UTC)))
    assert_named(ledger, law("short position on a cash account"))


def test_fill_belongs_to_a_matching_order_law(ledger):
    filled = order_pk(ledger.db_url, "filled")
    damage(ledger.db_url, update(orders).where(orders.c.id == filled).values(symbol="MSFT"))
    assert_named(ledger, law("fill does not match its order"))


def test_filled_quantity_law(ledger):
    filled = order_pk(ledger.db_url, "filled")
    damage(ledger.db_url, update(fills).where(fills.c.order_id == filled).values(qty_e6=fills.c.qty_e6 + 1))
    assert_named(ledger, law("order's filled quantity"))


def test_status_agrees_with_fills_and_reservations_law(ledger):
    canceled = order_pk(ledger.db_url, "canceled")
    damage(ledger.db_url, update(orders).where(orders.c.id == canceled).values(reserved_cash_e6=1))
    assert_named(ledger, law("order's status disagrees"))


def test_fill_cash_movement_law(ledger):
    fill_id = first_fill_id(ledger.db_url, "BUY")
    damage(ledger.db_url, update(fills).where(fills.c.id == fill_id).values(fee_e6=fills.c.fee_e6 + 1))
    assert_named(ledger, law("fill's cash movement"))


def test_fill_cash_movement_law_sees_a_missing_movement(ledger):
    fill_id = first_fill_id(ledger.db_url, "SELL")
    damage(ledger.db_url, update(cash_movements).where(cash_movements.c.fill_id == fill_id).values(fill_id=None))
    assert_named(ledger, law("fill's cash movement"))


def test_event_history_law(ledger):
    filled = order_pk(ledger.db_url, "filled")
    with get_engine(ledger.db_url).connect() as conn:
        last_event = conn.execute(
            select(order_events.c.id).where(order_events.c.order_id == filled).order_by(order_events.c.id.desc())
        ).scalars().first()
    damage(ledger.db_url, update(order_events).where(order_events.c.id == last_event).values(to_status="canceled"))
    assert_named(ledger, law("order's event history"))


def test_quote_after_fill_law(ledger):
    fill_id = first_fill_id(ledger.db_url, "BUY")
    with get_engine(ledger.db_url).connect() as conn:
        filled_at = conn.execute(select(fills.c.filled_at).where(fills.c.id == fill_id)).scalar_one()
    damage(ledger.db_url, update(fills).where(fills.c.id == fill_id).values(quote_at=filled_at + timedelta(days=1)))
    assert_named(ledger, law("fill was priced from a quote stamped after"))


def test_run_ends_before_it_started_law(ledger):
    with get_engine(ledger.db_url).connect() as conn:
        started_at = conn.execute(select(runs.c.started_at)).scalar_one()
    damage(ledger.db_url, update(runs).values(ended_at=started_at - timedelta(seconds=1)))
    assert_named(ledger, law("run ends before it started"))


def test_status_time_law(ledger):
    filled = order_pk(ledger.db_url, "filled")
    damage(ledger.db_url, update(orders).where(orders.c.id == filled).values(filled_at=None))
    assert_named(ledger, law("order's status lacks its time"))


def test_fill_after_its_order_ended_law(ledger):
    filled = order_pk(ledger.db_url, "filled")
    with get_engine(ledger.db_url).connect() as conn:
        submitted = conn.execute(select(orders.c.submitted_at).where(orders.c.id == filled)).scalar_one()
    # The order says it filled at its submission; its fill says one second later.
    damage(
        ledger.db_url,
        update(orders).where(orders.c.id == filled).values(filled_at=submitted),
        update(fills).where(fills.c.order_id == filled).values(filled_at=submitted + timedelta(seconds=1)),
    )
    assert_named(ledger, law("fill is later than its order's end"))


def test_replaced_order_successor_law(ledger):
    canceled = order_pk(ledger.db_url, "canceled")
    filled = order_pk(ledger.db_url, "filled")
    damage(ledger.db_url, update(orders).where(orders.c.id == canceled).values(replaced_by_id=filled))
    assert_named(ledger, law("replaced order has no successor"))


def test_average_fill_price_law(ledger):
    filled = order_pk(ledger.db_url, "filled")
    damage(ledger.db_url, update(orders).where(orders.c.id == filled).values(filled_avg_price_e6=None))
    assert_named(ledger, law("order's average fill price"))


def test_every_law_has_a_test_here():
    tested = {
        "cash differs", "reserved cash", "position differs", "position's realized P&L", "position's reserved shares",
        "fill does not match its order", "order's filled quantity", "order's status disagrees",
        "fill's cash movement", "order's event history", "fill was priced from a quote stamped after",
        "run ends before it started", "order's status lacks its time", "fill is later than its order's end",
        "replaced order has no successor", "order's average fill price", "position's cost basis",
        "short position on a cash account", "position's fill totals", "day's totals",
    }
    assert {next(t for t in tested if text.startswith(t)) for text, _ in _LAWS} == tested
    assert len(_LAWS) == len(tested)
