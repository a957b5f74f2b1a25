"""Column types that own the on-disk form of exact amounts and UTC timestamps."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import BigInteger, DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

from ledger.money import UNIT, from_scaled, to_scaled


def _decimal_or_none(value: int | None) -> Decimal | None:
    return None if value is None else UNIT * value  # from_scaled, inlined: called for every amount read


def _sqlite_utc_or_none(text: str | None) -> datetime | None:
    # Parsing with the offset appended gives the same aware datetime (tzinfo UTC) several times faster than
    # parsing and then replace(tzinfo=UTC).
    return None if text is None else datetime.fromisoformat(text + "+00:00")


class ScaledDecimal(TypeDecorator[Decimal]):
    """A Decimal stored as a 64-bit integer of millionths (column names end in ``_e6``).

    Integers are exact on every engine and ``SUM`` over them is exact; the ``v_*`` views divide by 1e6
    so auditors read human units. Values with more than six decimal places are refused, never rounded here:
    rounding is a ledger decision made once in ``ledger.money``.
    """

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> int | None:
        if value is None:
            return None
        return to_scaled(Decimal(value))

    def process_result_value(self, value: int | None, dialect: Dialect) -> Decimal | None:
        return None if value is None else from_scaled(value)

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[int | None], Decimal | None]:
        # One Python call per value: TypeDecorator's default wraps process_result_value in a second one, and a
        # read of thousands of rows spends most of its time decoding amounts.
        return _decimal_or_none


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime: ``timestamptz`` on PostgreSQL, ISO-ordered UTC text on SQLite.

    Naive datetimes are refused on the way in, so no local time can slip into the ledger unnoticed.
    """

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[datetime]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(DateTime(timezone=True))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: the ledger stores UTC-aware datetimes only")
        value = value.astimezone(UTC)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[object], datetime | None] | None:
        # SQLite keeps UTCDateTime's own text form: parse it in one call rather than through DateTime's
        # processor and then process_result_value.
        if dialect.name == "sqlite":
            return _sqlite_utc_or_none
        return super().result_processor(dialect, coltype)
