"""The ``paper-ledger`` command line: a thin layer that parses, calls the library, and prints.

Commands (``paper-ledger COMMAND --help`` documents each; every one takes ``--db URL``):

- ``replay``: the main job, a strategy trading bars in market time; resumable after a kill.
- ``db upgrade|current|check|backup``: the schema (Alembic) and consistent SQLite backups.
- ``accounts``, ``account create|show|reset``: paper accounts.
- ``order``, ``orders``, ``cancel``, ``replace``, ``close``, ``expire``, ``activity``; ``quote set|fetch|list``:
  trading by hand.
- ``fills``, ``export``, ``runs``, ``sql``, ``verify``, ``report``: audit.
- ``serve``, ``keys create|list|revoke``: the Alpaca-compatible HTTP service and its API keys.

Start-up: a command's module is imported only when that command runs, so ``paper-ledger --help`` loads
neither SQLAlchemy nor Alembic, and ``paper-ledger order`` not the audit, replay or pandas code.
"""

from __future__ import annotations

import importlib

import click

from ledger.cli.common import LedgerGroup

# name -> (module, attribute, the first line of its help, which `paper-ledger --help` lists). The line is
# written here so that listing the commands imports none of them; a test checks it matches each command's own.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "replay": ("ledger.cli.replay_command", "replay",
        "Replay daily bars as quotes, in market time, to an example strategy trading a paper account."),
    "sweep": ("ledger.cli.sweep_command", "sweep",
        "Replay one strategy over a grid of its parameters, one account and one process per combination."),
    "db": ("ledger.cli.db", "db",
        "Schema migrations (Alembic) and backups of the ledger database."),
    "accounts": ("ledger.cli.trading", "accounts_command",
        "List the accounts: epoch, cash, equity (positions at the mid of their last quote), open positions."),
    "account": ("ledger.cli.trading", "account",
        "Create, inspect and reset paper accounts."),
    "order": ("ledger.cli.trading", "order",
        "Submit an order on account NAME: SIDE (buy/sell) QTY of SYMBOL, at market or --limit PX."),
    "orders": ("ledger.cli.trading", "orders",
        "List the orders of account NAME (current epoch), oldest first."),
    "cancel": ("ledger.cli.trading", "cancel",
        "Cancel the resting order ORDER_ID of account NAME, releasing the cash or shares it reserved."),
    "replace": ("ledger.cli.trading", "replace",
        "Replace the open order ORDER_ID of account NAME atomically (the old one becomes `replaced`)."),
    "close": ("ledger.cli.trading", "close",
        "Close account NAME's position in SYMBOL (or --all) with market orders."),
    "expire": ("ledger.cli.trading", "expire",
        "Expire account NAME's open orders whose time is up (day orders past their session's close), now."),
    "quote": ("ledger.cli.trading", "quote",
        "Store quotes (per account) by hand or from the market-data provider."),
    "activity": ("ledger.cli.trading", "activity",
        "Account NAME's cash activity (current epoch) in time order, with the cash balance after each line."),
    "fills": ("ledger.cli.audit", "fills",
        "List the fills of account NAME (current epoch), oldest first."),
    "export": ("ledger.cli.audit", "export",
        "Write account NAME's fills (every epoch) as daily YYYY-MM-DD.jsonl files in the seed's log format."),
    "runs": ("ledger.cli.audit", "runs",
        "List the runs (trading sessions, one per process or CLI command) of account NAME."),
    "sql": ("ledger.cli.audit", "sql",
        'Run one read-only SQL statement, such as "SELECT * FROM v_fills", and print its rows.'),
    "verify": ("ledger.cli.audit", "verify",
        "Check the ledger's invariants (for account NAME, or every account): exit 0 when all hold."),
    "report": ("ledger.cli.audit", "report",
        "Performance of account NAME (current epoch): equity, return, drawdown, fees, per-symbol totals."),
    "serve": ("ledger.cli.service", "serve",
        "Serve the ledger over HTTP as Alpaca's Trading API v2 (alpaca-py runs against it unmodified)."),
    "keys": ("ledger.cli.service", "keys",
        "Create, list and revoke the API keys clients of `paper-ledger serve` authenticate with."),
}


class LazyLedgerGroup(LedgerGroup):
    """The top-level group: commands listed from :data:`COMMANDS`, each module imported when its command runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module, attribute, _ = COMMANDS[cmd_name]
        command: click.Command = getattr(importlib.import_module(module), attribute)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        limit = formatter.width - 6 - max(len(name) for name in COMMANDS)  # as click.Group lays it out
        rows = [(name, click.Command(name, help=first_line).get_short_help_str(limit))
                for name, (_, _, first_line) in sorted(COMMANDS.items())]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyLedgerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="paper-ledger", prog_name="paper-ledger")
def cli() -> None:
    """paper-ledger: a paper-trading broker whose whole state lives in a SQL ledger (SQLite or PostgreSQL).

    Start with `paper-ledger replay`: it runs an example strategy offline on the packaged synthetic sample
    and can be killed and restarted at any point. Quotes, orders and positions belong to an account;
    commands that change an account need it to exist (`paper-ledger account create NAME --cash N`).
    """


def main() -> None:
    """Console-script entry point (``paper-ledger``)."""
    cli.main(prog_name="paper-ledger")
