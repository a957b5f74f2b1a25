"""The built wheel carries the migrations: a non-editable install creates and upgrades ledgers from any directory."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )
    [built] = out.glob("paper_ledger-*.whl")
    return built


def test_wheel_contains_the_migrations_and_sample_config(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "ledger/_migrations/env.py" in names
    assert any(name.startswith("ledger/_migrations/versions/0001_") for name in names)


def test_wheel_contains_the_dashboards_templates_and_static_files(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for page in ("base", "login", "account", "orders", "fills", "order"):
        assert f"ledger/web/templates/{page}.html" in names
    for asset in ("dashboard.css", "live.js", "favicon.svg", "README.md"):
        assert f"ledger/web/static/{asset}" in names


def test_installed_wheel_creates_a_ledger_from_another_directory(wheel, tmp_path, db_url):
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
        check=True, capture_output=True, timeout=300,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = (
        "import ledger, sys\n"
        "from ledger.db.migrate import migrations_dir\n"
        f"assert str(migrations_dir()).startswith({str(target)!r}), migrations_dir()\n"
        "from ledger.brokers import PaperBroker\n"
        f"with PaperBroker(db_url={db_url!r}, initial_cash=1000) as b:\n"
        "    b.set_quote('SPY', bid=10, ask=10)\n"
        "    b.submit_order('SPY', 'BUY', 5)\n"
        "    print(b.get_positions(), b.verify())\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], cwd=elsewhere, capture_output=True, text=True, timeout=120,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "{'SPY': 5.0} []"
