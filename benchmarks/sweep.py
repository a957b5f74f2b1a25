"""Parallel accounts: `paper-ledger sweep` of J parameter sets (one replay process per account, one ledger) with
1, 2 and 4 processes at a time, on SQLite and PostgreSQL; wall time and the speed-up over one process.

    python -m benchmarks.sweep [--symbols 20] [--bars 250] [--jobs 4]

Every run replays the same generated bars (benchmarks/replay.write_bars) into a fresh ledger, so each process
count does the same work, and every job must end with exit 0. On SQLite the writers take turns at one lock, so
the speed-up is bounded by how much of a replay is not writing (reading bars, the strategy, building orders);
on PostgreSQL the accounts' transactions run in parallel, bounded by the cores.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

FAST_VALUES = ("3", "4", "5", "6", "7", "8", "9", "10")
PROCESSES = (1, 2, 4)


def run_sweep(db_url: str, bars: Path, jobs: int, processes: int) -> float:
    """Seconds for one `paper-ledger sweep` of ``jobs`` parameter sets with ``processes`` at a time."""
    grid = ",".join(FAST_VALUES[:jobs])
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "ledger.cli", "sweep", "--grid", f"fast={grid}", "--grid", "slow=30", "--data",
         str(bars), "--cash", "1000000", "-j", str(processes), "--db", db_url],
        capture_output=True, text=True, timeout=3600,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0 or done.stdout.count(": done in") != jobs:
        raise RuntimeError(f"sweep failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return seconds


@contextmanager
def engines(workdir: Path) -> Iterator[dict[str, Callable[[str], str] | None]]:
    """name -> a function giving a fresh database URL per label (None: that engine is not available here)."""
    from benchmarks.pg import BenchPostgres

    server = BenchPostgres.start_if_available()
    try:
        yield {
            "sqlite": lambda label: f"sqlite:///{workdir / (label + '.db')}",
            "postgresql": None if server is None else (lambda _label: server.url(server.create_database())),
        }
    finally:
        if server is not None:
            server.stop()


def bench_sweep(symbols: int, bars: int, jobs: int, add: Callable[..., None]) -> None:
    """Add one row per engine and process count to the report (``add(figure, ours, reference, ratio, target,
    met)``): wall time, and the speed-up over one process at a time on the same engine in the same run."""
    from benchmarks.replay import write_bars

    with tempfile.TemporaryDirectory(prefix="ledger-sweep-") as tmp:
        workdir = Path(tmp)
        data = workdir / "bars.csv"
        write_bars(data, symbols, bars)
        with engines(workdir) as available:
            for engine, fresh_url in available.items():
                if fresh_url is None:
                    print(f"  {engine}: not available here (no server binaries)", flush=True)
                    continue
                alone: float | None = None
                for processes in PROCESSES:
                    seconds = run_sweep(fresh_url(f"{engine}-{processes}"), data, jobs, processes)
                    alone = seconds if alone is None else alone
                    speedup = alone / seconds
                    print(f"  {engine}, {jobs} jobs, {processes} at a time: {seconds:.1f} s ({speedup:.2f}x)",
                          flush=True)
                    add(f"sweep of {jobs} replays ({symbols} x {bars} bars), {engine}, {processes} process(es)",
                        f"{seconds:.1f} s", f"1 process: {alone:.1f} s", f"{speedup:.2f}x faster",
                        f"scales with cores ({os.cpu_count()} here)" if engine == "postgresql" else "degrades gracefully",
                        None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=20)
    parser.add_argument("--bars", type=int, default=250)
    parser.add_argument("--jobs", type=int, default=4, choices=range(1, len(FAST_VALUES) + 1))
    args = parser.parse_args(argv)
    rows: list[tuple[Any, ...]] = []
    bench_sweep(args.symbols, args.bars, args.jobs, lambda *row: rows.append(row))
    print("\n| figure | wall time | reference | speed-up | target |\n| --- | --- | --- | --- | --- |")
    for figure, ours, reference, ratio, target, _ in rows:
        print(f"| {figure} | {ours} | {reference} | {ratio} | {target} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
