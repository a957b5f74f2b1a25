"""Account settings (``PaperBroker.configure``): validated at the edge, written in one transaction.

- ``fill_model``: ``full`` (an order fills its whole quantity when it trades) or ``displayed_size`` (at most
  the quote's displayed size; see ledger.book.matching).
- ``calendar``: the exchange calendar (exchange_calendars name) ``day`` orders expire on; ``24/7`` for symbols
  that trade around the clock.
- ``equity_mark_interval_s``: the least broker time between two equity marks written by quote updates (fills
  and replay bars always mark).
- ``shorting_enabled`` and ``max_margin_multiplier``: stored, but this version trades long-only cash accounts:
  enabling shorts or a multiplier above 1 is refused with a clear message until the margin rules are built.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from ledger.book.orders import TradingContext, open_account_for_write
from ledger.book.store import AccountState, Store
from ledger.calendars import validate_calendar
from ledger.constants import FILL_MODELS
from ledger.exceptions import LedgerError
from ledger.money import AmountError, exact, plain, to_decimal


class SettingsNotSupportedError(LedgerError):
    """A setting this version of the ledger cannot honour (shorts, margin)."""


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
    if shorting_enabled:
        raise SettingsNotSupportedError(
            "short selling is not supported by this version of paper-ledger (accounts are long-only): "
            "shorting_enabled stays false"
        )
    multiplier = None
    if max_margin_multiplier is not None:
        try:
            multiplier = exact(to_decimal(max_margin_multiplier, "max_margin_multiplier"), "max_margin_multiplier")
        except AmountError as exc:
            raise ValueError(str(exc)) from exc
        if not 1 <= multiplier <= 4:
            raise ValueError(f"max_margin_multiplier must be between 1 and 4, got {plain(max_margin_multiplier)}")
        if multiplier != 1:
            raise SettingsNotSupportedError(
                "margin is not supported by this version of paper-ledger (cash accounts only): "
                "max_margin_multiplier stays 1"
            )
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
