"""Time the dashboard's pages over a big ledger (not a test: run it by hand).

    python -m benchmarks.web_pages                 # the 1M-fill ledger of benchmarks/bigledger.py (built once)
    python -m benchmarks.web_pages --fills 100000  # a smaller one

Each page is rendered in-process by the service's app (FastAPI's TestClient: routing, session check, the reads,
the template), signed in with an admin key (it sees both accounts); the figure is the median of ``--reps``
renders. The issue's target: every page "in well under a second" over 1M fills. ``bench`` holds 90% of the fills
and an equity mark at each; ``other`` has no marks (a ledger made before they existed: its curve comes from its
fills, grouped per day in SQL, a scan of its fills).
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.bigledger import build_big_ledger


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fills", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()

    from fastapi.testclient import TestClient

    from ledger.book.keys import create_admin_key
    from ledger.db.engine import get_engine
    from ledger.service.app import create_app

    source = build_big_ledger(args.fills)
    work = Path(tempfile.mkdtemp(prefix="ledger-web-bench-"))
    path = work / "ledger.db"
    shutil.copy(source, path)  # the cached ledger stays as built: the key is written into a copy
    url = f"sqlite:///{path}"
    key_id, secret = create_admin_key(get_engine(url))
    client = TestClient(create_app(url))
    signed_in = client.post("/ui/login", data={"key_id": key_id, "secret_key": secret}, follow_redirects=False)
    assert signed_in.status_code == 303, signed_in.text

    next_link = re.search(r'href="\?([^"]*)" id="next-page"', client.get("/ui/accounts/bench/fills").text)
    orders = client.get("/ui/accounts/bench/orders").text
    order_id = orders.split("/orders/", 2)[1][:32]
    pages = {
        "accounts": "/ui/accounts",
        "account (chart, positions, daily P&L, runs)": "/ui/accounts/bench",
        "account, chart of the last week": "/ui/accounts/bench?range=1W",
        "account, chart of the last day (every mark)": "/ui/accounts/bench?range=1D",
        f"account without marks ({args.fills - round(args.fills * 0.9):,} fills)": "/ui/accounts/other",
        "fills, newest page": "/ui/accounts/bench/fills",
        "fills, next page": "/ui/accounts/bench/fills?" + (next_link.group(1).replace("&amp;", "&") if next_link else ""),
        "fills of one symbol": "/ui/accounts/bench/fills?symbol=SYM07",
        "fills of one side and one day": "/ui/accounts/bench/fills?side=SELL&since=2021-06-01T00:00&until=2021-06-02T00:00",
        "orders, newest page": "/ui/accounts/bench/orders",
        "orders, status open": "/ui/accounts/bench/orders?status=open",
        "one order": f"/ui/accounts/bench/orders/{order_id}",
        "live version poll": "/ui/accounts/bench/version",
    }
    print(f"ledger: {args.fills:,} fills ({source}); median of {args.reps} renders per page\n")
    print("| page | median ms | max ms |\n|---|---:|---:|")
    for name, target in pages.items():
        times = []
        for _ in range(args.reps):
            started = time.perf_counter()
            response = client.get(target)
            times.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (target, response.status_code, response.text[:300])
        print(f"| {name} | {statistics.median(times):.1f} | {max(times):.1f} |")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
