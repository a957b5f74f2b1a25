"""How a fill is priced: slippage off the touch, never through a limit, fees on the notional."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from ledger.constants import SIDE_BUY
from ledger.money import bounded, bps_fraction, round_amount


@dataclass(frozen=True)
class FillPrice:
    price: Decimal
    notional: Decimal
    fee: Decimal

    @property
    def buy_cost(self) -> Decimal:
        return self.notional + self.fee

    @property
    def sell_proceeds(self) -> Decimal:
        return self.notional - self.fee


def slipped_price(side: str, bid: Decimal, ask: Decimal, slippage_bps: Decimal) -> Decimal:
    """Market price paid: ask*(1+slippage) for a buy, bid*(1-slippage) for a sell."""
    slip = bps_fraction(slippage_bps)
    return round_amount(bounded(ask * (1 + slip) if side == SIDE_BUY else bid * (1 - slip), "the fill price"))


def is_marketable(side: str, limit_price: Decimal, bid: Decimal, ask: Decimal) -> bool:
    """A buy limit at or above the ask, or a sell limit at or below the bid, can trade now."""
    return limit_price >= ask if side == SIDE_BUY else limit_price <= bid


def execution_price(side: str, bid: Decimal, ask: Decimal, slippage_bps: Decimal, limit: Decimal | None) -> Decimal:
    """The slipped price, capped by the limit so a limit order never fills worse than its limit."""
    price = slipped_price(side, bid, ask, slippage_bps)
    if limit is None:
        return price
    return min(price, limit) if side == SIDE_BUY else max(price, limit)


def price_fill(qty: Decimal, price: Decimal, fee_bps: Decimal) -> FillPrice:
    """Notional and fee of ``qty`` at ``price``; AmountLimitError when the notional or the cost with its fee
    would reach the ledger's 10^12 bound (checked before rounding, so no Decimal context overflows)."""
    notional = round_amount(bounded(qty * price, "the notional"))
    fee = round_amount(notional * bps_fraction(fee_bps))
    bounded(notional + fee, "the notional plus fee")
    return FillPrice(price, notional, fee)


def buy_reservation(qty: Decimal, limit_price: Decimal, fee_bps: Decimal) -> Decimal:
    """Cash a resting buy sets aside: its worst-case cost (fill at the limit, plus fee)."""
    return price_fill(qty, limit_price, fee_bps).buy_cost
