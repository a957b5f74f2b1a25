"""SYNTHETIC market data generator: writes ledger/data/sample_bars.csv, made-up prices that are NOT real data.

Three fictitious symbols (SYN_A, SYN_B, SYN_C) get daily OHLCV bars on 500 business days from 2022-01-03.
The log close follows a geometric Brownian motion with a modest drift that is pulled back towards its
trend line (an Ornstein-Uhlenbeck deviation around a drifting mean), so prices wander in swings of a few
weeks and a moving-average crossover strategy trades a few dozen times instead of never or every day.
Open, high, low and volume are drawn around each close. A fixed seed makes the file reproducible:

    python -m ledger.data.make_sample            # rewrite the packaged file
    python -m ledger.data.make_sample --out x.csv
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

SEED = 20220103
START = "2022-01-03"
BUSINESS_DAYS = 500
TRADING_DAYS_PER_YEAR = 252
DEFAULT_OUTPUT = Path(__file__).with_name("sample_bars.csv")


@dataclass(frozen=True)
class SymbolModel:
    """Parameters of one synthetic symbol (annualized drift and volatility)."""

    symbol: str
    start_price: float
    drift: float
    volatility: float
    reversion: float  # fraction of the gap to the trend line closed per day
    base_volume: float


MODELS = (
    SymbolModel("SYN_A", 100.0, 0.08, 0.25, 0.03, 1_500_000),
    SymbolModel("SYN_B", 50.0, 0.03, 0.35, 0.04, 3_000_000),
    SymbolModel("SYN_C", 200.0, 0.05, 0.18, 0.02, 800_000),
)


def _simulate(model: SymbolModel, days: int, rng: np.random.Generator) -> pd.DataFrame:
    dt = 1.0 / TRADING_DAYS_PER_YEAR
    daily_vol = model.volatility * np.sqrt(dt)
    step = (model.drift - 0.5 * model.volatility**2) * dt
    shocks = rng.standard_normal(days)
    log_close = np.empty(days)
    deviation = 0.0  # distance of the log price from its drifting trend line
    for day in range(days):
        deviation += -model.reversion * deviation + daily_vol * shocks[day]
        log_close[day] = np.log(model.start_price) + step * day + deviation
    close = np.exp(log_close)
    previous = np.concatenate(([model.start_price], close[:-1]))
    # Overnight gaps are a fraction of the daily move; the intraday range always brackets open and close.
    open_ = previous * np.exp(0.3 * daily_vol * rng.standard_normal(days))
    high = np.maximum(open_, close) * np.exp(0.5 * daily_vol * np.abs(rng.standard_normal(days)))
    low = np.minimum(open_, close) * np.exp(-0.5 * daily_vol * np.abs(rng.standard_normal(days)))
    # Busier days when the price moves more, as in real markets.
    move = np.abs(np.log(close / previous)) / daily_vol
    volume = model.base_volume * np.exp(0.3 * rng.standard_normal(days)) * (1.0 + 0.5 * move)
    return pd.DataFrame(
        {
            "symbol": model.symbol,
            # Rounding is monotonic, so high >= max(open, close) >= min(open, close) >= low survives it.
            "open": np.round(open_, 4),
            "high": np.round(high, 4),
            "low": np.round(low, 4),
            "close": np.round(close, 4),
            "volume": np.round(volume).astype("int64"),
        }
    )


def generate_sample_bars(seed: int = SEED, days: int = BUSINESS_DAYS, start: str = START) -> pd.DataFrame:
    """The synthetic bars in long format, sorted by timestamp then symbol; ``timestamp`` is YYYY-MM-DD."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range(start=start, periods=days)
    frames = []
    for model in MODELS:
        frame = _simulate(model, days, rng)
        frame.insert(0, "timestamp", dates.strftime("%Y-%m-%d"))
        frames.append(frame)
    bars = pd.concat(frames, ignore_index=True)
    return bars.sort_values(["timestamp", "symbol"], kind="stable").reset_index(drop=True)


def write_sample_bars(path: Path = DEFAULT_OUTPUT, seed: int = SEED) -> Path:
    """Generate the synthetic bars and write them as CSV to ``path``."""
    generate_sample_bars(seed).to_csv(path, index=False, float_format="%.4f", lineterminator="\n")
    return path


def main(argv: list[str] | None = None) -> None:
    """Command line: write the synthetic sample CSV."""
    parser = argparse.ArgumentParser(description="Write the SYNTHETIC sample bars CSV (not market data).")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUTPUT, help="output CSV path")
    parser.add_argument("--seed", type=int, default=SEED, help="random seed")
    args = parser.parse_args(argv)
    print(f"wrote {write_sample_bars(args.out, args.seed)}")


if __name__ == "__main__":
    main()
