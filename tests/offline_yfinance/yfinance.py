"""A stand-in for the ``yfinance`` module in child processes (put this folder first on PYTHONPATH): no network.

``download`` answers like ``yfinance.download(group_by="ticker")``: one daily bar per ticker, (Ticker, Price)
columns; the close of a ticker is its ``CLOSES`` entry and rises by 1 at every call, so a feed sees prices move.
Tickers not in ``CLOSES`` come back as yfinance's all-NaN placeholder.
"""

from __future__ import annotations

import itertools
from typing import Any

import pandas as pd

CLOSES = {"AAPL": 190.0, "MSFT": 410.0}
_calls = itertools.count()


def download(tickers: Any = None, **_: Any) -> pd.DataFrame:
    names = tickers.split() if isinstance(tickers, str) else list(tickers)
    step = next(_calls)
    fields = ["Open", "High", "Low", "Close", "Adj Close", "Volume"]
    columns = pd.MultiIndex.from_product([names, fields], names=["Ticker", "Price"])
    row = []
    for name in names:
        close = CLOSES.get(name)
        row += [float("nan")] * 6 if close is None else [close + step] * 5 + [1000.0]
    return pd.DataFrame([row], index=pd.DatetimeIndex(["2026-01-02"], name="Date"), columns=columns)
