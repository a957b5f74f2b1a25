"""Names and defaults shared by the whole ledger."""

from __future__ import annotations

from typing import Any

SIDE_BUY = "BUY"
SIDE_SELL = "SELL"
SIDES = (SIDE_BUY, SIDE_SELL)

ORDER_MARKET = "market"
ORDER_LIMIT = "limit"
ORDER_TYPES = (ORDER_MARKET, ORDER_LIMIT)

STATUS_NEW = "new"
STATUS_FILLED = "filled"
STATUS_CANCELED = "canceled"
STATUS_REJECTED = "rejected"
ORDER_STATUSES = (STATUS_NEW, STATUS_FILLED, STATUS_CANCELED, STATUS_REJECTED)

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
