"""Child for the crash test: trades forever on one account and reports every call the moment it has returned.

``python -m tests.workers.crash_trader DB_URL SEED [STALL_AT]``. Messages: ``opening`` (before the broker opens
the database), ``ready``, then ``order`` (submit_order returned: id, status and fill), ``quote`` (set_quote
returned: the resting orders it filled), ``cancel`` (cancel_order returned) and ``rejected``. The parent SIGKILLs
this process at a random moment; whatever it had printed was acknowledged and must survive.

With ``STALL_AT`` = n > 0 the child stops inside a write transaction - right after its n-th row write (INSERT or UPDATE)
through ``ledger.book.store.Store`` (after trading started) - prints ``stalled`` and waits there, so the parent's kill lands
mid-transaction for certain rather than by chance.
"""

from __future__ import annotations

import functools
import random
import sys
from collections.abc import Callable
from typing import Any

from ledger.book import store
from ledger.brokers.paper import PaperBroker
from ledger.exceptions import OrderRejectedError, QuoteNotFoundError
from tests.workers.protocol import emit

ACCOUNT = "crash"
INITIAL_CASH = 1_000_000
SYMBOLS = ("AAPL", "MSFT", "SPY")
START_PRICE = {"AAPL": 150.0, "MSFT": 400.0, "SPY": 470.0}


def fill_fields(result: dict) -> dict:
    return {key: result.get(key) for key in ("order_id", "status", "qty", "fill_price", "notional", "fee")}


WRITE_STATEMENTS = ("INSERT", "UPDATE")


def stall_inside_write(stall_at: int) -> None:
    """Wrap the statement runners of ledger.book.store.Store; the ``stall_at``-th row write stops after it ran."""
    calls = 0

    def wrap(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def wrapper(self: Any, sql: str, *args: Any, **kwargs: Any) -> Any:
            nonlocal calls
            result = original(self, sql, *args, **kwargs)
            if sql.lstrip().upper().startswith(WRITE_STATEMENTS):
                calls += 1
                if calls == stall_at:
                    emit("stalled", after=f"{name}: {sql.split('(')[0]}")
                    sys.stdin.readline()  # the parent kills us here, inside the open transaction
                    raise SystemExit("stall released: the parent was expected to kill this process")
            return result

        return wrapper

    for name in ("_execute", "_execute_many"):
        setattr(store.Store, name, wrap(name, getattr(store.Store, name)))


def main() -> None:
    db_url, seed = sys.argv[1], int(sys.argv[2])
    stall_at = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    rng = random.Random(seed)
    emit("opening")
    broker = PaperBroker(db_url=db_url, account=ACCOUNT, initial_cash=INITIAL_CASH, slippage_bps=5, fee_bps=1)
    mids = {}
    for symbol in SYMBOLS:
        try:
            quote = broker.get_quote(symbol)
            mids[symbol] = (quote["bid"] + quote["ask"]) / 2
        except QuoteNotFoundError:
            mids[symbol] = START_PRICE[symbol]
            broker.set_quote(symbol, bid=round(mids[symbol] - 0.05, 2), ask=round(mids[symbol] + 0.05, 2))
    resting = [order["order_id"] for order in broker.get_orders(status="new")]
    emit("ready", run_id=broker.run_id)
    if stall_at:
        stall_inside_write(stall_at)
    while True:
        symbol = rng.choice(SYMBOLS)
        action = rng.random()
        if action < 0.2:
            mids[symbol] = round(max(1.0, mids[symbol] * (1 + rng.uniform(-0.004, 0.004))), 2)
            fills = broker.set_quote(symbol, bid=round(mids[symbol] - 0.05, 2), ask=round(mids[symbol] + 0.05, 2))
            emit("quote", symbol=symbol, fills=[
                {"order_id": f["order_id"], "status": "filled", "qty": f["qty"], "fill_price": f["fill_price"],
                 "notional": f["notional"], "fee": f["fee"]} for f in fills
            ])
            continue
        if action < 0.3 and resting:
            order_id = resting.pop(rng.randrange(len(resting)))
            result = broker.cancel_order(order_id)
            emit("cancel", order_id=order_id, status=result["status"])
            continue
        side = rng.choice(("BUY", "SELL"))
        qty = rng.randint(1, 20)
        try:
            if action < 0.7:
                result = broker.submit_order(symbol, side, qty)
            else:
                # Around the touch: some limits are marketable (fill, capped at the limit), most rest.
                offset = rng.uniform(-0.01, 0.01) * mids[symbol]
                limit = round(mids[symbol] + (offset if side == "BUY" else -offset), 2)
                result = broker.submit_order(symbol, side, qty, "limit", limit)
        except OrderRejectedError as exc:
            emit("rejected", symbol=symbol, side=side, reason=exc.reason)
            continue
        if result["status"] == "new":
            resting.append(result["order_id"])
        emit("order", **fill_fields(result))


if __name__ == "__main__":
    main()
