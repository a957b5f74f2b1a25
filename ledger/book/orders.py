"""Use cases on orders: submit one or a batch (fill now, rest, or reject) and cancel. Each is one transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from ledger.book.fills import FillableOrder, apply_fill, fill_effect, price_order
from ledger.book.pricing import buy_reservation, is_marketable
from ledger.book.store import AccountState, PositionState, QuoteSnapshot, Store
from ledger.book.validation import InvalidOrder, OrderRequest, ledger_id, printable
from ledger.constants import (
    ORDER_LIMIT,
    SIDE_BUY,
    STATUS_CANCELED,
    STATUS_FILLED,
    STATUS_NEW,
    STATUS_REJECTED,
)
from ledger.exceptions import (
    ClientOrderIdConflictError,
    InsufficientFundsError,
    OrderNotFoundError,
    OrderRejectedError,
)
from ledger.money import AmountLimitError, plain

ZERO = Decimal(0)


@dataclass(frozen=True)
class TradingContext:
    """Who is trading: the account, the run, and the run's slippage and fee settings."""

    account_id: int
    run_id: str
    slippage_bps: Decimal
    fee_bps: Decimal


@dataclass
class SubmitOutcome:
    """The order as stored; ``error`` is set when it was rejected (raised after the rejection commits)."""

    order: dict[str, Any]
    fill: dict[str, Any] | None = None
    error: OrderRejectedError | None = None
    replayed: bool = False


def new_order_id() -> str:
    """A random 128-bit id (uuid4 hex): unique forever, unlike the seed's 8 hex characters."""
    return uuid.uuid4().hex


def _base_values(ctx: TradingContext, account: AccountState, now: datetime) -> dict[str, Any]:
    return {
        "order_id": new_order_id(),
        "account_id": account.id,
        "epoch": account.epoch,
        "run_id": ctx.run_id,
        "slippage_bps_e6": ctx.slippage_bps,
        "fee_bps_e6": ctx.fee_bps,
        "filled_qty_e6": ZERO,
        "reserved_cash_e6": ZERO,
        "reserved_qty_e6": ZERO,
        "reject_reason": None,
        "submitted_at": now,
        "updated_at": now,
    }


def record_invalid_order(store: Store, ctx: TradingContext, invalid: InvalidOrder, now: datetime) -> SubmitOutcome:
    """Keep an order that failed validation for audit, as submitted (it never holds a client_order_id)."""
    account = store.lock_account(ctx.account_id, now)
    values = {
        **_base_values(ctx, account, now),
        "client_order_id": None,
        "symbol": invalid.symbol,
        "side": invalid.side,
        "order_type": invalid.order_type,
        "qty_e6": invalid.qty,
        "limit_price_e6": invalid.limit_price,
    }
    outcome = _reject(store, values, OrderRejectedError(invalid.symbol, invalid.reason))
    store.flush(now)
    return outcome


def submit_order(store: Store, ctx: TradingContext, request: OrderRequest, now: datetime) -> SubmitOutcome:
    """Fill a market or marketable limit order now, rest a non-marketable limit, or reject; never half of one.

    A rejection is recorded (the caller commits it, then raises ``outcome.error``).
    """
    account = store.lock_account(ctx.account_id, now)
    outcome = place_order(store, ctx, account, request, now)
    store.flush(now)
    return outcome


def submit_orders(store: Store, ctx: TradingContext, requests: list[OrderRequest], now: datetime) -> list[SubmitOutcome]:
    """Place a batch in one transaction, all or nothing: each order sees the cash and shares the earlier ones left.

    On the first order that would be rejected, raises its error (the same type, the message naming the order's
    index) before anything is written; the caller's transaction then rolls back.
    """
    account = store.lock_account(ctx.account_id, now)
    store.reserve_keys(len(requests))
    outcomes = []
    for index, request in enumerate(requests):
        try:
            outcome = place_order(store, ctx, account, request, now)
        except ClientOrderIdConflictError as exc:
            raise ClientOrderIdConflictError(f"batch order #{index}: {exc}; nothing was submitted") from exc
        if outcome.error is not None:
            raise batch_rejection(index, outcome.error)
        outcomes.append(outcome)
    store.flush(now)
    return outcomes


def batch_rejection(index: int, error: OrderRejectedError) -> OrderRejectedError:
    """``error`` (same type) with a message naming the batch index and saying nothing was written."""
    rejection = type(error)(error.symbol, f"batch order #{index}: {error.reason}; nothing was submitted")
    rejection.index = index  # type: ignore[attr-defined]
    return rejection


def _same_parameters(order: dict[str, Any], request: OrderRequest) -> bool:
    return (
        order["symbol"] == request.symbol
        and order["side"] == request.side
        and order["order_type"] == request.order_type
        and order["qty_e6"] == request.qty
        and order["limit_price_e6"] == request.limit_price
    )


def place_order(
    store: Store, ctx: TradingContext, account: AccountState, request: OrderRequest, now: datetime
) -> SubmitOutcome:
    """Decide and queue one order against the locked ``account`` (edited in place; the store saves it).

    A repeated client_order_id with the same parameters replays the original order (stored, or queued earlier
    in this transaction); with different parameters it raises ClientOrderIdConflictError.
    """
    if request.client_order_id is not None:
        existing = store.live_order_by_client_id(account.id, request.client_order_id)
        if existing is not None:
            order, fill = existing
            if not _same_parameters(order, request):
                raise ClientOrderIdConflictError(
                    f"client_order_id {request.client_order_id!r} already names order {order['order_id']} "
                    f"({order['side']} {plain(order['qty_e6'])} {order['symbol']} {order['order_type']}"
                    + ("" if order["limit_price_e6"] is None else f" {plain(order['limit_price_e6'])}")
                    + "); "
                    "a different order needs a different id"
                )
            return SubmitOutcome(order, fill=fill, replayed=True)
    outcome = _place_new(store, ctx, account, request, now)
    if request.client_order_id is not None and outcome.error is None:
        store.hold_client_order_id(request.client_order_id, outcome.order, outcome.fill)
    return outcome


def _place_new(
    store: Store, ctx: TradingContext, account: AccountState, request: OrderRequest, now: datetime
) -> SubmitOutcome:
    quote = store.quote(account, request.symbol)
    position = store.position(account, request.symbol)
    values = {
        **_base_values(ctx, account, now),
        "client_order_id": request.client_order_id,
        "symbol": request.symbol,
        "side": request.side,
        "order_type": request.order_type,
        "qty_e6": request.qty,
        "limit_price_e6": request.limit_price,
    }
    if request.order_type != ORDER_LIMIT and quote is None:
        return _reject(store, values, OrderRejectedError(request.symbol, f"No quote available for {request.symbol}"))
    if quote is not None and (
        request.order_type != ORDER_LIMIT or is_marketable(request.side, request.limit_price, quote.bid, quote.ask)
    ):
        return _fill_now(store, ctx, account, position, quote, request, values, now)

    assert request.limit_price is not None
    if request.side == SIDE_BUY:
        try:
            reserve = buy_reservation(request.qty, request.limit_price, ctx.fee_bps)
        except AmountLimitError as exc:
            return _reject(store, values, OrderRejectedError(request.symbol, str(exc)))
        error = _affordability_error(request, account, position, reserve)
        if error is not None:
            return _reject(store, values, error)
        values["reserved_cash_e6"] = reserve
        account.reserved_cash += reserve
    else:
        error = _affordability_error(request, account, position, ZERO)
        if error is not None:
            return _reject(store, values, error)
        values["reserved_qty_e6"] = request.qty
        position.reserved_qty += request.qty
        store.touch_position(position)
    values["status"] = STATUS_NEW
    pk = store.add_order(values)
    store.add_event(pk, now, None, STATUS_NEW, "resting: no quote yet" if quote is None else "resting: limit not marketable")
    return SubmitOutcome(values)


def _fill_now(
    store: Store,
    ctx: TradingContext,
    account: AccountState,
    position: PositionState,
    quote: QuoteSnapshot,
    request: OrderRequest,
    values: dict[str, Any],
    now: datetime,
) -> SubmitOutcome:
    order = FillableOrder(
        0, values["order_id"], request.symbol, request.side, request.qty, request.limit_price,
        ctx.slippage_bps, ctx.fee_bps, ZERO, ZERO,
    )
    try:
        priced = price_order(order, quote)
        error = _affordability_error(request, account, position, priced.buy_cost)
        effect = fill_effect(account, position, order, priced) if error is None else None
    except AmountLimitError as exc:
        error = OrderRejectedError(request.symbol, str(exc))
    if error is not None:
        return _reject(store, values, error)
    assert effect is not None
    values.update(status=STATUS_FILLED, filled_qty_e6=request.qty)
    pk = store.add_order(values)
    store.add_event(pk, now, None, STATUS_NEW, None)
    store.add_event(pk, now, STATUS_NEW, STATUS_FILLED, None)
    fill = apply_fill(store, account, position, order._replace(pk=pk), priced, effect, quote, ctx.run_id, now)
    return SubmitOutcome(values, fill=fill)


def _affordability_error(
    request: OrderRequest, account: AccountState, position: PositionState, cash_needed: Decimal
) -> OrderRejectedError | None:
    if request.side == SIDE_BUY:
        if cash_needed > account.available_cash:
            return InsufficientFundsError(
                request.symbol,
                f"Insufficient cash: need ${cash_needed:,.2f}, have ${account.available_cash:,.2f} available",
            )
        return None
    if request.qty > position.available_qty:
        return OrderRejectedError(
            request.symbol,
            f"Insufficient shares: need {request.qty.normalize():f}, have {position.available_qty.normalize():f}"
            + (f" ({position.reserved_qty.normalize():f} reserved by resting sells)" if position.reserved_qty else ""),
        )
    return None


def _reject(store: Store, values: dict[str, Any], error: OrderRejectedError) -> SubmitOutcome:
    values.update(status=STATUS_REJECTED, reject_reason=error.reason, reserved_cash_e6=ZERO, reserved_qty_e6=ZERO)
    pk = store.add_order(values)
    store.add_event(pk, values["submitted_at"], None, STATUS_REJECTED, error.reason)
    return SubmitOutcome(values, error=error)


def cancel_order(store: Store, ctx: TradingContext, order_id: str, now: datetime) -> dict[str, Any]:
    """Cancel a resting order and release its reservation; a finished order just reports its status."""
    if ledger_id(order_id) is None:
        raise OrderNotFoundError(printable(order_id, 40))
    account = store.lock_account(ctx.account_id, now)
    order = store.order(account.id, order_id)
    if order is None:
        raise OrderNotFoundError(order_id)
    if order["status"] == STATUS_NEW:
        release_resting(store, account, order, now, "canceled by request")
        store.flush(now)
        status = STATUS_CANCELED
    else:
        status = order["status"]
    return {"order_id": order_id, "status": status, "timestamp": now}


def release_resting(store: Store, account: AccountState, order: dict[str, Any], now: datetime, reason: str) -> None:
    """Mark a resting order canceled and give back the cash or shares it reserved (saved by ``store.flush``)."""
    account.reserved_cash -= order["reserved_cash_e6"]
    if order["reserved_qty_e6"]:
        position = store.position(account, order["symbol"])
        position.reserved_qty -= order["reserved_qty_e6"]
        store.touch_position(position)
    store.update_order(order["id"], STATUS_CANCELED, order["filled_qty_e6"], ZERO, ZERO, now)
    store.add_event(order["id"], now, STATUS_NEW, STATUS_CANCELED, reason)


def fill_resting(
    store: Store,
    account: AccountState,
    position: PositionState,
    order: dict[str, Any],
    quote: QuoteSnapshot,
    run_id: str,
    now: datetime,
) -> dict[str, Any] | None:
    """Fill a resting limit order that the new quote crossed; its reservation pays for it.

    A fill that would take an amount past the ledger's bounds (a sell crossed by an extreme quote) is not made:
    the order is canceled, its event giving the reason, and None is returned.
    """
    fillable = FillableOrder(
        order["id"], order["order_id"], order["symbol"], order["side"], order["qty_e6"], order["limit_price_e6"],
        order["slippage_bps_e6"], order["fee_bps_e6"], order["reserved_cash_e6"], order["reserved_qty_e6"],
    )
    try:
        priced = price_order(fillable, quote)
        effect = fill_effect(account, position, fillable, priced)
    except AmountLimitError as exc:
        release_resting(store, account, order, now, f"canceled instead of filled: {exc}")
        return None
    fill = apply_fill(store, account, position, fillable, priced, effect, quote, run_id, now)
    store.update_order(order["id"], STATUS_FILLED, order["qty_e6"], ZERO, ZERO, now)
    store.add_event(order["id"], now, STATUS_NEW, STATUS_FILLED, "limit crossed by quote")
    return fill
