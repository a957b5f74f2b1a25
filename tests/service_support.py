"""Fixtures of the service tests: ONE real `paper-ledger serve` subprocess per test module and engine.

A service test module imports ``engine_name`` (module-scoped here, so each module starts one server per engine
instead of one per test), ``service`` and ``ledger_verified``. The server runs on a free loopback port over its
own database with two accounts, alice and bob, each with an API key; slippage and fees are 0 so prices read
plainly. After every test, ``verify()`` must hold for the whole ledger.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.conftest import ENGINES, ledger_problems

ACCOUNTS = {"alice": 100_000, "bob": 10_000}


@pytest.fixture(scope="module", params=ENGINES)
def engine_name(request: pytest.FixtureRequest) -> str:
    return request.param


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    """A `paper-ledger serve` subprocess; ``keys[account] = (key_id, secret)``."""

    db_url: str
    workdir: Path
    workers: int = 1
    options: tuple[str, ...] = ()  # more `serve` options (--feed ...); db_url "" serves the default database
    port: int = field(default_factory=free_port)
    keys: dict[str, tuple[str, str]] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        env = {key: value for key, value in os.environ.items() if not key.startswith("LEDGER_")}
        env.update(LEDGER_SLIPPAGE_BPS="0", LEDGER_FEE_BPS="0")
        log = open(self.workdir / f"serve-{self.port}.log", "ab")  # noqa: SIM115 - the child owns it
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ledger.cli", "serve", "--port", str(self.port), "--workers", str(self.workers),
             *(("--db", self.db_url) if self.db_url else ()), *self.options],
            cwd=self.workdir, env=env, stdout=log, stderr=log, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"serve exited with {self.process.returncode}: {self.log()[-2000:]}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"serve did not become healthy in {timeout}s: {self.log()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL the server and all its workers (its process group)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return "\n".join(path.read_text(errors="replace") for path in self.workdir.glob("serve-*.log"))

    def headers(self, account: str) -> dict[str, str]:
        key_id, secret = self.keys[account]
        return {"APCA-API-KEY-ID": key_id, "APCA-API-SECRET-KEY": secret}

    def trading(self, account: str, url_suffix: str = "") -> object:
        from alpaca.trading.client import TradingClient

        key_id, secret = self.keys[account]
        return TradingClient(key_id, secret, paper=True, url_override=self.url + url_suffix)

    def set_quotes(self, account: str, *quotes: dict[str, object]) -> dict[str, object]:
        response = httpx.post(self.url + "/v1/ledger/quotes", json=list(quotes), headers=self.headers(account))
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]


def make_database(engine_name: str, request: pytest.FixtureRequest, workdir: Path) -> str:
    if engine_name == "sqlite":
        return f"sqlite:///{workdir / 'service.db'}"
    server = request.getfixturevalue("pg_server")
    name = server.create_database()
    request.addfinalizer(lambda: server.drop_database(name))
    return server.url(name)


def prepare_ledger(db_url: str) -> dict[str, tuple[str, str]]:
    """The accounts of ACCOUNTS, each with a key; engines disposed so no connection outlives the setup."""
    from ledger.book.keys import create_key
    from ledger.brokers.paper import PaperBroker
    from ledger.db.engine import dispose_engines, get_engine

    keys = {}
    for name, cash in ACCOUNTS.items():
        with PaperBroker(account=name, db_url=db_url, initial_cash=cash, slippage_bps=0, fee_bps=0):
            pass
        keys[name] = create_key(get_engine(db_url), name)
    dispose_engines()
    return keys


@pytest.fixture(scope="module")
def service(engine_name: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp(f"service-{engine_name}")
    server = Server(make_database(engine_name, request, workdir), workdir)
    server.keys = prepare_ledger(server.db_url)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def ledger_verified(service: Server) -> Iterator[Server]:
    """The service, with its whole ledger's invariants checked after the test."""
    yield service
    from ledger.db.engine import dispose_engines

    problems = ledger_problems(service.db_url)
    dispose_engines()
    assert problems == [], "the ledger's invariants must hold after every scenario"
