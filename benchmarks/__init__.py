"""Benchmarks of the ledger against references measured in the same run (run: ``python -m benchmarks.run``)."""
