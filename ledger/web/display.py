"""How the dashboard shows values: exact decimals, UTC times, and the equity chart's geometry.

Numbers keep the ledger's exact digits (up to six decimals, at least two for money), never rounded through a
float. The chart is inline SVG computed here and drawn by a template: no JavaScript chart library.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from ledger.reports import max_drawdown


def number(value: Decimal | float | int | str | None, min_places: int = 0) -> str:
    """A number with thousands separators and its exact digits (up to 6 decimals, at least ``min_places``)."""
    if value is None or value == "":
        return ""
    exact = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if not exact.is_finite():
        return str(exact)
    places = max(min_places, min(6, -exact.normalize().as_tuple().exponent))  # type: ignore[operator]
    return f"{exact:,.{places}f}"


def money(value: Decimal | float | int | str | None) -> str:
    return number(value, 2)


def percent(fraction: Decimal | None) -> str:
    return "" if fraction is None else f"{fraction * 100:+.2f}%"


def utc_time(value: datetime | date | str | None) -> str:
    """``2024-01-02 14:30:00.123456`` in UTC (the column headers say UTC); microseconds only when present."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        moment = value.astimezone(UTC) if value.tzinfo else value
        return moment.strftime("%Y-%m-%d %H:%M:%S.%f" if moment.microsecond else "%Y-%m-%d %H:%M:%S")
    return value.isoformat() if isinstance(value, date) else str(value)


def iso_time(value: datetime | None) -> str:
    """The machine-readable form for ``<time datetime=...>``."""
    return "" if value is None else value.isoformat()


CHART_WIDTH, CHART_HEIGHT, CHART_PAD = 800, 240, 8
CHART_MAX_POINTS = 400  # about one per two pixels: the curve's shape, read in a bounded time however long the history
RANGES = {"1D": timedelta(days=1), "1W": timedelta(weeks=1), "1M": timedelta(days=31), "3M": timedelta(days=92),
          "1Y": timedelta(days=366), "all": None}
RANGE_LABELS = {"1D": "the last day", "1W": "the last week", "1M": "the last month", "3M": "the last three months",
                "1Y": "the last year", "all": "the whole epoch"}


@dataclass(frozen=True)
class EquityChart:
    """An equity curve as SVG geometry in a CHART_WIDTH x CHART_HEIGHT box: the curve's polyline points and
    the drawdown band (between the running peak and the curve) as polygon points."""

    line: str
    drawdown: str
    low: Decimal
    high: Decimal
    start: datetime
    end: datetime
    points: int
    max_drawdown: Decimal


def equity_chart(points: list[dict[str, Any]]) -> EquityChart | None:
    """The chart of ``reports.equity_chart_points`` (already cut to the chosen range) or None without points.

    Drawdown is measured net of deposits and withdrawals (as ``reports.account_max_drawdown``): a withdrawal
    lowers the curve but is not shaded as a loss.
    """
    if not points:
        return None
    total_flows = points[-1]["net_deposits"]
    trading = [point["equity"] + total_flows - point["net_deposits"] for point in points]
    peak: Decimal | None = None
    tops = []
    for point, value in zip(points, trading):
        peak = value if peak is None or value > peak else peak
        tops.append(point["equity"] + (peak - value))
    values = [point["equity"] for point in points]
    low, high = min(values), max(tops)
    start, end = points[0]["timestamp"], points[-1]["timestamp"]
    seconds = (end - start).total_seconds() or 1.0
    value_span = (high - low) or Decimal(1)

    def xy(at: datetime, value: Decimal, index: int) -> str:
        x = CHART_PAD + (CHART_WIDTH - 2 * CHART_PAD) * (
            (at - start).total_seconds() / seconds if end != start else index / max(1, len(points) - 1))
        y = CHART_PAD + (CHART_HEIGHT - 2 * CHART_PAD) * float((high - value) / value_span)
        return f"{x:.1f},{y:.1f}"

    line = [xy(point["timestamp"], point["equity"], index) for index, point in enumerate(points)]
    band = [xy(point["timestamp"], top, index) for index, (point, top) in enumerate(zip(points, tops))]
    return EquityChart(
        line=" ".join(line), drawdown=" ".join(band + line[::-1]), low=low, high=high, start=start, end=end,
        points=len(points), max_drawdown=max_drawdown(trading),
    )
