"""Hostile input through the command line: each is one 'Error: ...' line, a non-zero exit, and changes nothing.

(NUL cannot be passed in argv at all, so the NUL cases live in the library's tests/test_hostile_input.py.)
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from ledger.cli import cli
from tests.conftest import table_snapshot

LONG = "X" * 10_000
SQLISH = "AAPL'; DROP TABLE fills; --"

HOSTILE = [
    ("order", "alice", "buy", "AAPL", "nan"),
    ("order", "alice", "buy", "AAPL", "inf"),
    ("order", "alice", "buy", "AAPL", "-inf"),
    ("order", "alice", "buy", "AAPL", "1e308"),
    ("order", "alice", "buy", "AAPL", "--", "-5"),
    ("order", "alice", "buy", "AAPL", "0"),
    ("order", "alice", "buy", "AAPL", "ten"),
    ("order", "alice", "buy", "AAPL", "0.0000001"),
    ("order", "alice", "buy", "AAPL", "1", "--limit", "nan"),
    ("order", "alice", "buy", "AAPL", "1", "--limit", "-150"),
    ("order", "alice", "buy", "AAPL", "1", "--limit", "0"),
    ("order", "alice", "buy", "AAPL", "1", "--limit", "cheap"),
    ("order", "alice", "buy", "", "1"),
    ("order", "alice", "buy", "   ", "1"),
    ("order", "alice", "buy", LONG, "1"),
    ("order", "alice", "buy", SQLISH, "1"),
    ("order", "alice", "buy", "ÄPFEL", "1"),
    ("order", "alice", "buy", "株式", "1"),
    ("order", "alice", "short", "AAPL", "1"),
    ("order", "alice", "", "AAPL", "1"),
    ("order", "alice", "buy", "AAPL", "1", "--client-order-id", "has space"),
    ("order", "alice", "buy", "AAPL", "1", "--client-order-id", LONG),
    ("order", "nobody", "buy", "AAPL", "1"),
    ("order", LONG, "buy", "AAPL", "1"),
    ("cancel", "alice", "not-an-order"),
    ("cancel", "alice", LONG),
    ("quote", "set", "AAPL", "--bid", "nan", "--ask", "150", "-a", "alice"),
    ("quote", "set", "AAPL", "--bid", "150", "--ask", "inf", "-a", "alice"),
    ("quote", "set", "AAPL", "--bid", "0", "--ask", "150", "-a", "alice"),
    ("quote", "set", "AAPL", "--bid", "151", "--ask", "150", "-a", "alice"),
    ("quote", "set", SQLISH, "--bid", "1", "--ask", "2", "-a", "alice"),
    ("account", "create", "bob", "--cash", "nan"),
    ("account", "create", "bob", "--cash", "-100"),
    ("account", "create", "bob", "--cash", "1e308"),
    ("account", "create", "   ", "--cash", "100"),
    ("account", "create", "alice", "--cash", "100"),
    ("fills", "alice", "--since", "yesterday"),
    ("fills", "alice", "--since", "2024-13-45"),
    ("fills", "alice", "--symbol", SQLISH),
    ("orders", "alice", "--status", "open"),
    ("sql", "UPDATE accounts SET cash_e6 = 0"),
    ("sql", "DELETE FROM fills"),
    ("sql", "DROP TABLE orders"),
    ("sql", "SELECT 1; DELETE FROM accounts"),
]


@pytest.fixture
def alice(db_url: str) -> str:
    runner = CliRunner()
    for args in (
        ("account", "create", "alice", "--cash", "100000"),
        ("quote", "set", "AAPL", "--bid", "150", "--ask", "150.10", "-a", "alice"),
        ("order", "alice", "buy", "AAPL", "10"),
        ("order", "alice", "buy", "AAPL", "5", "--limit", "140"),
    ):
        result = runner.invoke(cli, [*args, "--db", db_url])
        assert result.exit_code == 0, result.output
    return db_url


def test_hostile_cli_input_is_refused_in_one_line_and_changes_nothing(alice: str) -> None:
    before = table_snapshot(alice)
    runner = CliRunner()
    problems = []
    for args in HOSTILE:
        result = runner.invoke(cli, [*args, "--db", alice])
        lines = result.stderr.strip().splitlines()
        shown = " ".join(arg[:20] for arg in args)
        if result.exit_code == 0:
            problems.append(f"{shown}: exit 0")
        elif not isinstance(result.exception, SystemExit):
            problems.append(f"{shown}: crashed with {result.exception!r}")
        elif len(lines) != 1 or not lines[0].startswith("Error: ") or "Traceback" in result.output:
            problems.append(f"{shown}: stderr was {result.stderr[:300]!r}")
        elif len(lines[0]) > 400:
            problems.append(f"{shown}: a {len(lines[0])}-character message")
    assert problems == []
    after = table_snapshot(alice)
    # Rejected orders are recorded for audit (orders + order_events rows); nothing else may change.
    # The account's row may only move its broker clock (clock_at, updated_at): every refused write is stamped.
    balances = [row[:6] for row in before["accounts"]]  # id, name, epoch, initial cash, cash, reserved cash
    assert [row[:6] for row in after["accounts"]] == balances
    changed = {name for name in before if before[name] != after[name]}
    assert changed <= {"orders", "order_events", "runs", "accounts"}, changed
    new_orders = [row for row in after["orders"] if row not in before["orders"]]
    assert all("rejected" in row for row in new_orders), new_orders
    assert len(HOSTILE) == 44
