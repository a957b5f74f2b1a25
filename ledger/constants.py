"""Names and defaults shared by the whole ledger."""

from __future__ import annotations

from typing import Any

SIDE_BUY = "BUY"
SIDE_SELL = "SELL"
SIDES = (SIDE_BUY, SIDE_SELL)

# Order types, times in force and statuses in Alpaca's spelling (the service speaks Alpaca's API).
ORDER_MARKET = "market"
ORDER_LIMIT = "limit"
ORDER_STOP = "stop"
ORDER_STOP_LIMIT = "stop_limit"
ORDER_TRAILING_STOP = "trailing_stop"
ORDER_TYPES = (ORDER_MARKET, ORDER_LIMIT, ORDER_STOP, ORDER_STOP_LIMIT, ORDER_TRAILING_STOP)
STOP_TYPES = (ORDER_STOP, ORDER_STOP_LIMIT, ORDER_TRAILING_STOP)  # wait for a quote to reach their stop

TIF_DAY = "day"
TIF_GTC = "gtc"
TIF_IOC = "ioc"
TIF_FOK = "fok"
TIMES_IN_FORCE = (TIF_DAY, TIF_GTC, TIF_IOC, TIF_FOK)
AUCTION_TIMES_IN_FORCE = ("opg", "cls")  # refused: the ledger has no opening or closing auction

STATUS_NEW = "new"
STATUS_PARTIALLY_FILLED = "partially_filled"
STATUS_FILLED = "filled"
STATUS_CANCELED = "canceled"
STATUS_EXPIRED = "expired"
STATUS_REPLACED = "replaced"
STATUS_REJECTED = "rejected"
ORDER_STATUSES = (
    STATUS_NEW, STATUS_PARTIALLY_FILLED, STATUS_FILLED, STATUS_CANCELED, STATUS_EXPIRED, STATUS_REPLACED,
    STATUS_REJECTED,
)
OPEN_STATUSES = (STATUS_NEW, STATUS_PARTIALLY_FILLED)  # working: may still fill, hold reservations
FLOW_KINDS = ("deposit", "withdrawal")  # cash movements that add capital or take it out (not fills)

FILL_FULL = "full"
FILL_DISPLAYED_SIZE = "displayed_size"
FILL_MODELS = (FILL_FULL, FILL_DISPLAYED_SIZE)

DEFAULT_ACCOUNT = "default"
DEFAULT_DB_FILE = "paper_ledger.db"

# The last resort of configuration (see ledger.config.get_cfg); config/ledger.yaml documents each key.
DEFAULT_CONFIG: dict[str, Any] = {
    "database_url": None,
    "initial_cash": 100_000,
    "slippage_bps": 5,
    "fee_bps": 1,
    "sqlite_busy_timeout_ms": 60_000,
    "sqlite_synchronous": "NORMAL",
}
