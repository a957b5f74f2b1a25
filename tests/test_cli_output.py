"""What the listing commands write: tables (to stdout or a file) with bounded cells, valid JSON, plain CSV."""

from __future__ import annotations

import csv
import io
import json

import pytest

from ledger.cli.common import TABLE_CELL_LIMIT
from tests import test_cli


def strict_json(text: str) -> object:
    """json.loads that refuses the non-JSON constants Python would otherwise accept (Infinity, NaN)."""

    def refuse(name: str) -> None:
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


run = test_cli.run  # the CLI on this test's ledger (tests/test_cli.py's fixture)


@pytest.fixture
def traded(run):
    run("account", "create", "alice", "--cash", "100000")
    run("quote", "set", "AAPL", "--bid", "150", "--ask", "150.10", "--account", "alice")
    run("order", "alice", "buy", "AAPL", "10")


def test_fills_as_a_table_to_a_file_writes_the_table_text(run, traded, tmp_path):
    out = tmp_path / "fills.txt"
    result = run("fills", "alice", "--format", "table", "--out", str(out))
    assert f"wrote 1 fills to {out}" in result.stdout
    written = out.read_text()
    assert "150.17505" in written and "1,501.7505" in written and "realized P&L" in written


@pytest.mark.engines("sqlite")
def test_sql_table_shows_a_blob_as_its_size_and_cuts_long_text_with_a_footnote(run, traded):
    shown = run("sql", "SELECT randomblob(100000) AS blob, printf('%.*c', 5000, 'q') AS long_text, 'short' AS s")
    assert "<blob 100,000 bytes>" in shown.stdout
    assert shown.stdout.count("q") == TABLE_CELL_LIMIT and "…" in shown.stdout  # (a wide cell folds over lines)
    assert "2 cells shortened" in shown.stdout and "--format csv or json" in shown.stdout
    plain = run("sql", "SELECT 'short' AS s")
    assert "shortened" not in plain.stdout


def test_sql_json_is_valid_json_for_blobs_and_non_finite_numbers(run, traded, engine_name):
    if engine_name == "sqlite":
        statement = "SELECT 1e999 AS up, -1e999 AS down, x'00ff' AS blob, 0.5 AS half"
    else:
        statement = ("SELECT 'Infinity'::float8 AS up, '-Infinity'::float8 AS down, '\\x00ff'::bytea AS blob, "
                     "0.5 AS half, 'NaN'::float8 AS nan")
    [record] = strict_json(run("sql", statement, "--format", "json").stdout)
    assert (record["up"], record["down"], record["blob"], record["half"]) == ("Infinity", "-Infinity", "00ff", 0.5)
    if engine_name != "sqlite":
        assert record["nan"] == "NaN"


def test_sql_csv_writes_blobs_as_hex_not_python_reprs(run, traded, engine_name):
    blob = "x'00ff10'" if engine_name == "sqlite" else "'\\x00ff10'::bytea"
    output = run("sql", f"SELECT {blob} AS blob", "--format", "csv").stdout
    assert output == "blob\n00ff10\n"


def test_runs_in_every_format_to_stdout_and_to_a_file(run, traded, tmp_path):
    table = run("runs", "alice").stdout
    # Runs are written with their first order, fill or cash movement: account create and quote set leave none.
    assert table.count("\n│ ") == 1
    rows = list(csv.DictReader(io.StringIO(run("runs", "alice", "--format", "csv").stdout)))
    assert len(rows) == 1 and [row["fill_count"] for row in rows] == ["1"]
    assert rows[0]["started_at"] and rows[0]["ended_at"]
    records = strict_json(run("runs", "alice", "--format", "json").stdout)
    assert [record["order_count"] for record in records] == [1]
    assert float(records[0]["slippage_bps"]) == float(rows[0]["slippage_bps"])
    out = tmp_path / "runs.json"
    assert f"wrote 1 runs to {out}" in run("runs", "alice", "--format", "json", "--out", str(out)).stdout
    assert strict_json(out.read_text()) == records


@pytest.mark.parametrize("args", [
    ("fills", "alice", "--out", ""),
    ("fills", "alice", "--format", "csv", "--out", "  "),
    ("runs", "alice", "--out", ""),
    ("export", "alice", "--out", ""),
    ("report", "alice", "--plot", ""),
    ("db", "backup", ""),
], ids=["fills", "fills-blank", "runs", "export", "report-plot", "db-backup"])
def test_an_empty_path_is_refused_and_nothing_is_written(run, traded, tmp_path, args):
    before = sorted(path.name for path in tmp_path.iterdir())
    result = run(*args, ok=False)
    assert result.exit_code == 2 and "an empty path names no file" in result.stderr, result.output
    assert sorted(path.name for path in tmp_path.iterdir()) == before
