"""Child for the order-model crash test: one replace or one quote on a prepared account, killed mid-transaction.

``python -m tests.workers.order_model_trader DB_URL ACCOUNT ACTION STALL_AT NOW``. ACTION is ``replace`` (replace
the account's oldest open order with limit 150.30: it fills again, partly) or ``quote`` (a quote that triggers the
resting stops and partially fills orders by displayed size). The broker clock reads NOW (ISO, UTC). Prints
``ready`` once the broker is open, then with STALL_AT = n > 0 stops right after the transaction's n-th row write
(``stalled``) for the parent to SIGKILL it there; otherwise ``done`` with the fills or the new order.
"""

from __future__ import annotations

import sys
from datetime import datetime

from ledger.brokers.paper import PaperBroker
from tests.workers.crash_trader import stall_inside_write
from tests.workers.protocol import emit


def run_action(broker: PaperBroker, action: str) -> object:
    """The use case under test (the parent runs it in-process on a scout account too)."""
    if action == "replace":
        return broker.replace_order(broker.get_orders(status="open")[0]["order_id"], limit_price=150.3)
    return broker.set_quote("AAPL", bid=148.2, ask=148.4, bid_size=12, ask_size=6)


def main() -> None:
    db_url, account, action, stall_at, now = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
    moment = datetime.fromisoformat(now)
    broker = PaperBroker(db_url=db_url, account=account, clock=lambda: moment)
    emit("ready")
    if stall_at:
        stall_inside_write(stall_at)
    emit("done", result=run_action(broker, action))


if __name__ == "__main__":
    main()
