"""Child for the migration tests: opens a ledger whose schema may be old, and says whether it ran the migrations.

``python -m tests.workers.schema_opener DB_URL ACCOUNT MODE``:

- ``race``: report ``ready``, wait for the parent's ``go`` (all children start together), open a PaperBroker,
  then print a ``result`` message with ``migrated`` - whether this process ran ``alembic upgrade`` - and exit.
- ``stall``: open a PaperBroker, but stop right after the upgrade has run inside its (uncommitted) transaction,
  print ``migrated-uncommitted`` and wait there for the parent's SIGKILL.

Who migrated is observed by wrapping ``ledger.db.migrate.run_alembic``, the one call through which
``ensure_schema`` runs Alembic.
"""

from __future__ import annotations

import sys
from typing import Any

import ledger.db.migrate
from ledger.brokers.paper import PaperBroker
from tests.workers.protocol import emit, wait_for_go


def main() -> None:
    db_url, account, mode = sys.argv[1:4]
    run_alembic = ledger.db.migrate.run_alembic
    upgrades: list[str] = []

    def observed_run_alembic(conn: Any, action: str, revision: str) -> None:
        run_alembic(conn, action, revision)
        upgrades.append(f"{action} {revision}")
        if mode == "stall":
            emit("migrated-uncommitted")
            sys.stdin.readline()  # killed here, inside the migration's transaction
            raise SystemExit("stall released: the parent was expected to kill this process")

    ledger.db.migrate.run_alembic = observed_run_alembic
    if mode == "race":
        wait_for_go()
    broker = PaperBroker(db_url=db_url, account=account, initial_cash=10_000)
    problems = broker.verify()
    broker.close()
    emit("result", migrated=bool(upgrades), upgrades=upgrades, problems=problems)


if __name__ == "__main__":
    main()
