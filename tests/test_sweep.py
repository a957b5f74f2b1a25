"""`paper-ledger sweep`: a replay per parameter set in parallel processes on one ledger (SQLite and PostgreSQL).

Each job's account must end exactly where a replay of that parameter set on its own ends; a sweep run again
writes nothing; a bad grid is refused before anything runs."""

from __future__ import annotations

import subprocess
import sys

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from ledger.book.store import runs
from ledger.cli import cli
from ledger.db.engine import dispose_engines, get_engine
from ledger.replay import load_bar_file, run_replay, start_replay
from ledger.strategies import get_strategy, strategy_spec
from tests.conftest import ledger_problems
from tests.test_replay import bars_file, ledger_state  # noqa: F401 - bars_file: the fixture


def sweep(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ledger.cli", "sweep", "--db", db_url, *args],
                          capture_output=True, text=True, timeout=300)


def test_each_job_ends_as_its_own_replay_and_a_second_sweep_writes_nothing(db_url, bars_file):  # noqa: F811
    args = ("--grid", "fast=3,5", "--grid", "slow=12", "--data", str(bars_file), "--cash", "50000", "-j", "2")
    first = sweep(db_url, *args)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "sweep-fast3-slow12: done" in first.stdout and "sweep-fast5-slow12: done" in first.stdout

    data = load_bar_file(bars_file)
    for fast in (3, 5):
        spec = strategy_spec("sma-crossover", {"fast": fast, "slow": 12})
        with start_replay(data, account=f"alone-{fast}", strategy=spec, db_url=db_url, initial_cash=50_000) as job:
            run_replay(job)
        swept, alone = ledger_state(db_url, f"sweep-fast{fast}-slow12"), ledger_state(db_url, f"alone-{fast}")
        assert swept["fills"], "the job traded"
        for part in ("cash", "equity", "positions", "fills"):
            assert swept[part] == alone[part], f"fast={fast}: {part}"
    assert ledger_state(db_url, "sweep-fast3-slow12")["fills"] != ledger_state(db_url, "sweep-fast5-slow12")["fills"]

    with get_engine(db_url).connect() as conn:
        runs_before = conn.execute(select(func.count()).select_from(runs)).scalar_one()
    dispose_engines()
    again = sweep(db_url, *args)
    assert again.returncode == 0, again.stdout + again.stderr
    with get_engine(db_url).connect() as conn:
        assert conn.execute(select(func.count()).select_from(runs)).scalar_one() == runs_before
    dispose_engines()
    assert ledger_problems(db_url) == []


@pytest.mark.parametrize(("grid", "message"), [
    (("--grid", "fast=3,40", "--grid", "slow=12"), "0 < fast < slow"),
    (("--grid", "speed=3"), "takes fast, slow"),
    (("--grid", "fast"), "NAME=V1,V2"),
])
def test_a_bad_grid_is_refused_before_any_job_runs(tmp_path, grid, message):
    db_url = f"sqlite:///{tmp_path / 'sweep.db'}"
    refused = CliRunner().invoke(cli, ["sweep", "--db", db_url, *grid])
    assert refused.exit_code == 2 and message in refused.output, refused.output
    assert not (tmp_path / "sweep.db").exists(), "nothing was written"


def test_strategy_specs_carry_checked_parameters():
    spec = strategy_spec("sma-crossover", {"slow": "40", "fast": 5})
    assert spec == "sma-crossover:fast=5,slow=40"  # sorted, canonical: the job key of those parameters
    strategy = get_strategy(spec)
    assert (strategy.fast, strategy.slow) == (5, 40)
    assert strategy_spec("sma-crossover") == "sma-crossover"  # no parameters: the job keys of before
    for name, params, message in (("sma-crossover", {"fast": "2.5"}, "whole number"),
                                  ("equal-weight", {"fast": 1}, "takes no parameters"),
                                  ("nope", {}, "unknown strategy")):
        with pytest.raises(ValueError, match=message):
            strategy_spec(name, params)
