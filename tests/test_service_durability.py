"""Clients placing orders through the service while every worker is SIGKILLed and restarted: each order that
got a 2xx is in the ledger afterwards, nothing is half-written, and verify() is clean."""

from __future__ import annotations

import threading
import time
import uuid

import httpx
import pytest
from sqlalchemy import select

from tests.conftest import ledger_problems
from tests.service_support import Server, engine_name, make_database, prepare_ledger  # noqa: F401

CLIENTS = 3


@pytest.mark.slow
def test_every_acknowledged_order_survives_a_sigkill_of_all_workers(engine_name, request, tmp_path):
    from ledger.db.engine import dispose_engines, get_engine
    from ledger.db.models import Order

    server = Server(make_database(engine_name, request, tmp_path), tmp_path, workers=2)
    server.keys = prepare_ledger(server.db_url)
    server.start()
    request.addfinalizer(server.stop)
    server.set_quotes("alice", {"symbol": "DUR", "bid": "1", "ask": "1"})
    acknowledged: list[str] = []
    stop = threading.Event()

    def trade() -> None:
        with httpx.Client(base_url=server.url, headers=server.headers("alice"), timeout=5) as client:
            while not stop.is_set():
                coid = uuid.uuid4().hex
                try:
                    response = client.post("/v2/orders", json={"symbol": "DUR", "qty": 1, "side": "buy",
                                                               "type": "market", "time_in_force": "gtc",
                                                               "client_order_id": coid})
                except httpx.HTTPError:
                    time.sleep(0.05)  # the server is down: retry later with a new order
                    continue
                if response.is_success:
                    acknowledged.append(response.json()["client_order_id"])

    clients = [threading.Thread(target=trade) for _ in range(CLIENTS)]
    for client in clients:
        client.start()
    for _ in range(2):
        time.sleep(1.5)
        server.kill()
        server.start()
    time.sleep(1.0)
    stop.set()
    for client in clients:
        client.join(timeout=30)
    server.stop()
    assert len(acknowledged) > 10, server.log()[-2000:]
    with get_engine(server.db_url).connect() as conn:
        stored = set(conn.execute(select(Order.__table__.c.client_order_id).where(
            Order.__table__.c.status == "filled")).scalars())
    problems = ledger_problems(server.db_url)
    dispose_engines()
    assert set(acknowledged) <= stored
    assert problems == []
