"""Brokers: the Broker protocol, the venue factory and the database-backed PaperBroker."""

from ledger.brokers.interface import Broker, get_broker, normalize_order
from ledger.brokers.paper import PaperBroker

__all__ = ["Broker", "get_broker", "PaperBroker", "normalize_order"]
