"""``python -m ledger.cli``: the same as the ``paper-ledger`` console script."""

from ledger.cli import main

main()
