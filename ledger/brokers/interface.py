"""The Broker protocol every venue implements, the venue factory, and order normalization."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Broker(Protocol):
    """What trading code may ask of a broker. Amounts cross this edge as floats; times are UTC-aware."""

    def submit_order(
        self,
        symbol: str,
        side: str,
        qty: float,
        order_type: str = "market",
        limit_price: float | None = None,
    ) -> dict[str, Any]:
        """Submit an order; returns a dict with order_id, status, timestamp, fill_price (None unless filled).

        Raises OrderRejectedError (a BrokerError) when the order is refused.
        """
        ...

    def cancel_order(self, order_id: str) -> dict[str, Any]:
        """Cancel a resting order; returns order_id, status and timestamp."""
        ...

    def get_positions(self) -> dict[str, float]:
        """Open positions: symbol -> quantity (zero positions absent)."""
        ...

    def get_cash(self) -> float:
        """The account's cash balance."""
        ...

    def get_fills(self, since: datetime | None = None) -> list[dict[str, Any]]:
        """Fills, oldest first, optionally those at or after ``since`` (a UTC-aware datetime)."""
        ...

    def get_quote(self, symbol: str) -> dict[str, Any]:
        """The last quote: bid, ask, bid_size, ask_size, timestamp."""
        ...

    def now(self) -> datetime:
        """Broker time (UTC-aware)."""
        ...


def get_broker(venue: str = "paper", **kwargs: Any) -> Broker:
    """Return a broker for ``venue`` ("paper"); kwargs go to its constructor."""
    if venue == "paper":
        from ledger.brokers.paper import PaperBroker

        return PaperBroker(**kwargs)
    if venue == "ibkr":
        raise NotImplementedError("IBKR broker not yet implemented")
    raise ValueError(f"Unknown broker venue: {venue}")


def normalize_order(symbol: str, side: str, qty: float, px: float | None = None) -> dict[str, Any]:
    """Order parameters in the standard shape: upper-case symbol and side, float qty and price."""
    return {
        "symbol": str(symbol).strip().upper(),
        "side": str(side).strip().upper(),
        "qty": float(qty),
        "px": float(px) if px is not None else None,
    }
