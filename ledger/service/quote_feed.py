"""The quote feed of ``paper-ledger serve --feed``: a thread of the serve process that moves quotes by itself.

One feed per server, whatever ``--workers`` says: it runs in the process that starts uvicorn (the workers are
spawned fresh and never start one). Each step takes the source's next quotes and stores them for every fed
account through ``PaperBroker.set_quote``, each in its own transaction: resting orders fill exactly as after
``paper-ledger quote set``. Quotes are per account in this ledger, so the feed quotes, at every step, the
accounts that hold an API key that is not revoked (the service's clients, so a key created while the server
runs is fed from the next step), or the accounts named by ``--accounts``.

Quotes are stamped with wall time (the brokers' system clock), not with a replayed bar's market time: the
service stamps its clients' orders with wall time too, and an account's broker time never goes backwards, so
a bar of 2022 stamped 2022 would be refused after an order placed today (or would put fills before the orders
they fill). The bar's time only decides the order in which bars are played.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from ledger.brokers.paper import PaperBroker
from ledger.db.engine import get_engine, read_transaction, translate_db_errors
from ledger.exceptions import LedgerError
from ledger.queries import keyed_account_names


class FeedQuote(NamedTuple):
    symbol: str
    bid: Any  # Decimal (replay) or float (yfinance); PaperBroker.set_quote validates either
    ask: Any
    bid_size: Any = 100
    ask_size: Any = 100


class QuoteSource(Protocol):
    """Where a feed's quotes come from: ``interval`` seconds between steps, ``next_quotes()`` for each step."""

    interval: float
    description: str

    def next_quotes(self) -> list[FeedQuote]: ...


class ReplaySource:
    """Bars of a file ``paper-ledger replay --data`` reads, played in a loop: one bar time per step (every
    symbol's bar of that time becomes its quote: the replay's synthetic spread around the close), ``speed``
    steps per second. At the end of the file it starts over, so a feed never runs dry."""

    def __init__(self, path: Path, speed: float, label: str | None = None):
        from ledger.replay import load_bar_file  # pandas: imported only when a feed is asked for

        self.data = load_bar_file(path, label)
        self.interval = 1 / speed
        self.description = f"replay of {self.data.describe()}, {speed:g} bars/s, in a loop"
        self._steps = self.data.steps()  # read as it is played (the bars are streamed, not held)

    def next_quotes(self) -> list[FeedQuote]:
        from ledger.replay import bar_quote

        step = next(self._steps, None)
        if step is None:  # the end of the file: play it again
            self._steps = self.data.steps()
            step = next(self._steps)
        stamp, bars = step
        return [FeedQuote(symbol, *bar_quote(symbol, bar, stamp)) for symbol, bar in sorted(bars.items())]


class YFinanceSource:
    """Yahoo Finance quotes of ``symbols`` every ``poll`` seconds, through the package's YFinanceProvider (one
    batched request per step; symbols Yahoo cannot price are skipped, none priced is a failed step)."""

    def __init__(self, symbols: Sequence[str], poll: float, provider: Any = None):
        from ledger.brokers.data_provider import YFinanceProvider

        self.symbols = list(symbols)
        self.interval = poll
        self.description = f"Yahoo Finance quotes of {', '.join(self.symbols)} every {poll:g} s"
        self.provider = provider or YFinanceProvider(cache_ttl_seconds=0)

    def next_quotes(self) -> list[FeedQuote]:
        fetched = self.provider.get_multiple_quotes(self.symbols)
        return [FeedQuote(symbol, quote["bid"], quote["ask"], quote["bid_size"], quote["ask_size"])
                for symbol, quote in fetched.items()]


class QuoteFeed:
    """Stores a source's quotes for the fed accounts: ``step()`` once, or ``start()`` a thread that steps
    every ``source.interval`` seconds until ``stop()``. A failing step (no network, an account whose clock is
    ahead) is reported on stderr and the feed goes on."""

    def __init__(self, db_url: str, source: QuoteSource, accounts: Sequence[str] | None = None):
        self.db_url = db_url
        self.source = source
        self.accounts = None if accounts is None else list(accounts)
        self._brokers: dict[str, PaperBroker] = {}
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._reported: set[str] = set()

    def fed_accounts(self) -> list[str]:
        """The accounts this step quotes: ``--accounts``, else those holding an active API key."""
        if self.accounts is not None:
            return self.accounts
        engine = get_engine(self.db_url)
        with translate_db_errors(engine), engine.connect() as conn, read_transaction(conn):
            return keyed_account_names(conn)

    def step(self) -> list[dict[str, Any]]:
        """Store the source's next quotes for every fed account, one transaction per account (``set_quotes``);
        returns the fills they caused. An account
        that refuses them (its clock ahead of wall time, say) is reported and the others are still fed."""
        quotes = self.source.next_quotes()
        fills: list[dict[str, Any]] = []
        for account in self.fed_accounts():
            try:
                broker = self._brokers.get(account)
                if broker is None:
                    broker = self._brokers[account] = PaperBroker(account=account, db_url=self.db_url)
                fills += broker.set_quotes({quote.symbol: tuple(quote[1:]) for quote in quotes})
            except (LedgerError, ValueError) as exc:
                self._report_once(f"feed: account {account!r}: {exc}")
        return fills

    def _report_once(self, problem: str) -> None:
        """One line per distinct problem, not one per step."""
        if problem not in self._reported:
            if len(self._reported) >= 1000:
                self._reported.clear()
            self._reported.add(problem)
            print(problem, file=sys.stderr, flush=True)

    def _run(self) -> None:
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                self.step()
            except Exception as exc:  # noqa: BLE001 - a feed outlives a bad step (no network, a bad payload)
                self._report_once(f"feed: step failed: {type(exc).__name__}: {exc}")
            self._stopping.wait(max(0.0, self.source.interval - (time.monotonic() - started)))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="quote-feed", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop stepping, then end the feed brokers' runs."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        for broker in self._brokers.values():
            broker.close()
        self._brokers.clear()
