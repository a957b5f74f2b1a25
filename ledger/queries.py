"""The read-side select() statements, written once and shared by the broker, reports, export and the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Select, and_, select

from ledger.book.store import accounts, fills, orders, positions, quotes, runs

def account_row(conn: Connection, account_id: int) -> Any:
    return conn.execute(select(accounts).where(accounts.c.id == account_id)).one()


def positions_stmt(account_id: int, *, include_flat: bool = False) -> Select[Any]:
    """The current epoch's positions with their last quote (NULL bid/ask when none is stored)."""
    stmt = (
        select(
            positions.c.symbol,
            positions.c.qty_e6,
            positions.c.reserved_qty_e6,
            positions.c.cost_basis_e6,
            positions.c.realized_pnl_e6,
            quotes.c.bid_e6,
            quotes.c.ask_e6,
        )
        .select_from(
            positions.join(accounts, and_(accounts.c.id == positions.c.account_id, accounts.c.epoch == positions.c.epoch))
            .outerjoin(quotes, and_(quotes.c.account_id == positions.c.account_id, quotes.c.symbol == positions.c.symbol))
        )
        .where(positions.c.account_id == account_id)
        .order_by(positions.c.symbol)
    )
    return stmt if include_flat else stmt.where(positions.c.qty_e6 > 0)


def position_rows(conn: Connection, account_id: int, *, include_flat: bool = False) -> list[Any]:
    return list(conn.execute(positions_stmt(account_id, include_flat=include_flat)))


def mark_price(bid: Decimal | None, ask: Decimal | None) -> Decimal | None:
    """Mid of the last quote, used to value positions; None without a quote."""
    if bid is None or ask is None:
        return None
    return (bid + ask) / 2


def portfolio_value(conn: Connection, account_id: int) -> Decimal:
    """Cash plus positions at the mid of their last quote (at cost basis when no quote is stored)."""
    value = account_row(conn, account_id).cash_e6
    for row in position_rows(conn, account_id):
        mid = mark_price(row.bid_e6, row.ask_e6)
        value += row.cost_basis_e6 if mid is None else row.qty_e6 * mid
    return value


def fills_stmt(
    account_id: int,
    *,
    since: datetime | None = None,
    symbol: str | None = None,
    current_epoch_only: bool = True,
) -> Select[Any]:
    """Fills with their public order id, oldest first, filtered in SQL."""
    stmt = (
        select(
            *(column for column in fills.c if column.name != "order_id"),
            fills.c.order_id.label("order_pk"),
            orders.c.order_id.label("order_id"),
        )
        .select_from(fills.join(orders, orders.c.id == fills.c.order_id))
        .where(fills.c.account_id == account_id)
        .order_by(fills.c.filled_at, fills.c.id)
    )
    if current_epoch_only:
        stmt = stmt.where(
            fills.c.epoch == select(accounts.c.epoch).where(accounts.c.id == account_id).scalar_subquery()
        )
    if since is not None:
        stmt = stmt.where(fills.c.filled_at >= since)
    if symbol is not None:
        stmt = stmt.where(fills.c.symbol == symbol)
    return stmt


def orders_stmt(account_id: int, *, status: str | None = None, current_epoch_only: bool = True) -> Select[Any]:
    stmt = select(orders).where(orders.c.account_id == account_id).order_by(orders.c.id)
    if current_epoch_only:
        stmt = stmt.where(
            orders.c.epoch == select(accounts.c.epoch).where(accounts.c.id == account_id).scalar_subquery()
        )
    if status is not None:
        stmt = stmt.where(orders.c.status == status)
    return stmt


def quote_row(conn: Connection, account_id: int, symbol: str) -> Any:
    return conn.execute(
        select(quotes).where(quotes.c.account_id == account_id, quotes.c.symbol == symbol)
    ).one_or_none()


def runs_stmt(account_id: int) -> Select[Any]:
    return select(runs).where(runs.c.account_id == account_id).order_by(runs.c.started_at, runs.c.id)


def stream(conn: Connection, stmt: Select[Any], batch: int = 1000) -> Iterator[Any]:
    """Rows of a large query in batches, without loading them all (server-side cursor where supported)."""
    # Options on the statement, not the connection: Connection.execution_options() would change it for good.
    result = conn.execute(stmt.execution_options(yield_per=batch))
    for partition in result.partitions():
        yield from partition
