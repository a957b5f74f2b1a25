"""Child for the concurrency tests: one of several processes hammering one ledger at the same moment.

``python -m tests.workers.concurrent_trader DB_URL ACCOUNT WORKER_INDEX ORDERS SEED MODE``, MODE ``mixed`` or
``same-client-id``. The child imports, reports ``ready``, waits for the parent's ``go`` (all children start
together), opens its broker and trades. Only order rejections (cash or shares short) are expected errors; anything
else - "database is locked" included - escapes, the child exits non-zero and the test fails with its traceback.
The last stdout line is a ``result`` message with every fill this child's calls produced. In ``same-client-id``
mode the child also waits for a ``go`` before each shared id, so the four submits of one id collide.

``LEDGER_UNSAFE_DEFERRED_BEGIN=1`` (test harness only, never read by the library) removes the up-front write lock
before trading: SQLite write transactions start with a plain deferred ``BEGIN`` and PostgreSQL reads the account
row without ``FOR UPDATE``. The concurrency tests must then fail; that is how we know they can.
"""

from __future__ import annotations

import os
import random
import sys
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, event

from ledger.brokers.paper import PaperBroker
from ledger.exceptions import OrderRejectedError
from tests.workers.protocol import emit, wait_for_go

INITIAL_CASH = 100_000
SYMBOLS = ("AAPL", "MSFT")
START_MID = {"AAPL": 100.0, "MSFT": 250.0}
SHARED_CLIENT_IDS = 30


def remove_up_front_write_lock() -> None:
    """Make every write transaction take its locks late (the unsafe way), for the teeth run only.

    Done at the driver boundary so it holds whatever statements the ledger builds: SQLite's ``BEGIN IMMEDIATE``
    becomes a deferred ``BEGIN`` and PostgreSQL's ``FOR UPDATE`` row locks are dropped from every statement.
    """

    def unsafe(statement: object) -> object:
        if not isinstance(statement, str):
            return statement
        return statement.replace("BEGIN IMMEDIATE", "BEGIN").replace(" FOR UPDATE", "")

    @event.listens_for(Engine, "before_cursor_execute", retval=True)
    def _rewrite(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        return unsafe(statement), parameters

    try:
        import psycopg
    except ImportError:
        return
    for name in ("execute", "executemany"):
        original = getattr(psycopg.Cursor, name)
        setattr(psycopg.Cursor, name, lambda self, query, *a, __run=original, **k: __run(self, unsafe(query), *a, **k))


def fill_summary(fill: dict[str, Any]) -> dict[str, Any]:
    return {key: fill[key] for key in ("order_id", "symbol", "side", "qty", "fill_price", "notional", "fee")}


def quote_all(broker: PaperBroker, mids: dict[str, float]) -> list[dict[str, Any]]:
    """Quote every symbol around its mid; returns the fills of the resting limits (anyone's) that crossed."""
    fills = []
    for symbol, mid in mids.items():
        fills += [fill_summary(fill) for fill in broker.set_quote(symbol, bid=round(mid - 0.05, 6), ask=round(mid + 0.05, 6))]
    return fills


def trade_mixed(broker: PaperBroker, worker: int, orders: int, rng: random.Random) -> dict[str, Any]:
    """Market and limit orders, quote updates that cross anyone's resting limits, cancels; cash kept >= 0."""
    mids = dict(START_MID)
    fills = quote_all(broker, mids)
    resting: list[str] = []
    statuses = {"filled": 0, "new": 0, "rejected": 0}
    lowest_cash = Decimal(INITIAL_CASH)
    for number in range(orders):
        symbol = rng.choice(SYMBOLS)
        if rng.random() < 0.15:
            mids[symbol] = round(mids[symbol] * (1 + rng.uniform(-0.01, 0.01)), 2)
            fills += quote_all(broker, {symbol: mids[symbol]})
        if resting and rng.random() < 0.1:
            broker.cancel_order(resting.pop(rng.randrange(len(resting))))
        side = rng.choice(("BUY", "SELL"))
        qty = rng.randint(1, 30)
        client_order_id = f"w{worker}-{number}" if rng.random() < 0.3 else None
        try:
            if rng.random() < 0.7:
                result = broker.submit_order(symbol, side, qty, client_order_id=client_order_id)
            else:
                limit = round(mids[symbol] * (1 + rng.uniform(-0.01, 0.01)), 2)
                result = broker.submit_order(symbol, side, qty, "limit", limit, client_order_id=client_order_id)
        except OrderRejectedError:
            statuses["rejected"] += 1
            continue
        statuses[result["status"]] += 1
        if result["status"] == "filled":
            fills.append(fill_summary(result))
        else:
            resting.append(result["order_id"])
        if number % 25 == 0:
            account = broker.get_account()
            lowest_cash = min(lowest_cash, Decimal(repr(account["cash"])), Decimal(repr(account["available_cash"])))
            if account["cash"] < 0 or account["available_cash"] < 0:
                raise AssertionError(f"cash went below zero: {account}")
    return {"fills": fills, "statuses": statuses, "lowest_cash": str(lowest_cash)}


def trade_same_client_ids(broker: PaperBroker, worker: int, orders: int, rng: random.Random) -> dict[str, Any]:
    """Every worker sends the same client_order_ids; the parent releases all workers at once for each id."""
    answers: dict[str, dict[str, Any]] = {}
    fills = quote_all(broker, dict(START_MID))
    for number in range(SHARED_CLIENT_IDS):
        client_order_id = f"shared-{number}"
        wait_for_go()
        result = broker.submit_order("AAPL", "BUY", 1 + number % 5, client_order_id=client_order_id)
        answers[client_order_id] = {"order_id": result["order_id"], "replayed": result["replayed"]}
        if not result["replayed"]:
            fills.append(fill_summary(result))
    return {"answers": answers, "fills": fills}


def main() -> None:
    db_url, account, worker, orders, seed, mode = sys.argv[1:7]
    if os.environ.get("LEDGER_UNSAFE_DEFERRED_BEGIN") == "1":
        remove_up_front_write_lock()
    rng = random.Random(int(seed))
    wait_for_go()
    broker = PaperBroker(db_url=db_url, account=account, initial_cash=INITIAL_CASH, slippage_bps=5, fee_bps=1)
    trade = trade_mixed if mode == "mixed" else trade_same_client_ids
    result = trade(broker, int(worker), int(orders), rng)
    broker.close()
    emit("result", worker=int(worker), **result)


if __name__ == "__main__":
    main()
