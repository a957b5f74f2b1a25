"""State survives a restart: a second, real Python process sees and continues what the first one did."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ledger.brokers.paper import PaperBroker

ROOT = Path(__file__).resolve().parents[1]


def run_child(db_url: str, phase: str) -> dict:
    completed = subprocess.run(
        [sys.executable, "-m", "tests.workers.restart_child", db_url, phase],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_second_process_resumes_account_orders_and_quotes(db_url):
    first = run_child(db_url, "first")
    second = run_child(db_url, "second")
    # the resting limit placed by process 1 filled in process 2 when the quote crossed it
    assert second["crossed"] == [first["resting"]]
    # the resubmitted client_order_id returned process 1's order instead of buying again
    assert second["replayed"] == first["filled"]
    assert second["positions"] == {"SPY": 30.0}
    assert second["problems"] == []

    with PaperBroker(db_url=db_url, account="restart") as broker:
        assert broker.get_positions() == {"SPY": 30.0}
        assert broker.get_cash() == second["cash"]
        assert len(broker.get_fills()) == 2
        assert broker.get_order(first["filled"])["run_id"] == first["run"]
        assert broker.verify() == []
