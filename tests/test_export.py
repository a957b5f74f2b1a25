"""JSONL export: an export view of the fills table, one file per UTC day, atomic and byte-identical on re-run."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ledger.export import SEED_LOG_KEYS


def trade_two_days(broker, clock) -> None:
    broker.submit_order("AAPL", "BUY", 10)
    clock.advance(hours=1)
    broker.submit_order("AAPL", "SELL", 4)
    clock.advance(days=1)
    broker.set_quote("AAPL", bid=151.0, ask=151.2)
    broker.submit_order("AAPL", "BUY", 2)


def test_export_writes_one_file_per_day_in_the_seed_format(broker, clock, tmp_path):
    trade_two_days(broker, clock)
    paths = broker.export_jsonl(tmp_path / "out")
    assert [p.name for p in paths] == ["2024-01-02.jsonl", "2024-01-03.jsonl"]
    day1 = [json.loads(line) for line in paths[0].read_text().splitlines()]
    assert [r["side"] for r in day1] == ["BUY", "SELL"]
    assert tuple(day1[0]) == SEED_LOG_KEYS
    assert day1[0]["timestamp"] == "2024-01-02T14:30:00+00:00"
    assert day1[0]["fill_price"] == 150.17505 and day1[0]["slippage_bps"] == 5.0
    fills = broker.get_fills()
    assert [r["order_id"] for r in day1] == [f["order_id"] for f in fills[:2]]


def test_export_is_byte_identical_when_rerun_and_leaves_no_temp_files(broker, clock, tmp_path):
    trade_two_days(broker, clock)
    first = {p.name: p.read_bytes() for p in broker.export_jsonl(tmp_path / "out")}
    second = {p.name: p.read_bytes() for p in broker.export_jsonl(tmp_path / "out")}
    assert first == second
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(first)


def test_export_since_selects_whole_days(broker, clock, tmp_path):
    trade_two_days(broker, clock)
    paths = broker.export_jsonl(tmp_path / "out", since=datetime(2024, 1, 3, 23, 0, tzinfo=UTC))
    assert [p.name for p in paths] == ["2024-01-03.jsonl"]
    with pytest.raises(ValueError, match="timezone-aware"):
        broker.export_jsonl(tmp_path / "out", since=datetime(2024, 1, 3))


def test_submitting_orders_writes_no_jsonl(broker, tmp_path):
    broker.submit_order("AAPL", "BUY", 1)
    assert not any(Path(tmp_path).rglob("*.jsonl"))


def test_get_fills_since_filters_in_sql_and_refuses_naive_or_non_utc(broker, clock):
    trade_two_days(broker, clock)
    since = datetime(2024, 1, 2, 15, 30, tzinfo=UTC)
    assert [f["side"] for f in broker.get_fills(since=since)] == ["SELL", "BUY"]
    from zoneinfo import ZoneInfo

    with pytest.raises(ValueError, match="must be in UTC"):  # the same instant, but not stated in UTC
        broker.get_fills(since=since.astimezone(ZoneInfo("America/New_York")))
    with pytest.raises(ValueError, match="timezone-aware"):
        broker.get_fills(since=datetime(2024, 1, 2))


def test_timestamps_come_back_utc_aware(broker):
    result = broker.submit_order("AAPL", "BUY", 1)
    assert result["timestamp"].tzinfo is not None and result["timestamp"].utcoffset().total_seconds() == 0
    order = broker.get_order(result["order_id"])
    assert order["timestamp"] == datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
    assert broker.get_quote("AAPL")["timestamp"] == datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


def test_naive_clock_is_refused(make_broker):
    with pytest.raises(ValueError, match="timezone-aware"):
        make_broker(clock=lambda: datetime(2024, 1, 2))
