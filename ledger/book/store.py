"""The SQL the use cases run, one small function per statement, all on the caller's connection.

Nothing here opens or commits a transaction: the use case that calls these owns it (see ledger.book).
Statements are SQLAlchemy Core (the ORM's unit of work adds nothing on these paths but cost), and the
same statements run on SQLite and PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Row, func, insert, select, update

from ledger.constants import STATUS_NEW, STATUS_REJECTED
from ledger.db.models import Account, CashMovement, Fill, Order, OrderEvent, Position, Quote, Run

accounts = Account.__table__
runs = Run.__table__
orders = Order.__table__
order_events = OrderEvent.__table__
fills = Fill.__table__
positions = Position.__table__
cash_movements = CashMovement.__table__
quotes = Quote.__table__

ZERO = Decimal(0)


@dataclass
class AccountState:
    """The account row as read under its lock; the use case edits it and saves it once."""

    id: int
    name: str
    epoch: int
    initial_cash: Decimal
    cash: Decimal
    reserved_cash: Decimal

    @property
    def available_cash(self) -> Decimal:
        return self.cash - self.reserved_cash


@dataclass
class PositionState:
    symbol: str
    qty: Decimal = ZERO
    reserved_qty: Decimal = ZERO
    cost_basis: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    exists: bool = False

    @property
    def available_qty(self) -> Decimal:
        return self.qty - self.reserved_qty


_ACCOUNT_COLUMNS = (
    accounts.c.id,
    accounts.c.name,
    accounts.c.epoch,
    accounts.c.initial_cash_e6,
    accounts.c.cash_e6,
    accounts.c.reserved_cash_e6,
)


def _account_state(row: Row[Any]) -> AccountState:
    return AccountState(*row)


def lock_account(conn: Connection, account_id: int) -> AccountState:
    """Read the account row and lock it (``FOR UPDATE`` on PostgreSQL; SQLite already holds the write lock)."""
    row = conn.execute(select(*_ACCOUNT_COLUMNS).where(accounts.c.id == account_id).with_for_update()).one()
    return _account_state(row)


def find_account(conn: Connection, name: str, *, lock: bool = False) -> AccountState | None:
    stmt = select(*_ACCOUNT_COLUMNS).where(accounts.c.name == name)
    row = conn.execute(stmt.with_for_update() if lock else stmt).one_or_none()
    return None if row is None else _account_state(row)


def insert_account(conn: Connection, name: str, initial_cash: Decimal, now: datetime) -> int:
    return conn.execute(
        insert(accounts).returning(accounts.c.id),
        {
            "name": name,
            "epoch": 1,
            "initial_cash_e6": initial_cash,
            "cash_e6": initial_cash,
            "reserved_cash_e6": ZERO,
            "created_at": now,
            "updated_at": now,
        },
    ).scalar_one()


def save_account(conn: Connection, state: AccountState, now: datetime) -> None:
    conn.execute(
        update(accounts).where(accounts.c.id == state.id),
        {
            "epoch": state.epoch,
            "initial_cash_e6": state.initial_cash,
            "cash_e6": state.cash,
            "reserved_cash_e6": state.reserved_cash,
            "updated_at": now,
        },
    )


def insert_cash_movement(
    conn: Connection,
    account: AccountState,
    run_id: str | None,
    kind: str,
    amount: Decimal,
    now: datetime,
    fill_id: int | None = None,
) -> None:
    conn.execute(
        insert(cash_movements),
        {
            "account_id": account.id,
            "epoch": account.epoch,
            "run_id": run_id,
            "kind": kind,
            "amount_e6": amount,
            "fill_id": fill_id,
            "at": now,
        },
    )


def insert_run(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(insert(runs), values)


def find_run(conn: Connection, run_id: str) -> Row[Any] | None:
    return conn.execute(select(runs).where(runs.c.id == run_id)).one_or_none()


def update_run(conn: Connection, run_id: str, values: dict[str, Any]) -> None:
    conn.execute(update(runs).where(runs.c.id == run_id), values)


def get_quote(conn: Connection, account_id: int, symbol: str) -> Row[Any] | None:
    return conn.execute(
        select(quotes.c.bid_e6, quotes.c.ask_e6, quotes.c.bid_size_e6, quotes.c.ask_size_e6, quotes.c.quoted_at).where(
            quotes.c.account_id == account_id, quotes.c.symbol == symbol
        )
    ).one_or_none()


def upsert_quote(conn: Connection, account_id: int, values: dict[str, Any]) -> None:
    """Replace the account's last quote for the symbol (safe as update-then-insert: the account is locked)."""
    updated = conn.execute(
        update(quotes).where(quotes.c.account_id == account_id, quotes.c.symbol == values["symbol"]),
        {key: value for key, value in values.items() if key != "symbol"},
    )
    if updated.rowcount == 0:
        conn.execute(insert(quotes), {"account_id": account_id, **values})


def get_position(conn: Connection, account: AccountState, symbol: str) -> PositionState:
    row = conn.execute(
        select(
            positions.c.qty_e6, positions.c.reserved_qty_e6, positions.c.cost_basis_e6, positions.c.realized_pnl_e6
        ).where(positions.c.account_id == account.id, positions.c.epoch == account.epoch, positions.c.symbol == symbol)
    ).one_or_none()
    if row is None:
        return PositionState(symbol)
    return PositionState(symbol, row[0], row[1], row[2], row[3], exists=True)


def save_position(conn: Connection, account: AccountState, position: PositionState, now: datetime) -> None:
    values = {
        "qty_e6": position.qty,
        "reserved_qty_e6": position.reserved_qty,
        "cost_basis_e6": position.cost_basis,
        "realized_pnl_e6": position.realized_pnl,
        "updated_at": now,
    }
    if position.exists:
        conn.execute(
            update(positions).where(
                positions.c.account_id == account.id,
                positions.c.epoch == account.epoch,
                positions.c.symbol == position.symbol,
            ),
            values,
        )
    else:
        conn.execute(
            insert(positions), {"account_id": account.id, "epoch": account.epoch, "symbol": position.symbol, **values}
        )
        position.exists = True


def find_live_order_by_client_id(conn: Connection, account_id: int, client_order_id: str) -> Row[Any] | None:
    return conn.execute(
        select(orders).where(
            orders.c.account_id == account_id,
            orders.c.client_order_id == client_order_id,
            orders.c.status != STATUS_REJECTED,
        )
    ).one_or_none()


def find_order(conn: Connection, account_id: int, order_id: str) -> Row[Any] | None:
    return conn.execute(
        select(orders).where(orders.c.account_id == account_id, orders.c.order_id == order_id)
    ).one_or_none()


def insert_order(conn: Connection, values: dict[str, Any]) -> int:
    return conn.execute(insert(orders).returning(orders.c.id), values).scalar_one()


def update_order(conn: Connection, order_pk: int, values: dict[str, Any]) -> None:
    conn.execute(update(orders).where(orders.c.id == order_pk), values)


def insert_order_event(
    conn: Connection, order_pk: int, now: datetime, from_status: str | None, to_status: str, reason: str | None
) -> None:
    conn.execute(
        insert(order_events),
        {"order_id": order_pk, "at": now, "from_status": from_status, "to_status": to_status, "reason": reason},
    )


def resting_orders(conn: Connection, account: AccountState, symbol: str | None = None) -> list[Row[Any]]:
    """Open (``new``) orders of the account's current epoch, oldest first; optionally for one symbol."""
    stmt = select(orders).where(
        orders.c.account_id == account.id, orders.c.epoch == account.epoch, orders.c.status == STATUS_NEW
    )
    if symbol is not None:
        stmt = stmt.where(orders.c.symbol == symbol)
    return list(conn.execute(stmt.order_by(orders.c.id)))


def insert_fill(conn: Connection, values: dict[str, Any]) -> int:
    return conn.execute(insert(fills).returning(fills.c.id), values).scalar_one()


def count_rows(conn: Connection, table: Any) -> int:
    return conn.execute(select(func.count()).select_from(table)).scalar_one()


def fill_for_order(conn: Connection, order_pk: int) -> Row[Any] | None:
    return conn.execute(select(fills).where(fills.c.order_id == order_pk).order_by(fills.c.id)).first()
