"""The HTTP service: the ledger as Alpaca's Trading API v2 (``paper-ledger serve``).

app.py (factory, middleware), errors.py (every error body), auth.py (the three Alpaca schemes), state.py (one
PaperBroker per account per worker), wire.py (the Alpaca wire models), routers/ (one module per resource).
Handlers are thin: they parse, call the library, and render; the service keeps no state of its own.
"""
