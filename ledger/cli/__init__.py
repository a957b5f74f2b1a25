"""The ``paper-ledger`` command line: a thin layer that parses, calls the library, and prints.

Commands (``paper-ledger COMMAND --help`` documents each; every one takes ``--db URL``):

- ``replay``: the main job, a strategy trading bars in market time; resumable after a kill.
- ``db upgrade|current|check|backup``: the schema (Alembic) and consistent SQLite backups.
- ``accounts``, ``account create|show|reset``: paper accounts.
- ``order``, ``orders``, ``cancel``; ``quote set|fetch``: trading by hand.
- ``fills``, ``export``, ``runs``, ``sql``, ``verify``, ``report``: audit.
"""

from __future__ import annotations

import click

from ledger.cli import audit, db, replay_command, trading
from ledger.cli.common import LedgerGroup


@click.group(cls=LedgerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="paper-ledger", prog_name="paper-ledger")
def cli() -> None:
    """paper-ledger: a paper-trading broker whose whole state lives in a SQL ledger (SQLite or PostgreSQL).

    Start with `paper-ledger replay`: it runs an example strategy offline on the packaged synthetic sample
    and can be killed and restarted at any point. Quotes, orders and positions belong to an account;
    commands that change an account need it to exist (`paper-ledger account create NAME --cash N`).
    """


for command in (
    replay_command.replay,
    db.db,
    *trading.COMMANDS,
    *audit.COMMANDS,
):
    cli.add_command(command)


def main() -> None:
    """Console-script entry point (``paper-ledger``)."""
    cli.main(prog_name="paper-ledger")
