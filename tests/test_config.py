"""Configuration precedence: explicit argument > environment > config file > DEFAULT_CONFIG."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.config import get_cfg
from ledger.constants import DEFAULT_CONFIG
from ledger.db.engine import resolve_db_url
from ledger.exceptions import ConfigError


def write_config(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_default_config_is_the_last_resort():
    assert get_cfg("slippage_bps") == DEFAULT_CONFIG["slippage_bps"]
    assert get_cfg("no_such_key", default="fallback") == "fallback"


def test_config_file_in_working_directory_beats_defaults(tmp_path):
    write_config(tmp_path / "config" / "ledger.yaml", "slippage_bps: 9\npaper:\n  fee_bps: 3\n")
    assert get_cfg("slippage_bps") == 9
    assert get_cfg("paper.fee_bps") == 3


def test_ledger_config_env_points_at_another_file(tmp_path, monkeypatch):
    path = write_config(tmp_path / "elsewhere.yaml", "fee_bps: 4\n")
    monkeypatch.setenv("LEDGER_CONFIG", str(path))
    assert get_cfg("fee_bps") == 4
    monkeypatch.setenv("LEDGER_CONFIG", str(tmp_path / "missing.yaml"))
    with pytest.raises(ConfigError, match="not a file"):
        get_cfg("fee_bps")


def test_environment_beats_file_and_explicit_beats_everything(tmp_path, monkeypatch):
    write_config(tmp_path / "config" / "ledger.yaml", "slippage_bps: 9\n")
    monkeypatch.setenv("LEDGER_SLIPPAGE_BPS", "7")
    assert get_cfg("slippage_bps") == 7
    assert get_cfg("slippage_bps", explicit=2) == 2
    assert get_cfg("slippage_bps", explicit=0) == 0  # an explicit 0 is a value, not "unset"


def test_broker_settings_follow_the_precedence(tmp_path, monkeypatch, make_broker):
    write_config(tmp_path / "config" / "ledger.yaml", "slippage_bps: 9\nfee_bps: 0\ninitial_cash: 1234.5\n")
    b = make_broker(slippage_bps=None, fee_bps=None, initial_cash=None, account="cfg")
    assert (b.slippage_bps, b.fee_bps, b.get_cash()) == (9.0, 0.0, 1234.5)
    monkeypatch.setenv("LEDGER_FEE_BPS", "2")
    assert make_broker(slippage_bps=0, fee_bps=None, initial_cash=None, account="cfg").fee_bps == 2.0


def test_bad_config_values_are_clear_errors(tmp_path, make_broker):
    write_config(tmp_path / "config" / "ledger.yaml", "slippage_bps: lots\n")
    with pytest.raises(ValueError, match="slippage_bps must be a number"):
        make_broker(slippage_bps=None)
    with pytest.raises(ValueError, match="between 0 and 10000"):
        make_broker(fee_bps=-1)
    write_config(tmp_path / "config" / "ledger.yaml", "- not\n- a mapping\n")
    with pytest.raises(ConfigError, match="mapping"):
        get_cfg("fee_bps")


def test_database_url_resolution(tmp_path, monkeypatch):
    monkeypatch.delenv("LEDGER_DATABASE_URL")
    assert resolve_db_url() == f"sqlite:///{tmp_path / 'paper_ledger.db'}"
    assert resolve_db_url("data/x.db") == f"sqlite:///{tmp_path / 'data' / 'x.db'}"
    monkeypatch.setenv("LEDGER_DATABASE_URL", "sqlite:////somewhere/else.db")
    assert resolve_db_url() == "sqlite:////somewhere/else.db"
    assert resolve_db_url("sqlite:////explicit.db") == "sqlite:////explicit.db"
