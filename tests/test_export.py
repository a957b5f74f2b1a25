"""JSONL export: an export view of the fills table, one file per UTC day, atomic and byte-identical on re-run."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ledger.exceptions import ExportError

# The seed's daily log record (shared/spec/broker-layer-plan.md, PaperBroker.submit_order's ``fill``), in order.
SEED_FIELDS = (
    "order_id", "timestamp", "symbol", "side", "qty", "fill_price", "notional", "fee", "slippage_bps", "fee_bps",
)


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
    assert tuple(day1[0]) == SEED_FIELDS
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


def test_export_includes_the_fills_of_every_epoch_after_a_reset(broker, clock, tmp_path):
    broker.submit_order("AAPL", "BUY", 10)
    first_epoch_order = broker.get_fills()[0]["order_id"]
    clock.advance(days=1)
    broker.reset()
    broker.set_quote("AAPL", bid=151.0, ask=151.2)
    broker.submit_order("AAPL", "BUY", 2)
    assert [f["order_id"] for f in broker.get_fills()] != [first_epoch_order]  # the protocol shows epoch 2 only

    paths = broker.export_jsonl(tmp_path / "out")

    assert [p.name for p in paths] == ["2024-01-02.jsonl", "2024-01-03.jsonl"]
    exported = [json.loads(line)["order_id"] for p in paths for line in p.read_text().splitlines()]
    assert exported == [first_epoch_order, broker.get_fills()[0]["order_id"]]


def test_a_failed_export_names_the_day_file_and_leaves_no_partial_output(broker, clock, tmp_path):
    trade_two_days(broker, clock)
    out = tmp_path / "out"
    (out / "2024-01-03.jsonl").mkdir(parents=True)  # the second day's file cannot be written

    with pytest.raises(ExportError, match=f"cannot write {out / '2024-01-03.jsonl'}") as raised:
        broker.export_jsonl(out)

    assert ".tmp" not in str(raised.value)
    assert sorted(p.name for p in out.iterdir()) == ["2024-01-03.jsonl"]  # no first day, no temporary file


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_exported_files_honour_the_umask(broker, tmp_path, umask):
    broker.submit_order("AAPL", "BUY", 1)
    previous = os.umask(umask)
    try:
        [path] = broker.export_jsonl(tmp_path / "out")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
