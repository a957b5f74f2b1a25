"""Child process for the restart test: opens the ledger, trades, prints what it did as JSON, exits."""

from __future__ import annotations

import json
import sys

from ledger.brokers.paper import PaperBroker


def main() -> None:
    db_url, phase = sys.argv[1], sys.argv[2]
    broker = PaperBroker(db_url=db_url, account="restart", initial_cash=50_000, slippage_bps=2, fee_bps=1)
    if phase == "first":
        broker.set_quote("SPY", bid=470.0, ask=470.2)
        filled = broker.submit_order("SPY", "BUY", 20, client_order_id="day1-spy")
        resting = broker.submit_order("SPY", "BUY", 10, "limit", 460.0)
        print(json.dumps({"filled": filled["order_id"], "resting": resting["order_id"], "run": broker.run_id}))
        # No close(): the process ends without ending its run, like a crash after the last commit.
    else:
        fills = broker.set_quote("SPY", bid=459.0, ask=459.5)
        again = broker.submit_order("SPY", "BUY", 20, client_order_id="day1-spy")
        print(json.dumps({
            "crossed": [f["order_id"] for f in fills],
            "replayed": again["order_id"],
            "positions": broker.get_positions(),
            "cash": broker.get_cash(),
            "problems": broker.verify(),
        }))
        broker.close()


if __name__ == "__main__":
    main()
