"""Start-up cost of the command line, checked structurally (never by timing): what `paper-ledger` imports."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import click

from ledger.cli import COMMANDS, cli
from ledger.cli import audit, service, trading

HEAVY = ("pandas", "yfinance", "matplotlib", "numpy")


def modules_loaded_by(code: str) -> set[str]:
    """Top-level packages in sys.modules after running ``code`` in a fresh interpreter."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted({{name.split('.')[0] for name in sys.modules}})))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120)
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_importing_the_cli_and_its_help_load_no_data_or_plotting_library():
    for code in (
        "import ledger.cli",
        "from ledger.cli import cli\ntry:\n    cli.main(['--help'], prog_name='paper-ledger')\nexcept SystemExit:\n    pass",
    ):
        loaded = modules_loaded_by(code)
        assert not loaded & set(HEAVY), (code, loaded & set(HEAVY))
        assert not loaded & {"sqlalchemy", "alembic", "rich"}, (code, loaded & {"sqlalchemy", "alembic", "rich"})


def test_a_trading_command_loads_no_data_or_plotting_library():
    loaded = modules_loaded_by(
        "from ledger.cli import cli\ntry:\n    cli.main(['order', '--help'], prog_name='paper-ledger')\n"
        "except SystemExit:\n    pass"
    )
    assert not loaded & {*HEAVY, "alembic"}, loaded & {*HEAVY, "alembic"}


def test_the_lazy_command_table_lists_every_command_with_its_own_first_help_line():
    expected = {"replay", "sweep", "db", *(command.name for command in (*trading.COMMANDS, *audit.COMMANDS, *service.COMMANDS))}
    assert set(COMMANDS) == expected
    context = click.Context(cli)
    for name, (module, attribute, first_line) in COMMANDS.items():
        command = getattr(importlib.import_module(module), attribute)
        assert command.name == name and cli.get_command(context, name) is command
        assert command.get_short_help_str(limit=1000) == first_line, name


def test_the_head_revision_read_without_alembic_is_alembics_head():
    from alembic.script import ScriptDirectory

    from ledger.db.migrate import alembic_config, head_revision

    assert [head_revision()] == ScriptDirectory.from_config(alembic_config()).get_heads()
