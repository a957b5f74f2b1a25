"""One PaperBroker shared by threads: calls take turns on its connection; nothing is lost or doubled."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from ledger.brokers.paper import PaperBroker


def test_four_threads_sharing_one_broker_trade_without_errors_and_the_ledger_verifies(make_broker):
    broker = make_broker(initial_cash=1_000_000)
    broker.set_quote("AAPL", bid=100.0, ask=100.0)
    errors: list[BaseException] = []
    start = threading.Barrier(4)
    per_thread = 50

    def trade(worker: int) -> None:
        start.wait()
        try:
            for i in range(per_thread):
                if i % 5 == 0:
                    broker.set_quote("AAPL", bid=100.0, ask=100.0)
                broker.submit_order("AAPL", "BUY", 1, client_order_id=f"w{worker}-{i}")
                broker.get_cash()
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=trade, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(broker.get_fills()) == 4 * per_thread
    assert broker.get_positions() == {"AAPL": 4.0 * per_thread}
    assert broker.verify() == []


@pytest.mark.parametrize("bad", [5, b"ledger.db", 1.5, ["x"]])
def test_a_db_url_that_is_not_text_or_a_path_is_a_type_error_and_creates_no_file(tmp_path, bad):
    with pytest.raises(TypeError, match="db_url must be a URL or file path"):
        PaperBroker(db_url=bad)
    assert sorted(p.name for p in Path(tmp_path).iterdir() if p.name != "ledger.db") == []


@pytest.mark.parametrize("empty", ["", "   "])
def test_an_empty_db_url_is_refused_rather_than_replaced_by_the_default(empty):
    with pytest.raises(ValueError, match="db_url is empty"):
        PaperBroker(db_url=empty)
