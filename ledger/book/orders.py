"""Use cases on orders: submit (one or a batch), work open orders against a quote, cancel, replace, expire, close
positions. Each public function is one use case run inside the caller's one write transaction.

Every status change is an ``order_events`` row; reservations (cash for buys, shares for sells) are held by open
orders (``new``, ``partially_filled``) and shrink as they fill. See ``ledger.book.matching`` for when an order
trades, and README "Trading rules" for the rules in prose.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any

from ledger.book.fills import FillableOrder, apply_fill, fill_effect
from ledger.book.margin import is_margin_account
from ledger.book.marks import MARK_FILL, mark_equity, stored_margin
from ledger.book.matching import (
    Liquidity,
    average_price,
    is_marketable_now,
    notional_qty,
    remaining_qty,
    track_stop,
    trailing_stop_price,
    working_limit,
)
from ledger.book.pricing import execution_price, price_fill, slipped_price
from ledger.book.store import AccountState, PositionState, QuoteSnapshot, Store, order_columns
from ledger.book.validation import InvalidOrder, OrderRequest, ledger_id, printable, validate_order
from ledger.calendars import day_order_expiry
from ledger.constants import (
    OPEN_STATUSES,
    ORDER_MARKET,
    ORDER_TRAILING_STOP,
    SIDE_BUY,
    SIDE_SELL,
    STATUS_CANCELED,
    STATUS_EXPIRED,
    STATUS_FILLED,
    STATUS_NEW,
    STATUS_PARTIALLY_FILLED,
    STATUS_REJECTED,
    STATUS_REPLACED,
    TIF_DAY,
    TIF_FOK,
    TIF_IOC,
)
from ledger.exceptions import (
    ClientOrderIdConflictError,
    InsufficientFundsError,
    OrderNotFoundError,
    OrderNotReplaceableError,
    OrderRejectedError,
    PositionNotFoundError,
)
from ledger.money import UNIT, AmountLimitError, plain, round_amount

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
    error: OrderRejectedError | OrderNotReplaceableError | None = None
    replayed: bool = False


@dataclass(frozen=True)
class ReplaceRequest:
    """What ``replace_order`` changes; None keeps the old order's value (qty: its unfilled quantity)."""

    qty: object = None
    limit_price: object = None
    stop_price: object = None
    trail: object = None  # the trail_price or trail_percent, whichever the order has
    time_in_force: object = None
    client_order_id: object = None


def new_order_id() -> str:
    """A random 128-bit id (uuid4 hex): unique forever, unlike the seed's 8 hex characters."""
    return uuid.uuid4().hex


# -- starting a write on an account ------------------------------------------------------------------------------
def open_account_for_write(store: Store, ctx: TradingContext, now: datetime) -> AccountState:
    """Lock the account (its clock checked and advanced) and expire its open orders whose time is up.

    Every write transaction on an account starts here, so a ``day`` order expires in the first write whose
    broker time is past its session's close (a quote, a submit, a cancel), with its reservation released.
    """
    account = store.lock_account(ctx.account_id, now)
    if expire_due(store, account, now):
        store.flush(now)  # later reads in this transaction (open orders, an order by id) see them expired
    return account


def expire_due(store: Store, account: AccountState, now: datetime) -> list[dict[str, Any]]:
    """Expire every open order of the account whose ``expires_at`` is at or before ``now``; returns them."""
    due = store.due_orders(account, now)
    for order in due:
        close_open_order(store, account, order, STATUS_EXPIRED, now, f"expired at {order['expires_at']:%Y-%m-%d %H:%M} UTC")
    return due


# -- submit ------------------------------------------------------------------------------------------------------
def _order_values(ctx: TradingContext, account: AccountState, now: datetime, **fields: Any) -> dict[str, Any]:
    """A new order row: every column, with the given fields set."""
    values: dict[str, Any] = dict.fromkeys(order_columns(), None)
    values.update(
        order_id=new_order_id(), account_id=account.id, epoch=account.epoch, run_id=ctx.run_id,
        slippage_bps_e6=ctx.slippage_bps, fee_bps_e6=ctx.fee_bps, filled_qty_e6=ZERO, reserved_cash_e6=ZERO,
        reserved_qty_e6=ZERO, submitted_at=now, updated_at=now,
    )
    values.update(fields)
    return values


def _request_values(ctx: TradingContext, account: AccountState, request: OrderRequest, now: datetime) -> dict[str, Any]:
    return _order_values(
        ctx, account, now,
        client_order_id=request.client_order_id, symbol=request.symbol, side=request.side,
        order_type=request.order_type, time_in_force=request.time_in_force, qty_e6=request.qty,
        notional_e6=request.notional, limit_price_e6=request.limit_price, stop_price_e6=request.stop_price,
        trail_price_e6=request.trail_price, trail_percent_e6=request.trail_percent,
    )


def record_invalid_order(store: Store, ctx: TradingContext, invalid: InvalidOrder, now: datetime) -> SubmitOutcome:
    """Keep an order that failed validation for audit, as submitted (it never holds a client_order_id)."""
    account = open_account_for_write(store, ctx, now)
    values = _order_values(
        ctx, account, now, symbol=invalid.symbol, side=invalid.side, order_type=invalid.order_type,
        time_in_force=invalid.time_in_force, qty_e6=invalid.qty, limit_price_e6=invalid.limit_price,
    )
    outcome = _reject(store, values, OrderRejectedError(invalid.symbol, invalid.reason))
    store.flush(now)
    return outcome


def submit_order(store: Store, ctx: TradingContext, request: OrderRequest, now: datetime) -> SubmitOutcome:
    """Place one order: it fills now (wholly or partly), rests, or is rejected; never half of one.

    A rejection is recorded (the caller commits it, then raises ``outcome.error``).
    """
    account = open_account_for_write(store, ctx, now)
    outcome = place_order(store, ctx, account, request, now)
    if outcome.fill is not None:
        mark_equity(store, account, now, reason=MARK_FILL)
    store.flush(now)
    return outcome


def submit_orders(store: Store, ctx: TradingContext, requests: list[OrderRequest], now: datetime) -> list[SubmitOutcome]:
    """Place a batch in one transaction, all or nothing: each order sees the cash and shares the earlier ones left.

    On the first order that would be rejected, raises its error (the same type, the message naming the order's
    index) before anything is written; the caller's transaction then rolls back.
    """
    account = open_account_for_write(store, ctx, now)
    store.reserve_keys(len(requests))
    store.look_up_client_order_ids(account.id, [r.client_order_id for r in requests if r.client_order_id is not None])
    outcomes = []
    for index, request in enumerate(requests):
        try:
            outcome = place_order(store, ctx, account, request, now)
        except ClientOrderIdConflictError as exc:
            raise ClientOrderIdConflictError(f"batch order #{index}: {exc}; nothing was submitted") from exc
        if outcome.error is not None:
            raise batch_rejection(index, outcome.error)
        outcomes.append(outcome)
    if any(outcome.fill is not None for outcome in outcomes):
        mark_equity(store, account, now, reason=MARK_FILL)
    store.flush(now)
    return outcomes


def batch_rejection(index: int, error: OrderRejectedError) -> OrderRejectedError:
    """``error`` (same type) with a message naming the batch index and saying nothing was written."""
    rejection = type(error)(error.symbol, f"batch order #{index}: {error.reason}; nothing was submitted")
    rejection.index = index  # type: ignore[attr-defined]
    return rejection


_IDEMPOTENT_FIELDS = (
    ("symbol", "symbol"), ("side", "side"), ("order_type", "order_type"), ("time_in_force", "time_in_force"),
    ("limit_price_e6", "limit_price"), ("stop_price_e6", "stop_price"), ("trail_price_e6", "trail_price"),
    ("trail_percent_e6", "trail_percent"), ("notional_e6", "notional"),
)


def _same_parameters(order: dict[str, Any], request: OrderRequest) -> bool:
    derived = ("stop_price_e6",) if order["order_type"] == ORDER_TRAILING_STOP else ()  # moves with the quotes
    if any(order[column] != getattr(request, field) for column, field in _IDEMPOTENT_FIELDS if column not in derived):
        return False
    # A notional order's quantity was fixed when it was priced: its notional identifies it.
    return request.notional is not None or order["qty_e6"] == request.qty


def place_order(
    store: Store, ctx: TradingContext, account: AccountState, request: OrderRequest, now: datetime,
    *, replaces: dict[str, Any] | None = None,
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
                    + f" {order['time_in_force']}); a different order needs a different id"
                )
            return SubmitOutcome(order, fill=fill, replayed=True)
    outcome = _place_new(store, ctx, account, request, now, replaces)
    if request.client_order_id is not None and outcome.error is None:
        store.hold_client_order_id(request.client_order_id, outcome.order, outcome.fill)
    return outcome


def _place_new(
    store: Store, ctx: TradingContext, account: AccountState, request: OrderRequest, now: datetime,
    replaces: dict[str, Any] | None,
) -> SubmitOutcome:
    quote = store.quote(account, request.symbol)
    position = store.position(account, request.symbol)
    values = _request_values(ctx, account, request, now)
    if replaces is not None:
        values["replaces_id"] = replaces["id"]
    needs_quote = request.order_type in (ORDER_MARKET, ORDER_TRAILING_STOP)
    if needs_quote and quote is None:
        what = "trail from" if request.order_type == ORDER_TRAILING_STOP else "price it"
        return _reject(store, values, OrderRejectedError(request.symbol, f"No quote available for {request.symbol} to {what}"))
    try:
        if request.notional is not None:
            assert quote is not None
            price = slipped_price(request.side, quote.bid, quote.ask, ctx.slippage_bps)
            values["qty_e6"] = notional_qty(request.notional, price)
            if values["qty_e6"] <= 0:
                return _reject(store, values, OrderRejectedError(
                    request.symbol, f"notional {plain(request.notional)} buys less than 0.000001 at {plain(price)}"))
        if request.time_in_force == TIF_DAY:
            values["expires_at"] = day_order_expiry(account.calendar, now)
        if request.order_type == ORDER_TRAILING_STOP:
            assert quote is not None
            values["hwm_e6"] = quote.ask if request.side == SIDE_BUY else quote.bid
            values["stop_price_e6"] = trailing_stop_price(values, values["hwm_e6"])
        trigger = track_stop(values, quote) if quote is not None else None
        if trigger is not None:
            values["triggered_at"] = now
        fill_now, fill_qty = _immediate_fill(account, values, quote)
        if request.time_in_force == TIF_FOK and (not fill_now or fill_qty < values["qty_e6"]):
            return _cancel_at_once(store, values, now, trigger, "fok: could not fill the whole quantity at once")
        if request.time_in_force == TIF_IOC and not fill_now:
            return _cancel_at_once(store, values, now, trigger, "ioc: nothing could fill at once")
        rests = values["qty_e6"] - fill_qty if request.time_in_force != TIF_IOC else ZERO
        error = _affordability_error(store, account, position, values, quote, fill_qty if fill_now else ZERO, rests, now)
        if error is None and fill_now:
            assert quote is not None
            _check_fill_bounds(account, position, values, quote, fill_qty)
    except AmountLimitError as exc:
        error = OrderRejectedError(request.symbol, str(exc))
    if error is not None:
        return _reject(store, values, error)

    values["status"] = STATUS_NEW
    pk = store.add_order(values)
    store.add_event(pk, now, None, STATUS_NEW, _accepted_reason(values, quote, fill_now))
    if trigger is not None:
        store.add_event(pk, now, STATUS_NEW, STATUS_NEW, trigger)
    fill = None
    if fill_now:
        assert quote is not None
        fill = execute_fill(
            store, account, position, values, quote, fill_qty, ctx.run_id, now, Liquidity(account, quote), None
        )
        if fill is None:  # refused at the fill (bounds): the order is closed with the reason, never half-written
            return SubmitOutcome(values)
    if rests > 0:  # reserved after the immediate fill, so that fill releases nothing of it
        _reserve(account, position, values, quote, rests, store)
        store.update_order(values, now)
    if values["status"] in OPEN_STATUSES and request.time_in_force == TIF_IOC:
        close_open_order(store, account, values, STATUS_CANCELED, now, "ioc: unfilled remainder canceled")
    return SubmitOutcome(values, fill=fill)


def _check_fill_bounds(
    account: AccountState, position: PositionState, order: dict[str, Any], quote: QuoteSnapshot, qty: Decimal
) -> None:
    """AmountLimitError when filling ``qty`` now would take an amount past the ledger's bounds (before any write)."""
    price = execution_price(order["side"], quote.bid, quote.ask, order["slippage_bps_e6"], order["limit_price_e6"])
    fillable = FillableOrder(0, order["order_id"], order["symbol"], order["side"], qty, order["limit_price_e6"],
                             order["slippage_bps_e6"], order["fee_bps_e6"], ZERO, ZERO)
    fill_effect(account, position, fillable, price_fill(qty, price, order["fee_bps_e6"]))


def _immediate_fill(account: AccountState, order: dict[str, Any], quote: QuoteSnapshot | None) -> tuple[bool, Decimal]:
    """Whether the new order can trade on the current quote, and how much of it (displayed size allowing)."""
    if quote is None or not is_marketable_now(order, quote):
        return False, ZERO
    qty = Liquidity(account, quote).available(order["side"], order["qty_e6"])
    return qty > 0, qty


def _accepted_reason(values: dict[str, Any], quote: QuoteSnapshot | None, fill_now: bool) -> str | None:
    if fill_now:
        return None
    if quote is None:
        return "resting: no quote yet"
    if values["order_type"] in ("stop", "stop_limit", ORDER_TRAILING_STOP) and values["triggered_at"] is None:
        return f"resting: waiting for the stop {plain(values['stop_price_e6'])}"
    return "resting: limit not marketable"


def _cancel_at_once(
    store: Store, values: dict[str, Any], now: datetime, trigger: str | None, reason: str
) -> SubmitOutcome:
    """An ioc or fok order that cannot trade now: accepted, then canceled in the same transaction, nothing held."""
    values.update(status=STATUS_CANCELED, canceled_at=now)
    pk = store.add_order(values)
    store.add_event(pk, now, None, STATUS_NEW, None)
    if trigger is not None:
        store.add_event(pk, now, STATUS_NEW, STATUS_NEW, trigger)
    store.add_event(pk, now, STATUS_NEW, STATUS_CANCELED, reason)
    return SubmitOutcome(values)


def _reference_price(order: dict[str, Any], quote: QuoteSnapshot | None) -> Decimal:
    """The price a resting buy reserves cash at: its limit if it has one (never filled above it), else its stop,
    else the current ask; slippage added for the market-like ones."""
    if order["limit_price_e6"] is not None:
        return order["limit_price_e6"]
    base = order["stop_price_e6"] if order["stop_price_e6"] is not None else quote.ask  # type: ignore[union-attr]
    return slipped_price(SIDE_BUY, base, base, order["slippage_bps_e6"])


def _short_reference_price(order: dict[str, Any], quote: QuoteSnapshot | None) -> Decimal:
    """The price a resting short sale holds buying power at: the highest of its limit, its stop and the ask."""
    prices = (order["limit_price_e6"], order["stop_price_e6"], None if quote is None else quote.ask)
    return max(price for price in prices if price is not None)


def _opening(side: str, held: Decimal) -> bool:
    """Whether an order on ``side`` opens or adds to the position ``held`` (a buy when flat or long, a sell when
    flat or short), rather than closing part of it. Orders never reverse a position, so this holds for an order's
    whole life."""
    return held >= 0 if side == SIDE_BUY else held <= 0


def _affordability_error(
    store: Store, account: AccountState, position: PositionState, order: dict[str, Any], quote: QuoteSnapshot | None,
    fill_qty: Decimal, rest_qty: Decimal, now: datetime,
) -> OrderRejectedError | None:
    """Can the account take the order: cash for what fills now plus the reservation of what rests (buys), or
    the shares (sells)? On a margin account, buying power instead of cash, and short sales (see
    ``ledger.book.margin``). Computed before anything is written."""
    if is_margin_account(account.max_margin_multiplier):
        return _margin_error(store, account, position, order, quote, fill_qty, rest_qty, now)
    symbol = order["symbol"]
    if order["side"] == SIDE_BUY:
        needed = _opening_value(order, quote, fill_qty, rest_qty)
        if needed > account.available_cash:
            return InsufficientFundsError(
                symbol, f"Insufficient cash: need ${needed:,.2f}, have ${account.available_cash:,.2f} available"
            )
        return None
    return _shares_error(order, position, fill_qty + rest_qty, "")


def _shares_error(order: dict[str, Any], position: PositionState, qty: Decimal, note: str) -> OrderRejectedError | None:
    if qty <= position.available_qty:
        return None
    return OrderRejectedError(
        order["symbol"],
        f"Insufficient shares: need {plain(qty)}, have {plain(max(position.available_qty, ZERO))}"
        + (f" ({plain(position.reserved_qty)} reserved by open sells)" if position.reserved_qty else "")
        + note,
    )


def _opening_value(order: dict[str, Any], quote: QuoteSnapshot | None, fill_qty: Decimal, rest_qty: Decimal) -> Decimal:
    """What an opening order needs: its fill now at the execution price plus its rest at its reference price,
    fees included (a buy's cost; a short sale's value)."""
    side = order["side"]
    needed = ZERO
    if fill_qty > 0:
        assert quote is not None
        price = execution_price(side, quote.bid, quote.ask, order["slippage_bps_e6"], order["limit_price_e6"])
        priced = price_fill(fill_qty, price, order["fee_bps_e6"])
        needed += priced.buy_cost if side == SIDE_BUY else priced.notional + priced.fee
    if rest_qty > 0:
        needed += _rest_reservation(order, quote, rest_qty)
    return needed


def _rest_reservation(order: dict[str, Any], quote: QuoteSnapshot | None, qty: Decimal) -> Decimal:
    """The cash (or buying power) ``qty`` of an opening order holds while it rests."""
    if order["side"] == SIDE_BUY:
        return price_fill(qty, _reference_price(order, quote), order["fee_bps_e6"]).buy_cost
    priced = price_fill(qty, _short_reference_price(order, quote), order["fee_bps_e6"])
    return priced.notional + priced.fee


def _margin_error(
    store: Store, account: AccountState, position: PositionState, order: dict[str, Any], quote: QuoteSnapshot | None,
    fill_qty: Decimal, rest_qty: Decimal, now: datetime,
) -> OrderRejectedError | None:
    """A margin account's checks (rules in ``ledger.book.margin`` and README "Short selling and margin")."""
    symbol, side, held, qty = order["symbol"], order["side"], position.qty, fill_qty + rest_qty
    if not _opening(side, held):
        if side == SIDE_SELL:
            return _shares_error(order, position, qty, "; a sell closes a long position, it cannot also open a short")
        store.flush(now)
        covering = sum((remaining_qty(o) for o in store.open_orders(account, [symbol]) if o["side"] == SIDE_BUY), ZERO)
        if qty > -held - covering:
            return OrderRejectedError(
                symbol,
                f"Insufficient short position to cover: need {plain(qty)}, short {plain(-held)}"
                + (f" ({plain(covering)} held by open buys)" if covering else "")
                + "; a buy covers a short position, it cannot also open a long",
            )
        return None
    if side == SIDE_SELL and not account.shorting_enabled:
        return _shares_error(order, position, qty, " (short selling is disabled on this account)")
    store.flush(now)
    if held == 0 and any(o["side"] != side for o in store.open_orders(account, [symbol])):
        opposite = "buy" if side == SIDE_SELL else "sell"
        return OrderRejectedError(
            symbol,
            f"cannot open a {'short' if side == SIDE_SELL else 'long'} position in {symbol} while a {opposite} "
            "order for it is open (cancel it first)",
        )
    needed = _opening_value(order, quote, fill_qty, rest_qty)
    power = buying_power(store, account, now)
    if needed > power:
        return InsufficientFundsError(
            symbol, f"Insufficient buying power: need ${needed:,.2f}, have ${max(power, ZERO):,.2f}"
        )
    return None


def buying_power(store: Store, account: AccountState, now: datetime) -> Decimal:
    """The account's buying power as this transaction now stands (see ``ledger.book.margin``)."""
    store.flush(now)
    return stored_margin(store, account).buying_power


def _reserve(
    account: AccountState, position: PositionState, order: dict[str, Any], quote: QuoteSnapshot | None,
    qty: Decimal, store: Store,
) -> None:
    """Hold what ``qty`` of the order needs while it rests: cash or buying power (orders that open or add to a
    position), shares (sells of a long). A buy to cover holds nothing."""
    if _opening(order["side"], position.qty):
        reserve = _rest_reservation(order, quote, qty)
        order["reserved_cash_e6"] += reserve
        account.reserved_cash += reserve
    elif order["side"] == SIDE_SELL:
        order["reserved_qty_e6"] += qty
        position.reserved_qty += qty
        store.touch_position(position)


def _reject(store: Store, values: dict[str, Any], error: OrderRejectedError) -> SubmitOutcome:
    values.update(status=STATUS_REJECTED, reject_reason=error.reason, reserved_cash_e6=ZERO, reserved_qty_e6=ZERO,
                  expires_at=None, triggered_at=None)
    pk = store.add_order(values)
    store.add_event(pk, values["submitted_at"], None, STATUS_REJECTED, error.reason)
    return SubmitOutcome(values, error=error)


# -- fills -------------------------------------------------------------------------------------------------------
def execute_fill(
    store: Store,
    account: AccountState,
    position: PositionState,
    order: dict[str, Any],
    quote: QuoteSnapshot,
    qty: Decimal,
    run_id: str,
    now: datetime,
    liquidity: Liquidity,
    reason: str | None,
) -> dict[str, Any] | None:
    """Fill ``qty`` of an open order at the quote; its reservation shrinks in proportion, its status follows
    (``reason`` goes on the event; a partial fill's says how much of the order it filled).

    A fill the account cannot pay for (a stop that gapped past what it reserved) or that would take an amount
    past the ledger's bounds is not made: the order is canceled with the reason, and None is returned.
    """
    remaining = remaining_qty(order)
    whole = qty == remaining
    release_cash = order["reserved_cash_e6"] if whole else round_amount(order["reserved_cash_e6"] * qty / remaining)
    release_qty = min(order["reserved_qty_e6"], qty)
    fillable = FillableOrder(
        order["id"], order["order_id"], order["symbol"], order["side"], qty,
        order["limit_price_e6"] if order["order_type"] in ("limit", "stop_limit") else None,
        order["slippage_bps_e6"], order["fee_bps_e6"], release_cash, release_qty,
    )
    price = execution_price(order["side"], quote.bid, quote.ask, order["slippage_bps_e6"], fillable.limit_price)
    try:
        priced = price_fill(qty, price, order["fee_bps_e6"])
        cash_account = not is_margin_account(account.max_margin_multiplier)
        if cash_account and order["side"] == SIDE_BUY and priced.buy_cost > account.available_cash + release_cash:
            close_open_order(store, account, order, STATUS_CANCELED, now,
                             f"canceled instead of filled: insufficient cash (need ${priced.buy_cost:,.2f}, "
                             f"have ${account.available_cash + release_cash:,.2f})")
            return None
        if cash_account and order["side"] == SIDE_SELL and qty > position.available_qty + release_qty:
            close_open_order(store, account, order, STATUS_CANCELED, now,
                             f"canceled instead of filled: insufficient shares (need {plain(qty)})")
            return None
        effect = fill_effect(account, position, fillable, priced)
    except AmountLimitError as exc:
        close_open_order(store, account, order, STATUS_CANCELED, now, f"canceled instead of filled: {exc}")
        return None
    earlier = store.fill_prices(order["id"]) if order["filled_qty_e6"] > 0 else []
    fill = apply_fill(store, account, position, fillable, priced, effect, quote, run_id, now)
    if liquidity.take(order["side"], qty):
        store.take_displayed_size(account, order["symbol"], order["side"], qty)
    before = order["status"]
    order["filled_qty_e6"] += qty
    order["filled_avg_price_e6"] = average_price([*earlier, (qty, price)])
    order["reserved_cash_e6"] -= release_cash
    order["reserved_qty_e6"] -= release_qty
    if order["filled_qty_e6"] == order["qty_e6"]:
        order["status"] = STATUS_FILLED
        order["filled_at"] = now
        _release(store, account, order)
    else:
        order["status"] = STATUS_PARTIALLY_FILLED
        reason = f"{reason + ': ' if reason else ''}{plain(qty)} of {plain(order['qty_e6'])} @ {plain(price)}"
    store.update_order(order, now)
    store.add_event(order["id"], now, before, order["status"], reason)
    return fill


def work_open_orders(
    store: Store, account: AccountState, symbol: str, quote: QuoteSnapshot, open_orders: list[dict[str, Any]],
    run_id: str, now: datetime,
) -> list[dict[str, Any]]:
    """Let the new quote move, trigger and fill the symbol's ``open_orders`` (oldest first); returns the fills."""
    fills: list[dict[str, Any]] = []
    if not open_orders:
        return fills
    liquidity = Liquidity(account, quote)
    position = store.position(account, symbol)
    store.reserve_keys(len(open_orders))
    for order in open_orders:
        mark, stop = order["hwm_e6"], order["stop_price_e6"]
        trigger = track_stop(order, quote)
        if trigger is not None:
            order["triggered_at"] = now
            store.add_event(order["id"], now, order["status"], order["status"], trigger)
        moved = (mark, stop) != (order["hwm_e6"], order["stop_price_e6"]) or trigger is not None
        if is_marketable_now(order, quote):
            qty = liquidity.available(order["side"], remaining_qty(order))
            if qty > 0:
                crossed = "limit crossed by quote" if working_limit(order) is not None else "filled at the quote"
                fill = execute_fill(store, account, position, order, quote, qty, run_id, now, liquidity, crossed)
                if fill is not None:
                    fills.append(fill)
                continue
        if moved:
            store.update_order(order, now)
    return fills


# -- closing open orders ---------------------------------------------------------------------------------------------
def _release(store: Store, account: AccountState, order: dict[str, Any]) -> None:
    """Give back whatever the order still reserves (cash or shares)."""
    account.reserved_cash -= order["reserved_cash_e6"]
    if order["reserved_qty_e6"]:
        position = store.position(account, order["symbol"])
        position.reserved_qty -= order["reserved_qty_e6"]
        store.touch_position(position)
    order["reserved_cash_e6"] = ZERO
    order["reserved_qty_e6"] = ZERO


_CLOSED_AT = {STATUS_CANCELED: "canceled_at", STATUS_EXPIRED: "expired_at", STATUS_REPLACED: "replaced_at"}


def close_open_order(
    store: Store, account: AccountState, order: dict[str, Any], status: str, now: datetime, reason: str
) -> None:
    """End an open order as canceled, expired or replaced: its reservation released, its time and event written."""
    before = order["status"]
    _release(store, account, order)
    order["status"] = status
    order[_CLOSED_AT[status]] = now
    store.update_order(order, now)
    store.add_event(order["id"], now, before, status, reason)


def cancel_order(store: Store, ctx: TradingContext, order_id: str, now: datetime) -> dict[str, Any]:
    """Cancel an open order and release its reservation; a finished order just reports its status."""
    if ledger_id(order_id) is None:
        raise OrderNotFoundError(printable(order_id, 40))
    account = open_account_for_write(store, ctx, now)
    order = store.order(account.id, order_id)
    if order is None:
        raise OrderNotFoundError(order_id)
    if order["status"] in OPEN_STATUSES:
        close_open_order(store, account, order, STATUS_CANCELED, now, "canceled by request")
    store.flush(now)
    return {"order_id": order_id, "status": order["status"], "timestamp": now}


def cancel_all_orders(store: Store, ctx: TradingContext, now: datetime) -> list[dict[str, Any]]:
    """Cancel every open order of the account's current epoch; returns the canceled orders (as now stored)."""
    account = open_account_for_write(store, ctx, now)
    canceled = cancel_open_orders(store, account, now, "canceled by cancel_all_orders")
    store.flush(now)
    return canceled


def cancel_open_orders(store: Store, account: AccountState, now: datetime, reason: str) -> list[dict[str, Any]]:
    orders = store.open_orders(account)
    for order in orders:
        close_open_order(store, account, order, STATUS_CANCELED, now, reason)
    return orders


# -- replace -----------------------------------------------------------------------------------------------------
def replace_order(
    store: Store, ctx: TradingContext, order_id: str, changes: ReplaceRequest, now: datetime
) -> SubmitOutcome:
    """Atomically replace an open order: the old one becomes ``replaced`` (pointing at its successor), the new
    one records what it ``replaces``, the reservation moves. The new order is placed like any order (it may fill
    at once); if it would be rejected, nothing changes and the rejection is raised. An order that is no longer
    open comes back with ``error`` set (OrderNotReplaceableError), raised by the caller after the commit."""
    if ledger_id(order_id) is None:
        raise OrderNotFoundError(printable(order_id, 40))
    account = open_account_for_write(store, ctx, now)
    old = store.order(account.id, order_id)
    if old is None:
        raise OrderNotFoundError(order_id)
    if old["status"] not in OPEN_STATUSES:
        # Returned, not raised: an expiry this write just made must commit (the caller raises afterwards).
        store.flush(now)
        return SubmitOutcome(old, error=OrderNotReplaceableError(
            f"order {order_id} is {old['status']}: only an open order can be replaced"))
    trailing_by_price = old["trail_price_e6"] is not None
    checked = validate_order(
        old["symbol"], old["side"], remaining_qty(old) if changes.qty is None else changes.qty, old["order_type"],
        old["limit_price_e6"] if changes.limit_price is None else changes.limit_price,
        changes.client_order_id,
        time_in_force=old["time_in_force"] if changes.time_in_force is None else changes.time_in_force,
        stop_price=None if old["order_type"] == ORDER_TRAILING_STOP
        else (old["stop_price_e6"] if changes.stop_price is None else changes.stop_price),
        trail_price=(old["trail_price_e6"] if changes.trail is None else changes.trail) if trailing_by_price else None,
        trail_percent=None if trailing_by_price or old["order_type"] != ORDER_TRAILING_STOP
        else (old["trail_percent_e6"] if changes.trail is None else changes.trail),
    )
    if isinstance(checked, InvalidOrder):
        raise OrderRejectedError(checked.symbol, f"cannot replace order {order_id}: {checked.reason}")
    close_open_order(store, account, old, STATUS_REPLACED, now, "replaced by request")
    outcome = place_order(store, ctx, account, checked, now, replaces=old)
    if outcome.error is not None:
        raise type(outcome.error)(outcome.error.symbol, f"cannot replace order {order_id}: {outcome.error.reason}")
    old["replaced_by_id"] = outcome.order["id"]
    store.update_order(old, now)
    store.flush(now)
    outcome.order["replaces"] = old["order_id"]
    return outcome


# -- closing positions -----------------------------------------------------------------------------------------------
def close_position(
    store: Store, ctx: TradingContext, symbol: str, qty: Decimal | None, percentage: Decimal | None, now: datetime
) -> SubmitOutcome:
    """A market order that closes the position in ``symbol`` (all of it, ``qty``, or ``percentage`` percent)."""
    account = open_account_for_write(store, ctx, now)
    outcome = _close(store, ctx, account, symbol, qty, percentage, now)
    store.flush(now)
    return outcome


def close_all_positions(store: Store, ctx: TradingContext, cancel_orders: bool, now: datetime) -> list[SubmitOutcome]:
    """Close every position with a market order (first canceling every open order when ``cancel_orders``).

    One transaction; an order that is rejected (no quote, shares held by open orders) is recorded as rejected
    and the others still go through.
    """
    account = open_account_for_write(store, ctx, now)
    if cancel_orders:
        cancel_open_orders(store, account, now, "canceled by close_all_positions")
    store.flush(now)
    outcomes = [
        _close(store, ctx, account, symbol, None, None, now)
        for symbol, qty, _, _ in store.position_marks(account)
        if qty != 0
    ]
    store.flush(now)
    return outcomes


def _close(
    store: Store, ctx: TradingContext, account: AccountState, symbol: str, qty: Decimal | None,
    percentage: Decimal | None, now: datetime,
) -> SubmitOutcome:
    held = store.position(account, symbol).qty
    if held == 0:
        raise PositionNotFoundError(f"no open position in {symbol}")
    size: object = abs(held)
    if percentage is not None:
        if not 0 < percentage <= 100:
            raise ValueError(f"percentage must be above 0 and at most 100, got {plain(percentage)}")
        size = (abs(held) * percentage / 100).quantize(UNIT, rounding=ROUND_DOWN)
    elif qty is not None:
        size = qty
    side = SIDE_SELL if held > 0 else SIDE_BUY
    checked = validate_order(symbol, side, size, ORDER_MARKET)
    if isinstance(checked, InvalidOrder):
        values = _order_values(ctx, account, now, symbol=symbol, side=side, order_type=ORDER_MARKET,
                               time_in_force=checked.time_in_force, qty_e6=checked.qty)
        return _reject(store, values, OrderRejectedError(symbol, checked.reason))
    return place_order(store, ctx, account, checked, now)
