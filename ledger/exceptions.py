"""The ledger's exception hierarchy: every error a caller can act on is a LedgerError."""

from __future__ import annotations


class LedgerError(Exception):
    """Base class of every error raised on purpose by paper-ledger."""


class ConfigError(LedgerError):
    """A configuration value (argument, environment, config file) is unusable."""


class BrokerError(LedgerError):
    """A broker operation failed."""


class OrderRejectedError(BrokerError):
    """An order was refused and changed no balance.

    A single submit records the refused order (status ``rejected``, with the reason) before raising; a refused
    ``submit_orders`` batch writes nothing at all and names the offending order's ``index``.
    """

    def __init__(self, symbol: str, reason: str):
        self.symbol = symbol
        self.reason = reason
        super().__init__(f"Order rejected for {symbol}: {reason}")


class InsufficientFundsError(OrderRejectedError):
    """A buy needs more cash than the account has available."""


class OrderNotFoundError(BrokerError):
    """No order with this id exists on the account."""

    def __init__(self, order_id: str):
        self.order_id = order_id
        super().__init__(f"Order not found: {order_id}")


class OrderNotReplaceableError(BrokerError):
    """The order cannot be replaced: it is no longer open (filled, canceled, expired, replaced or rejected)."""


class PositionNotFoundError(BrokerError):
    """The account holds no position in the symbol (nothing to close)."""


class QuoteNotFoundError(BrokerError):
    """No quote has been stored for the symbol."""

    def __init__(self, symbol: str):
        self.symbol = symbol
        super().__init__(f"No quote for {symbol}")


class InvalidQuoteError(BrokerError):
    """A quote is not usable: NaN, infinite, non-positive prices or bid above ask."""


class CashMovementError(BrokerError):
    """A deposit or withdrawal was refused (a withdrawal beyond available cash, an amount past the bounds)."""


class ClientOrderIdConflictError(BrokerError):
    """A client_order_id was reused with different order parameters."""


class ClockWentBackwardsError(LedgerError):
    """A write on an account was stamped earlier than the account's clock (``accounts.clock_at``)."""


class AccountMismatchError(LedgerError):
    """Settings given for an existing account or run disagree with what is stored."""


class DatabaseError(LedgerError):
    """The database cannot be opened or written (missing directory, read-only, corrupt, full)."""


class SchemaTooNewError(DatabaseError):
    """The database was migrated by a newer paper-ledger; this code refuses to touch it."""


class ExportError(LedgerError):
    """An export could not write its files; the message names the file, and no partial output is left."""


class DataProviderError(LedgerError):
    """Market data could not be fetched or parsed; the message names the symbol."""

    def __init__(self, symbol: str, reason: str):
        self.symbol = symbol
        self.reason = reason
        super().__init__(f"Market data for {symbol}: {reason}")
