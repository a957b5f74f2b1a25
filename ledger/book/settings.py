"""Account settings (``PaperBroker.configure``): validated at the edge, written in one transaction.

- ``fill_model``: ``full`` (an order fills its whole quantity when it trades) or ``displayed_size`` (at most
  the quote's displayed size; see ledger.book.matching).
- ``calendar``: the exchange calendar (exchange_calendars name) ``day`` orders expire on; ``24/7`` for symbols
  that trade around the clock.
- ``equity_mark_interval_s``: the least broker time between two equity marks written by quote updates (fills
  and replay bars always mark).
- ``max_margin_multiplier``: 1 is a cash account; above 1 (up to 4; 2 is Reg T) a margin account whose buying
  power and maintenance follow ``ledger.book.margin``.
- ``shorting_enabled``: lets a margin account sell short. A cash account cannot (refused with the reason), and an
  account with short positions, a margin loan (cash below zero) or reservations beyond its cash cannot become a
  cash account again until they are closed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from ledger.book.margin import is_margin_account
from ledger.book.orders import TradingContext, open_account_for_write
from ledger.book.store import AccountState, Store
from ledger.calendars import validate_calendar
from ledger.constants import FILL_MODELS
from ledger.exceptions import LedgerError
from ledger.money import AmountError, exact, plain, to_decimal


class SettingsNotSupportedError(LedgerError):
    """A combination of settings the account cannot take (short selling on a cash account, or back to a cash
    account while it holds shorts or a margin loan)."""


@dataclass(frozen=True)
class SettingsChange:
    """Validated new values; None keeps the current one."""

    shorting_enabled: bool | None = None
    max_margin_multiplier: Decimal | None = None
    fill_model: str | None = None
    calendar: str | None = None
    equity_mark_interval_s: int | None = None


def validate_settings(
    *,
    shorting_enabled: object = None,
    max_margin_multiplier: object = None,
    fill_model: object = None,
    calendar: object = None,
    equity_mark_interval_s: object = None,
) -> SettingsChange:
    """Check each given setting; ValueError (or SettingsNotSupportedError) says which and why."""
    if shorting_enabled is not None and not isinstance(shorting_enabled, bool):
        raise ValueError(f"shorting_enabled must be true or false, got {shorting_enabled!r}"[:120])
    multiplier = None
    if max_margin_multiplier is not None:
        try:
            multiplier = exact(to_decimal(max_margin_multiplier, "max_margin_multiplier"), "max_margin_multiplier")
        except AmountError as exc:
            raise ValueError(str(exc)) from exc
        if not 1 <= multiplier <= 4:
            raise ValueError(f"max_margin_multiplier must be between 1 and 4, got {plain(max_margin_multiplier)}")
    if fill_model is not None and fill_model not in FILL_MODELS:
        raise ValueError(f"fill_model must be one of {', '.join(FILL_MODELS)}, got {fill_model!r}"[:120])
    clean_calendar = None if calendar is None else validate_calendar(calendar)
    interval = equity_mark_interval_s
    if interval is not None and (isinstance(interval, bool) or not isinstance(interval, int) or interval < 0):
        raise ValueError(f"equity_mark_interval_s must be a whole number of seconds >= 0, got {interval!r}"[:120])
    return SettingsChange(shorting_enabled, multiplier, fill_model, clean_calendar, interval)  # type: ignore[arg-type]


def configure_account(store: Store, ctx: TradingContext, change: SettingsChange, now: datetime) -> AccountState:
    """Apply ``change`` to the account's settings (one transaction); returns the account as it now stands."""
    account = open_account_for_write(store, ctx, now)
    shorting = account.shorting_enabled if change.shorting_enabled is None else change.shorting_enabled
    multiplier = account.max_margin_multiplier if change.max_margin_multiplier is None else change.max_margin_multiplier
    if shorting and not is_margin_account(multiplier):
        raise SettingsNotSupportedError(
            "short selling needs a margin account: set max_margin_multiplier above 1 (2 is Reg T) with shorting"
        )
    if not is_margin_account(multiplier) and is_margin_account(account.max_margin_multiplier):
        shorts = [symbol for symbol, qty, _, _ in store.position_marks(account) if qty < 0]
        if shorts or account.cash < 0 or account.reserved_cash > account.cash:
            raise SettingsNotSupportedError(
                "the account cannot become a cash account while it "
                + ("holds short positions (" + ", ".join(shorts[:5]) + ")" if shorts
                   else "has a margin loan (cash below zero)" if account.cash < 0
                   else "has open orders holding more than its cash")
                + ": close them first"
            )
    for name in ("shorting_enabled", "max_margin_multiplier", "fill_model", "calendar", "equity_mark_interval_s"):
        value = getattr(change, name)
        if value is not None:
            setattr(account, name, value)
    store.save_settings(account)
    store.flush(now)
    return account


def settings_record(account: AccountState) -> dict[str, Any]:
    return {
        "shorting_enabled": account.shorting_enabled,
        "max_margin_multiplier": float(account.max_margin_multiplier),
        "fill_model": account.fill_model,
        "calendar": account.calendar,
        "equity_mark_interval_s": account.equity_mark_interval_s,
    }
