"""What one worker process holds: the ledger's URL and engine, and one PaperBroker per account, reused.

Nothing here caches ledger state: a PaperBroker holds a connection and the account's id, and reads every
balance inside its transaction, so writes by other processes are seen at once. PaperBroker is thread-safe
(its calls take turns on its connection); reads that need no broker use pooled connections of the engine.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine

from ledger.book.keys import KeyOwner
from ledger.book.records import order_record
from ledger.brokers.paper import PaperBroker
from ledger.db.engine import get_engine, read_transaction, translate_db_errors
from ledger.queries import order_stmt


class ServiceLedger:
    """The ledger a worker serves: ``reading()`` snapshots and ``broker(owner)`` for writes."""

    def __init__(self, db_url: str):
        self.db_url = db_url
        self.engine: Engine = get_engine(db_url)
        self._brokers: dict[int, PaperBroker] = {}
        self._lock = threading.Lock()

    def broker(self, owner: KeyOwner) -> PaperBroker:
        """The worker's PaperBroker of the key's account (opened on first use, then shared by threads)."""
        broker = self._brokers.get(owner.account_id)
        if broker is None:
            with self._lock:
                broker = self._brokers.get(owner.account_id)
                if broker is None:
                    broker = PaperBroker(account=owner.account, db_url=self.db_url)
                    self._brokers[owner.account_id] = broker
        return broker

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """One read transaction on a pooled connection: a consistent snapshot."""
        with translate_db_errors(self.engine), self.engine.connect() as conn, read_transaction(conn):
            yield conn

    def exact_order(self, account_id: int, order_id: str) -> dict[str, Any] | None:
        """The account's order by its ledger id, amounts as the ledger's exact Decimals (the PaperBroker's dicts
        carry floats, which lose digits beyond 15 or so); None when the account has no such order."""
        with self.reading() as conn:
            row = conn.execute(order_stmt(account_id, order_id)).one_or_none()
        return None if row is None else order_record(row, exact=True)

    def close(self) -> None:
        """End every broker's run (at shutdown)."""
        with self._lock:
            brokers, self._brokers = list(self._brokers.values()), {}
        for broker in brokers:
            broker.close()
