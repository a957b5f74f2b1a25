"""Job locks: at most one process runs a long job (a replay) on an account at a time, recorded in ``job_locks``.

A lock is one row per (account, job): a random holder token, the holder's host and pid, and two wall-clock UTC
times (acquired, last heartbeat). It is taken inside a write transaction that first locks the account row, so
two processes asking at the same instant queue there (SQLite ``BEGIN IMMEDIATE``, PostgreSQL ``FOR UPDATE``)
and exactly one gets it; the other is refused with :class:`JobLockedError`, which names the holder.

A holder that died leaves its row behind. The next process takes the lock over when the holder ran on the
same host and its pid is no longer alive (the takeover is reported in :attr:`JobLock.taken_over`). A holder on
another host cannot be checked from here: it is refused until a person who knows that process is gone asks
for ``force=True`` (``paper-ledger replay --force-unlock``). The holder refreshes ``heartbeat_at`` while it
works (at most every ``HEARTBEAT_SECONDS``), so the refusal shows how long ago it was last seen, and it stops
with :class:`JobLockLostError` if it finds its lock taken from it.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, delete, insert, select, update

from ledger.book.store import accounts
from ledger.db.engine import translate_db_errors, write_transaction
from ledger.db.models import JobLock as JobLockRow
from ledger.exceptions import LedgerError

job_locks = JobLockRow.__table__

HEARTBEAT_SECONDS = 10.0


@dataclass(frozen=True)
class LockHolder:
    """Who holds (or held) a job lock, as its row records it."""

    holder: str
    host: str
    pid: int
    acquired_at: datetime
    heartbeat_at: datetime

    def describe(self) -> str:
        return (f"pid {self.pid} on host {self.host!r} since {_shown(self.acquired_at)} "
                f"(last heartbeat {_shown(self.heartbeat_at)})")


class JobLockedError(LedgerError):
    """Another live process holds the job's lock on the account."""

    def __init__(self, account: str, job: str, holder: LockHolder, hint: str):
        self.holder = holder
        super().__init__(f"account {account!r} is busy: its {job} job is held by {holder.describe()}; {hint}")


class JobLockLostError(LedgerError):
    """This process's lock was taken over by another one (``force``): it must stop writing."""


def _shown(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _alive_here(pid: int) -> bool:
    """Whether ``pid`` names a running process on this host (a process of another user counts as alive)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class JobLock:
    """The lock this process holds on (account, job), from :func:`acquire_job_lock` until :meth:`release`."""

    def __init__(self, engine: Engine, account_id: int, account: str, job: str, holder: str,
                 taken_over: LockHolder | None):
        self._engine = engine
        self.account_id = account_id
        self.account = account
        self.job = job
        self.holder = holder
        self.taken_over = taken_over
        self._next_heartbeat = time.monotonic() + HEARTBEAT_SECONDS
        self._released = False

    def heartbeat(self, *, force: bool = False) -> None:
        """Refresh ``heartbeat_at`` (at most every HEARTBEAT_SECONDS unless ``force``).

        Raises JobLockLostError when the row no longer names this holder (another process forced it).
        """
        if not force and time.monotonic() < self._next_heartbeat:
            return
        with translate_db_errors(self._engine), self._engine.connect() as conn, write_transaction(conn):
            updated = conn.execute(
                update(job_locks)
                .where(job_locks.c.account_id == self.account_id, job_locks.c.job == self.job,
                       job_locks.c.holder == self.holder)
                .values(heartbeat_at=datetime.now(UTC))
            ).rowcount
        if updated != 1:
            raise JobLockLostError(
                f"the {self.job} lock on account {self.account!r} was taken over by another process; "
                "this one stopped without writing further"
            )
        self._next_heartbeat = time.monotonic() + HEARTBEAT_SECONDS

    def release(self) -> None:
        """Delete the lock row if it is still this holder's. Safe to call twice."""
        if self._released:
            return
        with translate_db_errors(self._engine), self._engine.connect() as conn, write_transaction(conn):
            conn.execute(
                delete(job_locks).where(job_locks.c.account_id == self.account_id, job_locks.c.job == self.job,
                                        job_locks.c.holder == self.holder)
            )
        self._released = True


def acquire_job_lock(conn: Connection, account_id: int, account: str, job: str, *, force: bool = False) -> JobLock:
    """Take the ``job`` lock on the account inside the caller's write transaction (committed by the caller).

    Free: taken. Held by a live process, or by one on another host: JobLockedError naming it. Held by a
    process of this host that is gone, or ``force``: taken over, the previous holder in ``taken_over``.
    """
    # The account row is the queue: concurrent acquirers wait here, then see each other's committed row.
    conn.execute(select(accounts.c.id).where(accounts.c.id == account_id).with_for_update()).one()
    here = socket.gethostname()[:255]
    row = conn.execute(
        select(job_locks).where(job_locks.c.account_id == account_id, job_locks.c.job == job)
    ).one_or_none()
    previous = None
    if row is not None:
        previous = LockHolder(row.holder, row.host, row.pid, row.acquired_at, row.heartbeat_at)
        if not force:
            if row.host != here:
                raise JobLockedError(account, job, previous,
                                     "it runs on another host, so this one cannot tell whether it is alive: "
                                     "if it is gone, run again with --force-unlock")
            if _alive_here(row.pid):
                raise JobLockedError(account, job, previous, "wait for it to finish (or stop it), then run again")
        conn.execute(delete(job_locks).where(job_locks.c.account_id == account_id, job_locks.c.job == job))
    holder = secrets.token_hex(16)
    now = datetime.now(UTC)
    conn.execute(insert(job_locks).values(
        account_id=account_id, job=job, holder=holder, host=here, pid=os.getpid(), acquired_at=now, heartbeat_at=now,
    ))
    return JobLock(conn.engine, account_id, account, job, holder, previous)


def lock_holder(conn: Connection, account_id: int, job: str) -> LockHolder | None:
    """Who holds the ``job`` lock on the account now (None when free)."""
    row = conn.execute(
        select(job_locks).where(job_locks.c.account_id == account_id, job_locks.c.job == job)
    ).one_or_none()
    return None if row is None else LockHolder(row.holder, row.host, row.pid, row.acquired_at, row.heartbeat_at)
