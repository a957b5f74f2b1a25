"""Load on ``paper-ledger serve``: K concurrent HTTP clients x N market orders, against 1, 2 and 4 workers, on SQLite
and PostgreSQL, beside the library's own per-order time measured in the same run.

``python -m benchmarks.service_load [--clients K] [--orders N] [--workers 1,2,4] [--engines sqlite,postgresql]``
(``--smoke``: 2 clients x 5 orders, 1 worker, SQLite: seconds, figures meaningless). Also
``python -m benchmarks.run --only service``.

Each client is a thread with its own ``httpx.Client`` (keep-alive) and its own account and API key, placing
market orders (BUY/SELL round trips of 1 share) with ``POST /v2/orders``; every response must be 200. A warm-up
order per client comes first (a key's first request in a worker pays its scrypt check and opens the account's
broker). Reported per configuration: orders/s over the timed wall time, p50 and p99 of the request latency
(K requests in flight: queueing included), and the HTTP overhead ratio: wall time per order under load
(1 / orders/s) over the library's time per order, where *library* is ``PaperBroker.submit_order`` in this
process on a fresh database of the same engine (the same order mix, one account, one thread); p50 / library
beside it. After each run the ledger must verify
clean and hold every order. The server runs with the default slippage and fee, as the library reference does.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

SYMBOL, BID, ASK = "LOAD", 100.0, 100.05
INITIAL_CASH = 10_000_000


@dataclass(frozen=True)
class LoadSizes:
    clients: int
    orders: int  # per client
    workers: tuple[int, ...]
    engines: tuple[str, ...]


FULL = LoadSizes(clients=4, orders=50, workers=(1, 2, 4), engines=("sqlite", "postgresql"))
SMOKE = LoadSizes(clients=2, orders=5, workers=(1,), engines=("sqlite",))


@dataclass(frozen=True)
class LoadResult:
    orders_per_s: float
    p50: float
    p99: float


def side(index: int) -> str:
    return "BUY" if index % 2 == 0 else "SELL"


def prepare_accounts(db_url: str, count: int) -> list[tuple[str, str]]:
    """``count`` accounts quoted and funded, each with an API key; returns the keys."""
    from ledger.book.keys import create_key
    from ledger.brokers.paper import PaperBroker
    from ledger.db.engine import dispose_engines, get_engine

    keys = []
    for index in range(count):
        name = f"load{index}"
        with PaperBroker(account=name, db_url=db_url, initial_cash=INITIAL_CASH) as broker:
            broker.set_quote(SYMBOL, BID, ASK)
        keys.append(create_key(get_engine(db_url), name))
    dispose_engines()
    return keys


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_server(db_url: str, workers: int, workdir: Path) -> Iterator[str]:
    """``paper-ledger serve`` on a free loopback port until the block ends; yields its base URL."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("LEDGER_")}
    log = open(workdir / f"serve-{port}.log", "wb")  # noqa: SIM115 - the child writes it
    process = subprocess.Popen(
        [sys.executable, "-m", "ledger.cli", "serve", "--port", str(port), "--db", db_url, "--workers", str(workers)],
        cwd=workdir, env=env, stdout=log, stderr=log, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"serve did not start: {(workdir / f'serve-{port}.log').read_text()[-2000:]}")
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def load(url: str, keys: list[tuple[str, str]], orders: int) -> LoadResult:
    """Every client places ``orders`` market orders at once with the others (after one warm-up order each)."""
    latencies: list[list[float]] = [[] for _ in keys]
    failures: list[str] = []
    start = threading.Barrier(len(keys) + 1)

    def client(index: int) -> None:
        key_id, secret = keys[index]
        headers = {"APCA-API-KEY-ID": key_id, "APCA-API-SECRET-KEY": secret}
        with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
            def place(number: int) -> float:
                body = {"symbol": SYMBOL, "qty": "1", "side": side(number).lower(), "type": "market",
                        "time_in_force": "gtc"}
                started = time.perf_counter()
                response = http.post("/v2/orders", json=body)
                spent = time.perf_counter() - started
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text[:200]}")
                return spent

            place(0)  # warm-up round trip, untimed
            place(1)
            start.wait()
            for number in range(orders):
                latencies[index].append(place(number))

    threads = [threading.Thread(target=client, args=(index,)) for index in range(len(keys))]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    if failures:
        raise RuntimeError(f"{len(failures)} orders failed, e.g. {failures[0]}")
    every = sorted(spent for per_client in latencies for spent in per_client)
    return LoadResult(len(every) / wall, statistics.median(every), every[min(len(every) - 1, int(0.99 * len(every)))])


def library_per_order(db_url: str, count: int) -> float:
    """Seconds per ``PaperBroker.submit_order`` in this process, same mix, fresh ledger of the same engine."""
    from ledger.brokers.paper import PaperBroker
    from ledger.db.engine import dispose_engines

    with PaperBroker(account="library", db_url=db_url, initial_cash=INITIAL_CASH) as broker:
        broker.set_quote(SYMBOL, BID, ASK)
        broker.submit_order(SYMBOL, "BUY", 1)
        broker.submit_order(SYMBOL, "SELL", 1)
        started = time.perf_counter()
        for number in range(count):
            broker.submit_order(SYMBOL, side(number), 1)
        spent = (time.perf_counter() - started) / count
        assert broker.verify() == []
    dispose_engines()
    return spent


def check_ledger(db_url: str, expected_fills: int) -> None:
    from sqlalchemy import func, select

    from ledger.book.store import fills
    from ledger.book.verify import verify_ledger
    from ledger.db.engine import dispose_engines, get_engine, read_transaction

    with get_engine(db_url).connect() as conn, read_transaction(conn):
        problems = verify_ledger(conn)
        count = conn.execute(select(func.count()).select_from(fills)).scalar_one()
    dispose_engines()
    assert problems == [], f"the load left an inconsistent ledger: {problems[:3]}"
    assert count == expected_fills, f"{count} fills, expected {expected_fills}"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.2f} ms"


@contextmanager
def database_maker(engine: str, workdir: Path) -> Iterator[Callable[[str], str] | None]:
    """Yields ``make(name) -> URL`` of a fresh database on ``engine``; None when PostgreSQL is not installed."""
    if engine == "sqlite":
        yield lambda name: f"sqlite:///{workdir / (name + '.db')}"
        return
    from benchmarks.pg import BenchPostgres

    server = BenchPostgres.start_if_available()
    if server is None:
        yield None
        return
    try:
        yield lambda _name: server.url(server.create_database())
    finally:
        server.stop()


def bench_service(sizes: LoadSizes, add: Callable[..., None]) -> None:
    """Measure every configuration of ``sizes``; ``add(figure, ours, reference, ratio, target, met)`` reports
    a row (``benchmarks.run.Report.add``)."""
    total = sizes.clients * sizes.orders
    workdir = Path(tempfile.mkdtemp(prefix="ledger-bench-service-"))
    try:
        for engine in sizes.engines:
            with database_maker(engine, workdir) as make:
                if make is None:
                    print(f"  {engine}: no PostgreSQL binaries (initdb, pg_ctl): skipped", flush=True)
                    add(f"service load, {engine}", "n/a", "no PostgreSQL binaries", "-", "reported", None)
                    continue
                library = library_per_order(make("library"), total)
                print(f"  {engine}: library submit_order {ms(library)}/order ({total} orders)", flush=True)
                for workers in sizes.workers:
                    db_url = make(f"w{workers}")
                    keys = prepare_accounts(db_url, sizes.clients)
                    with running_server(db_url, workers, workdir) as url:
                        result = load(url, keys, sizes.orders)
                    check_ledger(db_url, expected_fills=total + 2 * sizes.clients)
                    print(f"  {engine}, {workers} worker(s): {result.orders_per_s:,.0f} orders/s, "
                          f"p50 {ms(result.p50)}, p99 {ms(result.p99)}", flush=True)
                    add(f"service load, {engine}, {workers} worker(s), {sizes.clients} clients x {sizes.orders} orders",
                        f"{result.orders_per_s:,.0f} orders/s, p50 {ms(result.p50)}, p99 {ms(result.p99)}",
                        f"library submit_order {ms(library)} ({1 / library:,.0f} orders/s, 1 thread)",
                        f"{1 / result.orders_per_s / library:.1f}x library per order (p50 {result.p50 / library:.0f}x)",
                        "reported", None)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="2 clients x 5 orders, 1 worker, SQLite")
    parser.add_argument("--clients", type=int, default=FULL.clients)
    parser.add_argument("--orders", type=int, default=FULL.orders, help="orders per client")
    parser.add_argument("--workers", default=",".join(map(str, FULL.workers)))
    parser.add_argument("--engines", default=",".join(FULL.engines))
    args = parser.parse_args(argv)
    sizes = SMOKE if args.smoke else LoadSizes(
        args.clients, args.orders, tuple(int(n) for n in args.workers.split(",")),
        tuple(name.strip() for name in args.engines.split(",") if name.strip()),
    )
    print(f"service load: {sizes}", flush=True)
    rows: list[tuple[Any, ...]] = []
    bench_service(sizes, lambda *row: rows.append(row))
    print("\n| configuration | ours | library (same run) | HTTP overhead |\n| --- | --- | --- | --- |")
    for figure, ours, reference, ratio, *_ in rows:
        print(f"| {figure} | {ours} | {reference} | {ratio} |")
    return 0


if __name__ == "__main__":
    os.environ.pop("LEDGER_DATABASE_URL", None)
    sys.exit(main())
