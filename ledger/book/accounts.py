"""Use cases on accounts and runs: open (create or resume) an account, start/resume/end a run, reset."""

from __future__ import annotations

import os
import re
import socket
import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from ledger.book import store
from ledger.book.marks import MARK_FILL, mark_equity
from ledger.book.orders import cancel_open_orders
from ledger.book.store import AccountState, PendingRun, Store
from ledger.book.validation import ledger_id, printable
from ledger.exceptions import AccountMismatchError, CashMovementError, LedgerError
from ledger.money import AmountLimitError, bounded, plain

ACCOUNT_NAME_MAX = 64
# New names: ASCII letters, digits, . _ - @ + and inner spaces; case-sensitive ("Alice" and "alice" differ).
_ACCOUNT_NAME_PATTERN = re.compile(r"[A-Za-z0-9._@+\-]([A-Za-z0-9._@+\- ]*[A-Za-z0-9._@+\-])?")
ACCOUNT_NAME_RULE = (
    f"1-{ACCOUNT_NAME_MAX} characters: ASCII letters, digits, '.', '_', '-', '@', '+' and spaces "
    "(not at the start or end); case-sensitive"
)


def validate_account_name(name: object) -> str:
    """The name of a NEW account, checked against the strict rule (``ACCOUNT_NAME_RULE``); returned unchanged."""
    if not isinstance(name, str) or len(name) > ACCOUNT_NAME_MAX or not _ACCOUNT_NAME_PATTERN.fullmatch(name):
        raise ValueError(f"account name must be {ACCOUNT_NAME_RULE}; got {printable(name, 80)!r}")
    return name


def account_lookup_name(name: object) -> str:
    """A name that may name an EXISTING account: any 1-64 characters without NUL, used exactly as given.

    Accounts created before the strict rule keep their names and stay openable; new ones must follow the rule.
    """
    if not isinstance(name, str) or not name or len(name) > ACCOUNT_NAME_MAX or "\x00" in name:
        raise ValueError(f"account name must be {ACCOUNT_NAME_RULE}; got {printable(name, 80)!r}")
    return name


def open_account(
    conn: Connection, name: str, explicit_cash: Decimal | None, default_cash: Decimal, now: datetime
) -> AccountState:
    """Return the account, creating it with its initial deposit on first use.

    An explicit ``initial_cash`` that differs from the stored one is an error (silently ignoring it would
    let a user believe they trade a different amount).
    """
    account = store.find_account(conn, name, lock=True)
    if account is None:
        validate_account_name(name)
        cash = default_cash if explicit_cash is None else explicit_cash
        try:
            with conn.begin_nested():
                account_id = store.insert_account(conn, name, cash, now)
        except IntegrityError:  # another session created it first (PostgreSQL; SQLite is serialized)
            account = store.find_account(conn, name, lock=True)
            assert account is not None
        else:
            ledger = Store(conn)
            account = ledger.lock_account(account_id)
            ledger.add_cash_movement(account, None, "initial", cash, now)
            ledger.flush(now)
            return account
    if explicit_cash is not None and explicit_cash != account.initial_cash:
        raise AccountMismatchError(
            f"account {printable(name, 64)!r} exists with initial cash {plain(account.initial_cash)}; "
            f"got initial cash {plain(explicit_cash)}. Open it without an initial cash to resume it, "
            "reset the account with a new initial cash to start over, or pick another account."
        )
    return account


def new_run(account_id: int, slippage_bps: Decimal, fee_bps: Decimal) -> PendingRun:
    """A run of this process, not yet written: its row goes in with the first order, fill or cash movement."""
    return PendingRun(uuid.uuid4().hex, account_id, slippage_bps, fee_bps, socket.gethostname()[:255], os.getpid())


def resume_run(
    conn: Connection,
    account: AccountState,
    run_id: str,
    now: datetime,
    explicit_slippage: Decimal | None,
    explicit_fee: Decimal | None,
) -> tuple[Decimal, Decimal]:
    """Reopen an earlier run of this account; its stored slippage and fee stay in force."""
    row = store.find_run(conn, run_id) if ledger_id(run_id) else None
    if row is None:
        raise LedgerError(f"run {printable(run_id, 40)!r} does not exist")
    if row.account_id != account.id:
        raise AccountMismatchError(f"run {run_id} belongs to another account, not {account.name!r}")
    for name, explicit, stored in (
        ("slippage_bps", explicit_slippage, row.slippage_bps_e6),
        ("fee_bps", explicit_fee, row.fee_bps_e6),
    ):
        if explicit is not None and explicit != stored:
            raise AccountMismatchError(f"run {run_id} was started with {name}={stored:f}; got {name}={explicit:f}")
    ledger = Store(conn)
    ledger.lock_account(account.id, now)
    store.update_run(conn, run_id, {"ended_at": None, "host": socket.gethostname()[:255], "pid": os.getpid()})
    ledger.flush(now)
    return row.slippage_bps_e6, row.fee_bps_e6


def end_run(ledger: Store, account_id: int, run_id: str, now: datetime) -> None:
    """Stamp the run's end at broker time (never before its start: the account's clock only moves forward)."""
    ledger.lock_account(account_id, now)
    ledger.end_run(run_id, now)
    ledger.flush(now)


def reset_account(
    ledger: Store, account_id: int, run_id: str, initial_cash: Decimal | None, now: datetime
) -> AccountState:
    """Start a new epoch: cancel resting orders, restore cash. Earlier epochs' rows stay queryable."""
    account = ledger.lock_account(account_id, now)
    cancel_open_orders(ledger, account, now, "account reset")
    ledger.flush(now)  # the released positions belong to the old epoch: save them before it changes
    account.epoch += 1
    if initial_cash is not None:
        account.initial_cash = initial_cash
    account.cash = account.initial_cash
    account.reserved_cash = Decimal(0)
    ledger.add_cash_movement(account, run_id, "initial", account.initial_cash, now)
    ledger.flush(now)
    return account


def move_cash(ledger: Store, account_id: int, run_id: str, amount: Decimal, now: datetime) -> AccountState:
    """Deposit (``amount`` > 0) or withdraw (< 0) cash in the current epoch, recorded as a ``deposit`` or
    ``withdrawal`` cash movement. A withdrawal may take only available cash (not what resting buys reserve)."""
    account = ledger.lock_account(account_id, now)
    if amount < 0 and -amount > account.available_cash:
        raise CashMovementError(
            f"withdrawal of {plain(-amount)} refused: account {printable(account.name, 64)!r} has "
            f"{plain(account.available_cash)} available (cash {plain(account.cash)}, "
            f"{plain(account.reserved_cash)} reserved by resting buys)"
        )
    try:
        account.cash = bounded(account.cash + amount, "cash after the deposit")
    except AmountLimitError as exc:
        raise CashMovementError(f"deposit of {plain(amount)} refused: {exc}") from exc
    ledger.add_cash_movement(account, run_id, "deposit" if amount > 0 else "withdrawal", amount, now)
    mark_equity(ledger, account, now, reason=MARK_FILL)  # the equity moved: the curve shows it here
    ledger.flush(now)
    return account
