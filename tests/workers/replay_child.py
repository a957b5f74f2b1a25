"""Child process for the replay tests: ``paper-ledger replay`` itself, pausing after each bar's line.

Arguments are the CLI's, optionally preceded by ``--start-together`` (report ``ready`` as JSON and wait for the
parent's ``go``, see tests/workers/harness.py). After printing a ``bar N/M ...`` line (``--verbose``) the child
waits for a line on stdin before going on, so the parent decides how far it gets: it can SIGKILL the child
while it waits (right after bar N committed), or answer and then kill it (somewhere inside the next bar).
Without the pause a parent slow to read could find the child done. The test-only ``every-bar`` strategy is
registered.
"""

from __future__ import annotations

import sys

import click

from tests.workers.every_bar_strategy import register
from tests.workers.protocol import wait_for_go

_echo = click.echo


def echo_then_wait(message: object = None, *args: object, **kwargs: object) -> None:
    _echo(message, *args, **kwargs)  # type: ignore[arg-type]
    if isinstance(message, str) and message.startswith("bar "):
        sys.stdin.readline()


if __name__ == "__main__":
    register()
    from ledger.cli import main  # after register(): the --strategy choices are read at import

    if sys.argv[1:2] == ["--start-together"]:
        del sys.argv[1]
        wait_for_go()
    click.echo = echo_then_wait  # type: ignore[assignment]
    sys.argv[0] = "paper-ledger"
    main()
