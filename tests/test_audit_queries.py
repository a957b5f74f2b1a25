"""The ten audit queries of docs/schema.md, parsed from the document and run on a populated ledger.

Each query must return the rows written here (an independent statement of the scenario's numbers) and the
result table the document shows under it, on SQLite and on PostgreSQL alike.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ledger.db.engine import get_engine
from tests.test_views import populate_ledger

SCHEMA_DOC = Path(__file__).resolve().parent.parent / "docs" / "schema.md"
SECTION = "## Ten audit queries"

EXPECTED: dict[int, list[tuple[str, ...]]] = {
    1: [("AAPL", "3", "11", "1913.7525", "1.51795"), ("MSFT", "1", "4", "1001", "1.001")],
    2: [
        ("alice", "2024-01-02", "2", "2.002"),
        ("alice", "2024-01-03", "1", "0.043978"),
        ("alice", "2024-01-04", "1", "0.472972"),
        ("bob", "2024-01-02", "1", "0"),
        ("bob", "2024-01-03", "1", "0"),
    ],
    3: [
        ("alice", "AAPL", "SELL", "20.000000", "Insufficient shares: need 20, have 10"),
        (
            "alice", "MSFT", "BUY", "10000.000000",
            "Insufficient cash: need $2,505,002.50, have $97,520.52 available",
        ),
    ],
    4: [
        ("2024-01-02T14:30:00.000000Z", "NULL", "new", "resting: limit not marketable"),
        ("2024-01-04T16:00:00.000000Z", "new", "filled", "limit crossed by quote"),
    ],
    5: [("alice", "1", "97962288550", "97962288550", "0"), ("bob", "2", "9449000000", "9449000000", "0")],
    6: [
        ("2024-01-02", "0", "0"),
        ("2024-01-03", "38.935622", "38.935622"),
        ("2024-01-04", "0", "38.935622"),
    ],
    7: [("alice", "AAPL", "11", "11", "0"), ("alice", "MSFT", "4", "4", "0"), ("bob", "AAPL", "5", "5", "0")],
    8: [("alice", "10", "10", "5", "2"), ("alice", "5", "1", "2", "2"), ("bob", "0", "0", "3", "2")],
    9: [
        (
            "alice", "msft-take-profit", "MSFT", "SELL",
            "2.000000", "300.000000", "0.000000", "2.000000", "0.000000",
        ),
        ("bob", "bob-dip", "AAPL", "BUY", "1.000000", "100.000000", "100.000000", "0.000000", "100.000000"),
    ],
    10: [
        ("AAPL", "BUY", "2", "1.4725", "1.473972"),
        ("AAPL", "SELL", "1", "0.22", "0.043978"),
        ("MSFT", "BUY", "1", "1", "1.001"),
    ],
}


def parse_audit_queries(markdown: str) -> dict[int, tuple[str, str, list[tuple[str, ...]]]]:
    """Number -> (title, SQL, documented result rows) for each ``### N. title`` of the audit section."""
    section = markdown.split(SECTION, 1)[1].split("\n## ", 1)[0]
    queries = {}
    for match in re.finditer(r"^### (\d+)\. (.+?)\n(.*?)(?=^### |\Z)", section, re.S | re.M):
        number, title, body = int(match[1]), match[2].strip(), match[3]
        sql_blocks = re.findall(r"```sql\n(.*?)```", body, re.S)
        assert len(sql_blocks) == 1, f"query {number} should have exactly one sql block"
        after_sql = body.split("```", 2)[2]
        table = [line for line in after_sql.splitlines() if line.startswith("|")]
        rows = [tuple(cell.strip() for cell in line.strip("|").split("|")) for line in table[2:]]
        queries[number] = (title, sql_blocks[0].strip().rstrip(";"), rows)
    return queries


AUDIT_QUERIES = parse_audit_queries(SCHEMA_DOC.read_text(encoding="utf-8"))


def as_cell(value: Any) -> str:
    """A result value as the document prints it, the same for both engines' types."""
    if value is None:
        return "NULL"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    # REAL (SQLite) or NUMERIC (PostgreSQL): compared at the ledger's six decimals.
    number = Decimal(repr(round(float(value), 6))).normalize()
    return f"{number:f}" if number else "0"


def test_the_schema_document_has_ten_numbered_audit_queries():
    assert sorted(AUDIT_QUERIES) == list(range(1, 11))
    assert all(rows for _title, _sql, rows in AUDIT_QUERIES.values()), "every query shows its result"


@pytest.mark.parametrize("number", sorted(AUDIT_QUERIES), ids=lambda n: f"q{n}")
def test_audit_query_returns_the_documented_rows(number, make_broker, clock, db_url):
    populate_ledger(make_broker, clock)
    title, sql, documented = AUDIT_QUERIES[number]
    with get_engine(db_url).connect() as conn:
        rows = [tuple(as_cell(value) for value in row) for row in conn.exec_driver_sql(sql)]
    assert rows == EXPECTED[number], title
    assert rows == documented, f"docs/schema.md shows other rows for query {number} ({title})"
