"""`paper-ledger serve --feed ...` and `serve --demo`: the server moves quotes by itself, and resting orders of
the fed accounts fill as after `paper-ledger quote set` (real server subprocesses, real alpaca-py)."""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pandas as pd
import pytest
from alpaca.trading.enums import OrderSide, OrderStatus, TimeInForce
from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest
from click.testing import CliRunner

from ledger.cli import cli
from tests.conftest import ledger_problems
from tests.service_support import Server, engine_name, make_database, prepare_ledger  # noqa: F401

T = TypeVar("T")
# One symbol at 100 for 49 bars, then one bar at 90; at --speed 50 the dip comes round once a second.
DIP_BARS = [100.0] * 49 + [90.0]


class OfflineYFinance:
    """Stands in for the ``yfinance`` module: ``download`` answers like ``yfinance.download(group_by="ticker")``,
    one daily bar per ticker; a ticker's close is its ``closes`` entry plus 1 per earlier call (prices move);
    tickers it does not know come back as yfinance's all-NaN placeholder."""

    FIELDS = ("Open", "High", "Low", "Close", "Adj Close", "Volume")

    def __init__(self, closes: dict[str, float]):
        self.closes = closes
        self.calls = itertools.count()

    def download(self, tickers: Any = None, **_: Any) -> pd.DataFrame:
        names = tickers.split() if isinstance(tickers, str) else list(tickers)
        step = next(self.calls)
        row: list[float] = []
        for name in names:
            close = self.closes.get(name)
            row += [float("nan")] * 6 if close is None else [close + step] * 5 + [1000.0]
        columns = pd.MultiIndex.from_product([names, self.FIELDS], names=["Ticker", "Price"])
        return pd.DataFrame([row], index=pd.DatetimeIndex(["2026-01-02"], name="Date"), columns=columns)


def eventually(probe: Callable[[], T | None], what: str, timeout: float = 20) -> T:
    """Poll ``probe`` until it returns something truthy (a deadline, not a sleep, decides)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = probe()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout}s: {what}")


def write_bars(path: Path, symbol: str, closes: list[float]) -> Path:
    lines = ["timestamp,symbol,open,high,low,close,volume"]
    for day, close in enumerate(closes):
        lines.append(f"{date(2022, 1, 3) + timedelta(days=day)},{symbol},{close},{close},{close},{close},1000")
    path.write_text("\n".join(lines) + "\n")
    return path


def latest_ask(server: Server, account: str, symbol: str) -> float | None:
    response = httpx.get(f"{server.url}/v2/stocks/{symbol}/quotes/latest", headers=server.headers(account))
    return response.json()["quote"]["ap"] if response.status_code == 200 else None


def stored_quote_symbols(db_url: str, account: str) -> set[str]:
    from ledger.book.store import find_account
    from ledger.db.engine import dispose_engines, get_engine, read_transaction
    from ledger.queries import quotes_stmt

    with get_engine(db_url).connect() as conn, read_transaction(conn):
        state = find_account(conn, account)
        symbols = {row.symbol for row in conn.execute(quotes_stmt(state.id))}  # type: ignore[union-attr]
    dispose_engines()
    return symbols


@pytest.fixture(scope="module")
def replay_fed(engine_name: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server fed by `--feed replay:bars.csv --speed 50`; alice and bob hold keys, carol has none (yet)."""
    from ledger.brokers.paper import PaperBroker
    from ledger.db.engine import dispose_engines

    workdir = tmp_path_factory.mktemp(f"feed-{engine_name}")
    bars = write_bars(workdir / "bars.csv", "DIP1", DIP_BARS)
    server = Server(make_database(engine_name, request, workdir), workdir,
                    options=("--feed", f"replay:{bars}", "--speed", "50"))
    server.keys = prepare_ledger(server.db_url)
    PaperBroker(account="carol", db_url=server.db_url, initial_cash=1000).close()
    dispose_engines()
    server.start()
    yield server
    server.stop()


def test_a_resting_limit_buy_fills_when_the_replayed_bar_crosses_it(replay_fed: Server):
    client = replay_fed.trading("alice")
    eventually(lambda: latest_ask(replay_fed, "alice", "DIP1"), "the feed quotes DIP1 for alice")
    for _ in range(3):  # an order placed during the one-bar dip fills at once; the next one rests
        order = client.submit_order(LimitOrderRequest(symbol="DIP1", qty=1, side=OrderSide.BUY,
                                                      time_in_force=TimeInForce.GTC, limit_price=95))
        if order.status != OrderStatus.FILLED:
            break
    assert order.status == OrderStatus.NEW, "above the limit at 100.05, the buy rests"

    filled = eventually(lambda: (found := client.get_order_by_id(order.id)).status == OrderStatus.FILLED and found,
                        "the dip bar fills the resting buy")
    assert filled.filled_avg_price == "90.045"  # the dip bar's ask: its close plus half the 10 bps spread
    assert filled.filled_at > filled.submitted_at  # wall time: the fill comes after the order, never before
    assert ledger_problems(replay_fed.db_url) == []


def test_the_feed_quotes_accounts_holding_a_key_and_one_from_the_step_after_its_key_is_created(replay_fed: Server):
    from ledger.book.keys import create_key
    from ledger.db.engine import dispose_engines, get_engine

    eventually(lambda: latest_ask(replay_fed, "bob", "DIP1"), "the feed quotes DIP1 for bob too")
    assert stored_quote_symbols(replay_fed.db_url, "carol") == set(), "no key, no quotes"
    create_key(get_engine(replay_fed.db_url), "carol")
    dispose_engines()
    eventually(lambda: stored_quote_symbols(replay_fed.db_url, "carol") == {"DIP1"}, "carol is fed once keyed")


def test_the_yfinance_feed_quotes_the_keyed_accounts_from_a_fresh_download_per_step(db_url: str):
    from ledger.brokers.data_provider import YFinanceProvider
    from ledger.brokers.paper import PaperBroker
    from ledger.service.quote_feed import QuoteFeed, YFinanceSource

    prepare_ledger(db_url)  # alice and bob hold keys
    PaperBroker(account="carol", db_url=db_url, initial_cash=1000).close()
    with PaperBroker(account="alice", db_url=db_url) as alice:
        alice.set_quote("AAPL", 195, 196)
        resting = alice.submit_order("AAPL", "BUY", 1, "limit", 191)
    provider = YFinanceProvider(cache_ttl_seconds=0, yf_module=OfflineYFinance({"AAPL": 190.0, "MSFT": 410.0}))
    feed = QuoteFeed(db_url, YFinanceSource(["AAPL", "MSFT", "NOPE"], 60, provider))
    try:
        fills = feed.step()
        assert [(fill["order_id"], fill["quote_ask"]) for fill in fills] == [(resting["order_id"], 190.095)]
        assert fills[0]["fill_price"] <= 191
        assert stored_quote_symbols(db_url, "bob") == {"AAPL", "MSFT"}, "NOPE is not priced: skipped"
        assert stored_quote_symbols(db_url, "carol") == set(), "no key, no quotes"
        feed.step()
        with PaperBroker(account="bob", db_url=db_url) as bob:
            assert bob.get_quote("AAPL")["ask"] == 191.0955, "each step downloads afresh (the fake's close rose 1)"
    finally:
        feed.stop()
    assert ledger_problems(db_url) == []


@pytest.mark.engines("sqlite")
def test_demo_prints_a_usable_key_on_the_default_database_and_its_prices_move_and_orders_fill(tmp_path: Path):
    server = Server("", tmp_path, options=("--demo", "--speed", "50"))
    server.start()
    try:
        printed = server.log()
        key_id = re.search(r"key_id\s+(PK\w+)", printed).group(1)  # type: ignore[union-attr]
        secret = re.search(r"secret_key\s+(\w+)", printed).group(1)  # type: ignore[union-attr]
        assert f'TradingClient("{key_id}", "{secret}", paper=True, url_override="{server.url}")' in printed
        server.keys["demo"] = (key_id, secret)
        first = eventually(lambda: latest_ask(server, "demo", "SYN_A"), "the demo feed quotes SYN_A")
        eventually(lambda: latest_ask(server, "demo", "SYN_A") != first, "SYN_A's price moves")
        order = server.trading("demo").submit_order(MarketOrderRequest(symbol="SYN_A", qty=2, side=OrderSide.BUY,
                                                                       time_in_force=TimeInForce.GTC))
        assert (order.status, order.filled_qty) == (OrderStatus.FILLED, "2")
    finally:
        server.stop()
    assert (tmp_path / "paper_ledger.db").exists(), "no --db: the default database in the working directory"
    assert ledger_problems(f"sqlite:///{tmp_path / 'paper_ledger.db'}") == []


@pytest.mark.engines("sqlite")
def test_serve_on_port_0_prints_the_free_port_it_listens_on_and_the_demo_snippet_names_it(tmp_path: Path):
    env = {key: value for key, value in os.environ.items() if not key.startswith("LEDGER_")}
    log_path = tmp_path / "serve.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "ledger.cli", "serve", "--demo", "--port", "0", "--speed", "50"],
            cwd=tmp_path, env=env, stdout=log, stderr=log, start_new_session=True,
        )
    try:
        found = eventually(lambda: re.search(r"listening on (http://127\.0\.0\.1:(\d+))", log_path.read_text()),
                           "serve prints the port it chose", timeout=60)
        url, port = found.group(1), int(found.group(2))
        assert port > 0
        snippet = eventually(lambda: re.search(r'url_override="([^"]+)"', log_path.read_text()), "the demo's snippet")
        assert snippet.group(1) == url, "the demo's snippet names the port it listens on"
        eventually(lambda: _healthy(url), "the service answers on that port", timeout=60)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url + "/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.engines("sqlite")  # the option checks come before any database
@pytest.mark.parametrize(("options", "message"), [
    (("--feed", "bloomberg"), "unknown feed 'bloomberg'"),
    (("--feed", "replay:/no/such/bars.csv"), "no bar file '/no/such/bars.csv'"),
    (("--feed", "yfinance"), "--feed yfinance needs --symbols"),
    (("--demo", "--feed", "yfinance"), "--demo runs its own feed"),
    (("--feed", "replay:" + sys.executable), "cannot replay"),
])
def test_a_wrong_feed_is_a_one_line_usage_error(tmp_path: Path, options: tuple[str, ...], message: str):
    result = CliRunner().invoke(cli, ["serve", *options, "--db", f"sqlite:///{tmp_path / 'x.db'}"])
    assert result.exit_code == 2 and message in result.output
    assert [line for line in result.output.splitlines() if line.startswith("Error")] != []
    assert not (tmp_path / "x.db").exists(), "refused before the ledger is opened"


@pytest.mark.engines("sqlite")
def test_feed_accounts_must_exist(tmp_path: Path):
    bars = write_bars(tmp_path / "bars.csv", "DIP1", DIP_BARS)
    result = CliRunner().invoke(cli, ["serve", "--feed", f"replay:{bars}", "--accounts", "nobody",
                                      "--db", f"sqlite:///{tmp_path / 'x.db'}"])
    assert result.exit_code == 2 and "no account 'nobody'" in result.output
