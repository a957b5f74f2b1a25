"""The ledger's tables as typed SQLAlchemy models: the schema Alembic migrations are checked against.

Amount columns end in ``_e6`` and hold integer millionths (see ``ledger.db.types.ScaledDecimal``);
the ``v_*`` views and ``docs/schema.md`` give them in human units. Every table that records trading
carries ``account_id`` and ``epoch``: ``reset`` starts a new epoch and leaves earlier ones queryable.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ledger.constants import FLOW_KINDS, OPEN_STATUSES
from ledger.db.types import ScaledDecimal, UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# The conditions of the partial indexes (migration 0008): they hold only the rows their queries look for, so an
# order that fills at once and a fill's cash movement write no page of them. SQLite uses a partial index only
# for a query that states its condition word for word: queries take these (ledger.queries.open_order,
# ledger.queries.cash_flow) and never bind the values as parameters.
OPEN_ORDER_CONDITION = "status IN ({})".format(", ".join(f"'{status}'" for status in OPEN_STATUSES))
CASH_FLOW_CONDITION = "kind IN ({})".format(", ".join(f"'{kind}'" for kind in FLOW_KINDS))

SYMBOL_LENGTH = 32
RUN_ID_LENGTH = 32
ORDER_ID_LENGTH = 32


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Account(Base):
    """One paper account. Its row is the lock every write transaction on the account takes first."""

    __tablename__ = "accounts"
    __table_args__ = (
        # Cash may go below zero only on margin (a multiplier above 1): the margin loan.
        CheckConstraint("cash_e6 >= 0 OR max_margin_multiplier_e6 > 1000000", name="cash_not_negative"),
        CheckConstraint("reserved_cash_e6 >= 0", name="reserved_cash_not_negative"),
        CheckConstraint("initial_cash_e6 >= 0", name="initial_cash_not_negative"),
        CheckConstraint(
            "max_margin_multiplier_e6 >= 1000000 AND max_margin_multiplier_e6 <= 4000000", name="margin_multiplier"
        ),
        CheckConstraint("fill_model IN ('full', 'displayed_size')", name="fill_model"),
        CheckConstraint("equity_mark_interval_s >= 0", name="equity_mark_interval"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    epoch: Mapped[int] = mapped_column(Integer, default=1)
    initial_cash_e6: Mapped[Decimal] = mapped_column(ScaledDecimal)
    cash_e6: Mapped[Decimal] = mapped_column(ScaledDecimal)
    reserved_cash_e6: Mapped[Decimal] = mapped_column(ScaledDecimal)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The latest broker time of any write on the account: broker time never goes backwards (a write stamped
    # earlier is refused), so a run cannot end before it started nor a fill precede its quote.
    clock_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Settings (``PaperBroker.configure``): see README "Shorts and margin", "Partial fills", "Time in force".
    shorting_enabled: Mapped[bool] = mapped_column(Boolean, server_default=false())
    max_margin_multiplier_e6: Mapped[Decimal] = mapped_column(ScaledDecimal, server_default="1000000")
    fill_model: Mapped[str] = mapped_column(String(16), server_default="full")
    calendar: Mapped[str] = mapped_column(String(16), server_default="XNYS")
    equity_mark_interval_s: Mapped[int] = mapped_column(Integer, server_default="60")


class Run(Base):
    """One session of trading on an account by one process; ``run_id=`` resumes it."""

    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(RUN_ID_LENGTH), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    slippage_bps_e6: Mapped[Decimal] = mapped_column(ScaledDecimal)
    fee_bps_e6: Mapped[Decimal] = mapped_column(ScaledDecimal)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)


class Order(Base):
    """Every order ever submitted, rejected ones included, with its current status."""

    __tablename__ = "orders"
    __table_args__ = (
        # A rejected order is kept as submitted, so its side or type may be the invalid value that got it rejected.
        CheckConstraint("status = 'rejected' OR side IN ('BUY', 'SELL')", name="side"),
        CheckConstraint(
            "status = 'rejected' OR order_type IN ('market', 'limit', 'stop', 'stop_limit', 'trailing_stop')",
            name="order_type",
        ),
        CheckConstraint(
            "status IN ('new', 'partially_filled', 'filled', 'canceled', 'expired', 'replaced', 'rejected')",
            name="status",
        ),
        CheckConstraint("status = 'rejected' OR time_in_force IN ('day', 'gtc', 'ioc', 'fok')", name="time_in_force"),
        CheckConstraint("status = 'rejected' OR qty_e6 > 0", name="qty_positive"),
        CheckConstraint("filled_qty_e6 >= 0", name="filled_qty_not_negative"),
        CheckConstraint("reserved_cash_e6 >= 0 AND reserved_qty_e6 >= 0", name="reservation_not_negative"),
        # A client_order_id names one live (non-rejected) order per account; rejections do not consume it.
        Index(
            "uq_orders_account_id_client_order_id",
            "account_id",
            "client_order_id",
            unique=True,
            sqlite_where=text("client_order_id IS NOT NULL AND status <> 'rejected'"),
            postgresql_where=text("client_order_id IS NOT NULL AND status <> 'rejected'"),
        ),
        # Open orders only: an account's (resting, due, counted) and a symbol's (a quote's resting-order lookup).
        Index("ix_orders_account_id_epoch_status", "account_id", "epoch", "status",
              sqlite_where=text(OPEN_ORDER_CONDITION), postgresql_where=text(OPEN_ORDER_CONDITION)),
        Index("ix_orders_account_id_epoch_id", "account_id", "epoch", "id"),  # the dashboard's newest-first pages
        Index("ix_orders_account_id_symbol_status", "account_id", "symbol", "status",
              sqlite_where=text(OPEN_ORDER_CONDITION), postgresql_where=text(OPEN_ORDER_CONDITION)),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[str] = mapped_column(String(ORDER_ID_LENGTH), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    epoch: Mapped[int] = mapped_column(Integer)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), index=True)
    client_order_id: Mapped[str | None] = mapped_column(String(128))
    symbol: Mapped[str] = mapped_column(String(SYMBOL_LENGTH))
    side: Mapped[str] = mapped_column(String(8))
    order_type: Mapped[str] = mapped_column(String(16))
    time_in_force: Mapped[str] = mapped_column(String(8), server_default="gtc")
    qty_e6: Mapped[Decimal | None] = mapped_column(ScaledDecimal)
    notional_e6: Mapped[Decimal | None] = mapped_column(ScaledDecimal)
    limit_price_e6: Mapped[Decimal | None] = mapped_column(ScaledDecimal)
    stop_price_e6: Mapped[Decimal | None] = mapped_column(ScaledDecimal)
    trail_price_e6: Mapped[Decimal | None] = mapped_column(ScaledDecimal)
    trail_percent_e6: Mapped[Decimal | None] = mapped_column(ScaledDecimal)
    # A trailing stop's high-water mark (sell) or low-water mark (buy), moved by each quote.
    hwm_e6: Mapped[Decimal | None] = mapped_column(ScaledDecimal)
    slippage_bps_e6: Mapped[Decimal] = mapped_column(ScaledDecimal)
    fee_bps_e6: Mapped[Decimal] = mapped_column(ScaledDecimal)
    status: Mapped[str] = mapped_column(String(16))
    reject_reason: Mapped[str | None] = mapped_column(Text)
    filled_qty_e6: Mapped[Decimal] = mapped_column(ScaledDecimal)
    reserved_cash_e6: Mapped[Decimal] = mapped_column(ScaledDecimal)
    reserved_qty_e6: Mapped[Decimal] = mapped_column(ScaledDecimal)
    filled_avg_price_e6: Mapped[Decimal | None] = mapped_column(ScaledDecimal)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # day orders: their session's close
    triggered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # stops: when the quote reached them
    filled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    canceled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    replaced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    replaces_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))
    replaced_by_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"))


class OrderEvent(Base):
    """Append-only history of every order status change (``from_status`` is NULL at creation)."""

    __tablename__ = "order_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)


class Fill(Base):
    """One execution of an order, with the quote it was priced from and the cash it moved."""

    __tablename__ = "fills"
    __table_args__ = (
        CheckConstraint("side IN ('BUY', 'SELL')", name="side"),
        CheckConstraint("qty_e6 > 0 AND price_e6 > 0", name="qty_price_positive"),
        CheckConstraint("fee_e6 >= 0", name="fee_not_negative"),
        Index("ix_fills_account_id_symbol_filled_at", "account_id", "symbol", "filled_at"),
        Index("ix_fills_account_id_filled_at", "account_id", "filled_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    epoch: Mapped[int] = mapped_column(Integer)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), index=True)
    symbol: Mapped[str] = mapped_column(String(SYMBOL_LENGTH))
    side: Mapped[str] = mapped_column(String(8))
    qty_e6: Mapped[Decimal] = mapped_column(ScaledDecimal)
    price_e6: Mapped[Decimal] = mapped_column(ScaledDecimal)
    notional_e6: Mapped[Decimal] = mapped_column(ScaledDecimal)
    fee_e6: Mapped[Decimal] = mapped_column(ScaledDecimal)
    realized_pnl_e6: Mapped[Decimal] = mapped_column(ScaledDecimal)
    slippage_bps_e6: Mapped[Decimal] = mapped_column(ScaledDecimal)
    fee_bps_e6: Mapped[Decimal] = mapped_column(ScaledDecimal)
    quote_bid_e6: Mapped[Decimal] = mapped_column(ScaledDecimal)
    quote_ask_e6: Mapped[Decimal] = mapped_column(ScaledDecimal)
    quote_at: Mapped[datetime] = mapped_column(UTCDateTime)
    filled_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Position(Base):
    """Holdings per account, epoch and symbol: quantity, cost basis (fees included) and realized P&L."""

    __tablename__ = "positions"
    __table_args__ = (
        # Negative quantities are short positions (accounts with shorting enabled); shares reserved by resting
        # sells come out of a long position only.
        CheckConstraint("reserved_qty_e6 >= 0 AND (reserved_qty_e6 = 0 OR reserved_qty_e6 <= qty_e6)",
                        name="reserved_within_qty"),
    )

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    epoch: Mapped[int] = mapped_column(Integer, primary_key=True)
    symbol: Mapped[str] = mapped_column(String(SYMBOL_LENGTH), primary_key=True)
    qty_e6: Mapped[Decimal] = mapped_column(ScaledDecimal)
    reserved_qty_e6: Mapped[Decimal] = mapped_column(ScaledDecimal)
    cost_basis_e6: Mapped[Decimal] = mapped_column(ScaledDecimal)
    realized_pnl_e6: Mapped[Decimal] = mapped_column(ScaledDecimal)
    # Totals of the position's fills, kept by every fill in the row it updates anyway (no extra page written):
    # the per-symbol totals audit reads them instead of summing the fills.
    fill_count: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    bought_qty_e6: Mapped[Decimal] = mapped_column(ScaledDecimal, server_default=text("0"))
    sold_qty_e6: Mapped[Decimal] = mapped_column(ScaledDecimal, server_default=text("0"))
    bought_notional_e6: Mapped[Decimal] = mapped_column(ScaledDecimal, server_default=text("0"))
    sold_notional_e6: Mapped[Decimal] = mapped_column(ScaledDecimal, server_default=text("0"))
    fees_e6: Mapped[Decimal] = mapped_column(ScaledDecimal, server_default=text("0"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DailyTotal(Base):
    """Totals of an account's fills per UTC day and symbol, kept by every fill (``v_daily_pnl`` reads them):
    one row per (account, epoch, day, symbol), so a daily P&L reads rows per day, not per fill."""

    __tablename__ = "daily_totals"
    # On SQLite the key is the table (WITHOUT ROWID): a fill's upsert writes one page, not a row and an index.
    __table_args__ = ({"sqlite_with_rowid": False},)

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    epoch: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    symbol: Mapped[str] = mapped_column(String(SYMBOL_LENGTH), primary_key=True)
    fill_count: Mapped[int] = mapped_column(Integer)
    bought_qty_e6: Mapped[Decimal] = mapped_column(ScaledDecimal)
    sold_qty_e6: Mapped[Decimal] = mapped_column(ScaledDecimal)
    bought_notional_e6: Mapped[Decimal] = mapped_column(ScaledDecimal)
    sold_notional_e6: Mapped[Decimal] = mapped_column(ScaledDecimal)
    fees_e6: Mapped[Decimal] = mapped_column(ScaledDecimal)
    realized_pnl_e6: Mapped[Decimal] = mapped_column(ScaledDecimal)


class CashMovement(Base):
    """Every change of an account's cash: the initial deposit of an epoch, one row per fill, deposits and
    withdrawals (positive and negative amounts)."""

    __tablename__ = "cash_movements"
    __table_args__ = (
        CheckConstraint("kind IN ('initial', 'fill', 'deposit', 'withdrawal')", name="kind"),
        Index("ix_cash_movements_account_id_epoch", "account_id", "epoch"),
        Index("ix_cash_movements_account_id_epoch_kind", "account_id", "epoch", "kind",  # deposits, withdrawals only
              sqlite_where=text(CASH_FLOW_CONDITION), postgresql_where=text(CASH_FLOW_CONDITION)),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    epoch: Mapped[int] = mapped_column(Integer)
    run_id: Mapped[str | None] = mapped_column(ForeignKey("runs.id"))
    kind: Mapped[str] = mapped_column(String(16))
    amount_e6: Mapped[Decimal] = mapped_column(ScaledDecimal)
    fill_id: Mapped[int | None] = mapped_column(ForeignKey("fills.id"), unique=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class EquityMark(Base):
    """The account marked to market at one broker time: at every fill, every replay bar, and on quote updates
    at most once per the account's ``equity_mark_interval_s``. The equity curve and drawdown read these."""

    __tablename__ = "equity_marks"
    __table_args__ = (Index("ix_equity_marks_account_id_epoch_at", "account_id", "epoch", "at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    epoch: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    cash_e6: Mapped[Decimal] = mapped_column(ScaledDecimal)
    long_value_e6: Mapped[Decimal] = mapped_column(ScaledDecimal)
    short_value_e6: Mapped[Decimal] = mapped_column(ScaledDecimal)
    equity_e6: Mapped[Decimal] = mapped_column(ScaledDecimal)


class JobLock(Base):
    """A long-running job (a replay) that holds an account: at most one holder per account and job.

    Taken and released in write transactions; ``host``/``pid`` name the holder so a lock left by a process that
    died can be recognised (same host, pid gone) and taken over; ``heartbeat_at`` is wall-clock time.
    """

    __tablename__ = "job_locks"

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    job: Mapped[str] = mapped_column(String(128), primary_key=True)
    holder: Mapped[str] = mapped_column(String(32))
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Quote(Base):
    """The last quote per account and symbol, so valuation and resting orders survive restarts."""

    __tablename__ = "quotes"
    __table_args__ = (CheckConstraint("bid_e6 > 0 AND ask_e6 >= bid_e6", name="sane_prices"),)

    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(SYMBOL_LENGTH), primary_key=True)
    bid_e6: Mapped[Decimal] = mapped_column(ScaledDecimal)
    ask_e6: Mapped[Decimal] = mapped_column(ScaledDecimal)
    bid_size_e6: Mapped[Decimal] = mapped_column(ScaledDecimal)
    ask_size_e6: Mapped[Decimal] = mapped_column(ScaledDecimal)
    # How much of the displayed sizes this account's fills have taken (fill model displayed_size): a quote's
    # size is consumed once, whatever number of transactions trade against it. A new quote starts at 0.
    bid_taken_e6: Mapped[Decimal] = mapped_column(ScaledDecimal, server_default="0")
    ask_taken_e6: Mapped[Decimal] = mapped_column(ScaledDecimal, server_default="0")
    quoted_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Bar(Base):
    """A cached historical OHLCV bar from a market-data source, so a re-run replays exactly the same data.

    Prices are rounded half-even to six decimals on the way in; volume is whole units (it never prices a fill).
    A re-fetch replaces the bars of the time range it covers. No OHLC consistency check: the cache keeps what
    the source delivered (vendors do ship the odd bar with high below close).
    """

    __tablename__ = "bars"

    symbol: Mapped[str] = mapped_column(String(SYMBOL_LENGTH), primary_key=True)
    interval: Mapped[str] = mapped_column(String(8), primary_key=True)
    ts: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    open_e6: Mapped[Decimal] = mapped_column(ScaledDecimal)
    high_e6: Mapped[Decimal] = mapped_column(ScaledDecimal)
    low_e6: Mapped[Decimal] = mapped_column(ScaledDecimal)
    close_e6: Mapped[Decimal] = mapped_column(ScaledDecimal)
    volume: Mapped[int | None] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(String(32))
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BarRange(Base):
    """A time range [range_start, range_end) for which ``bars`` holds everything the source had.

    Bars alone cannot tell a market holiday from a range never fetched; this record can, so the cache
    answers only for ranges it fully holds. Overlapping or touching ranges are merged on write.
    """

    __tablename__ = "bar_ranges"
    __table_args__ = (CheckConstraint("range_end > range_start", name="range_not_empty"),)

    symbol: Mapped[str] = mapped_column(String(SYMBOL_LENGTH), primary_key=True)
    interval: Mapped[str] = mapped_column(String(8), primary_key=True)
    range_start: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    range_end: Mapped[datetime] = mapped_column(UTCDateTime)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ApiKey(Base):
    """An API key of one account (or an admin key) for the service: the public ``key_id`` and a salted hash of the secret.

    The secret itself is never stored (a dump of the table reveals no usable credential); ``revoked_at`` set
    means the key no longer authenticates. See ``ledger.book.keys``.
    """

    __tablename__ = "api_keys"
    # An admin key (migration 0007) belongs to no account: it signs in to the dashboard and sees every account.
    __table_args__ = (CheckConstraint("(account_id IS NULL) = is_admin", name="admin_has_no_account"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32), unique=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    is_admin: Mapped[bool] = mapped_column(Boolean, server_default=false())
    secret_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
