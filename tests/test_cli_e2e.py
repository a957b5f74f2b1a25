"""The installed `paper-ledger` console script end to end, each command a new process: trade, restart, audit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ledger_problems

ROOT = Path(__file__).resolve().parents[1]
CONSOLE_SCRIPT = Path(sys.executable).with_name("paper-ledger")


def paper_ledger(db_url: str, *args: str, ok: bool = True, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the console script in a new process (any working directory: it must not matter)."""
    completed = subprocess.run(
        [str(CONSOLE_SCRIPT), *args, "--db", db_url], capture_output=True, text=True, timeout=120, cwd=cwd,
    )
    if ok:
        assert completed.returncode == 0, completed.stderr
    return completed


def order_id(output: str) -> str:
    return output.split("order_id=")[1].split()[0]


def test_trade_restart_audit_verify_and_export_in_separate_processes(db_url, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    paper_ledger(db_url, "account", "create", "e2e", "--cash", "25000", cwd=elsewhere)
    paper_ledger(db_url, "quote", "set", "SPY", "--bid", "470", "--ask", "470.20", "--account", "e2e")
    bought = paper_ledger(db_url, "order", "e2e", "BUY", "SPY", "20", "--client-order-id", "day1-spy").stdout
    assert bought.startswith("filled: BUY 20 SPY @ 470.4351")  # 470.20 ask + 5 bps
    resting = order_id(paper_ledger(db_url, "order", "e2e", "buy", "SPY", "10", "--limit", "460").stdout)

    # every command is a new process: the state lives in the ledger only
    orders = paper_ledger(db_url, "orders", "e2e").stdout
    assert order_id(bought) in orders and resting in orders and "day1-spy" in orders
    replayed = paper_ledger(db_url, "order", "e2e", "BUY", "SPY", "20", "--client-order-id", "day1-spy").stdout
    assert order_id(replayed) == order_id(bought) and "nothing new was placed" in replayed
    crossed = paper_ledger(db_url, "quote", "set", "SPY", "--bid", "459", "--ask", "459.5", "-a", "e2e").stdout
    assert f"order_id={resting}" in crossed

    audit = paper_ledger(
        db_url, "sql", "--format", "json",
        "SELECT o.client_order_id, f.side, f.qty_exact, f.price_exact, f.fee_exact "
        "FROM v_fills f JOIN v_orders o ON o.order_id = f.order_id WHERE f.account = 'e2e' ORDER BY f.fill_id",
    ).stdout
    assert [(r["client_order_id"], r["side"], r["qty_exact"], r["price_exact"]) for r in json.loads(audit)] == [
        ("day1-spy", "BUY", "20.000000", "470.435100"),
        (None, "BUY", "10.000000", "459.729750"),  # 459.5 ask + 5 bps, under the 460 limit
    ]
    assert "ok: every invariant holds" in paper_ledger(db_url, "verify").stdout
    shown = paper_ledger(db_url, "account", "show", "e2e").stdout
    assert "SPY" in shown and "30" in shown

    out = tmp_path / "export"
    paper_ledger(db_url, "export", "e2e", "--out", str(out))
    lines = [json.loads(line) for path in sorted(out.glob("*.jsonl")) for line in path.read_text().splitlines()]
    assert [(line["side"], line["qty"], line["fill_price"]) for line in lines] == [
        ("BUY", 20.0, 470.4351), ("BUY", 10.0, 459.72975),
    ]
    assert ledger_problems(db_url) == []


BAD_INPUT = [
    (("account", "show", "NOPE"), "no such account 'NOPE'"),
    (("order", "e2e", "BUY", "SPY", "ten"), "not a finite number"),
    (("order", "e2e", "BUY", "SPY", "5"), "No quote available for SPY"),
    (("sql", "DELETE FROM accounts"), "read-only"),
    (("replay", "--strategy", "astrology"), "astrology"),
]


def test_bad_input_exits_nonzero_with_one_line_and_no_traceback(db_url):
    paper_ledger(db_url, "account", "create", "e2e", "--cash", "1000")
    for args, needle in BAD_INPUT:
        failed = paper_ledger(db_url, *args, ok=False)
        assert failed.returncode != 0, args
        assert "Traceback" not in failed.stderr + failed.stdout
        [line] = failed.stderr.strip().splitlines()
        assert line.startswith("Error: ") and needle in line
    accounts = json.loads(paper_ledger(db_url, "sql", "SELECT name FROM accounts", "--format", "json").stdout)
    assert accounts == [{"name": "e2e"}]  # nothing created, nothing deleted


@pytest.mark.engines("sqlite")
def test_backup_taken_while_a_replay_trades_is_a_consistent_ledger(db_url, tmp_path):
    replay = subprocess.Popen(
        [str(CONSOLE_SCRIPT), "replay", "--db", db_url, "--verbose"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        assert replay.stdout is not None
        for line in replay.stdout:
            if line.startswith("bar 60/"):  # trading has begun; the replay keeps writing during the backup
                break
        copy = tmp_path / "during.db"
        paper_ledger(db_url, "db", "backup", str(copy))
    finally:
        os.kill(replay.pid, signal.SIGKILL)
        replay.wait(timeout=60)
    copied = f"sqlite:///{copy}"
    assert "ok: every invariant holds" in paper_ledger(copied, "verify").stdout
    fills = json.loads(paper_ledger(copied, "sql", "SELECT COUNT(*) AS n FROM fills", "--format", "json").stdout)
    assert fills[0]["n"] > 0
