"""The ledger's use cases (submit, fill, cancel, quote update, reset, verify) and the rules they apply."""
