"""A two-minute tour: trade, restart, resume, audit, export — on a SQLite ledger in ./demo-ledger/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ledger.brokers import PaperBroker

FIRST_SESSION = """
from ledger.brokers import PaperBroker
b = PaperBroker(account="demo", db_url={url!r}, initial_cash=100_000, slippage_bps=5, fee_bps=1)
b.set_quote("AAPL", bid=190.00, ask=190.10)
b.set_quote("MSFT", bid=410.00, ask=410.40)
print("  bought", b.submit_order("AAPL", "BUY", 100, client_order_id="demo-aapl")["fill_price"], "x 100 AAPL")
print("  resting", b.submit_order("MSFT", "BUY", 50, "limit", 400.0)["status"], "limit buy 50 MSFT @ 400")
print("  process exits without closing its run (as if killed)")
"""


def main() -> None:
    folder = Path("demo-ledger").resolve()
    folder.mkdir(exist_ok=True)
    url = f"sqlite:///{folder / 'demo.db'}"
    for leftover in folder.glob("demo.db*"):
        leftover.unlink()
    print(f"ledger: {url}\n1) first process trades:")
    subprocess.run([sys.executable, "-c", FIRST_SESSION.format(url=url)], check=True)
    print("2) second process resumes the same account:")
    with PaperBroker(account="demo", db_url=url) as broker:
        print("  positions", broker.get_positions(), "cash", round(broker.get_cash(), 2))
        again = broker.submit_order("AAPL", "BUY", 100, client_order_id="demo-aapl")
        print("  resubmitted demo-aapl -> replayed:", again["replayed"], "(nothing bought twice)")
        fills = broker.set_quote("MSFT", bid=398.0, ask=399.0)
        print("  MSFT quote crosses the resting limit -> filled at", fills[0]["fill_price"])
        print("  positions", broker.get_positions(), "equity", round(broker.get_portfolio_value(), 2))
        print("  verify():", broker.verify() or "all invariants hold")
        paths = broker.export_jsonl(folder / "logs")
        print("  exported", ", ".join(str(p.relative_to(Path.cwd())) for p in paths))
    print(f"3) audit with plain SQL, e.g.: sqlite3 {folder / 'demo.db'} 'SELECT * FROM fills'")


if __name__ == "__main__":
    main()
