"""Child process for the replay kill test: ``paper-ledger replay`` itself, pausing after each bar's line.

Arguments are the CLI's. After printing a ``bar N/M ...`` line (``--verbose``) the child waits for a line on
stdin before going on, so the parent decides how far it gets: it answers and then SIGKILLs the child, which
dies somewhere inside the following bar. Without the pause a parent slow to read could find the child done.
"""

from __future__ import annotations

import sys

import click

from ledger.cli import main

_echo = click.echo


def echo_then_wait(message: object = None, *args: object, **kwargs: object) -> None:
    _echo(message, *args, **kwargs)  # type: ignore[arg-type]
    if isinstance(message, str) and message.startswith("bar "):
        sys.stdin.readline()


if __name__ == "__main__":
    click.echo = echo_then_wait  # type: ignore[assignment]
    sys.argv[0] = "paper-ledger"
    main()
