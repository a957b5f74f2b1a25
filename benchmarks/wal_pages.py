"""WAL pages one durable market order writes, per B-tree: ``python -m benchmarks.wal_pages [--drop INDEX ...]``.

A fresh SQLite ledger takes ``--orders`` market orders (BUY/SELL round trips over four symbols, as the market
figure of ``benchmarks.run``) with automatic checkpoints off, so every page a commit writes stays in the WAL; each
WAL frame is then attributed to the table or index owning its page (``dbstat``). ``--drop`` removes secondary
indexes first (or runs a statement, when it contains a space), to price what each one costs per order.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import sqlite3
import struct
import tempfile
import time
from pathlib import Path

from sqlalchemy import event

SYMBOLS = ("AAPL", "MSFT", "NVDA", "AMZN")
WAL_HEADER, FRAME_HEADER = 32, 24


def open_broker(url: str):
    from ledger.brokers.paper import PaperBroker

    broker = PaperBroker(db_url=url, initial_cash=100_000_000, slippage_bps=5, fee_bps=1)
    for i, symbol in enumerate(SYMBOLS):
        broker.set_quote(symbol, 100.0 + 10 * i, 100.05 + 10 * i)
    return broker


def measure(orders: int, drops: list[str], directory: Path) -> dict:
    from ledger.db.engine import dispose_engines, get_engine

    path = directory / "ledger.db"
    url = f"sqlite:///{path}"
    open_broker(url).close()
    dispose_engines()
    with sqlite3.connect(path) as db:
        for drop in drops:
            db.execute(drop if " " in drop else f'DROP INDEX "{drop}"')
    event.listen(get_engine(url), "connect",
                 lambda connection, _record: connection.execute("PRAGMA wal_autocheckpoint = 0"))
    broker = open_broker(url)
    broker.submit_order("MSFT", "BUY", 10)  # the run's row and the first position rows are written before timing
    broker.submit_order("MSFT", "SELL", 10)
    wal = Path(f"{path}-wal")
    start = wal.stat().st_size
    started = time.perf_counter()
    for i in range(orders):
        broker.submit_order(SYMBOLS[(i // 2) % len(SYMBOLS)], "BUY" if i % 2 == 0 else "SELL", 10)
    seconds = time.perf_counter() - started
    frames = wal.read_bytes()
    assert broker.verify() == []
    broker.close()
    dispose_engines()
    with sqlite3.connect(path) as db:
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        owner = dict(db.execute("SELECT pageno, name FROM dbstat"))
    by_btree: collections.Counter[str] = collections.Counter()
    offset = max(start, WAL_HEADER)
    while offset + FRAME_HEADER + page_size <= len(frames):
        (page,) = struct.unpack(">I", frames[offset:offset + 4])
        by_btree[owner.get(page, "(database header)" if page == 1 else "(other)")] += 1
        offset += FRAME_HEADER + page_size
    total = sum(by_btree.values())
    return {"pages": total / orders, "kb": total * (page_size + FRAME_HEADER) / orders / 1024,
            "us": seconds / orders * 1e6, "by_btree": {name: n / orders for name, n in by_btree.most_common()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=500)
    parser.add_argument("--drop", nargs="*", default=[], help="secondary indexes to drop (or SQL statements)")
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="ledger-wal-"))
    try:
        result = measure(args.orders, args.drop, directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    print(f"{result['pages']:.2f} WAL pages ({result['kb']:.1f} KB) and {result['us']:,.0f} us per market order"
          f" ({args.orders} orders{', dropped: ' + ', '.join(args.drop) if args.drop else ''})")
    for name, pages in result["by_btree"].items():
        print(f"  {pages:5.2f}  {name}")


if __name__ == "__main__":
    main()
