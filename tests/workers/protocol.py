"""The child side of tests/workers/harness.py: one JSON message per stdout line, and a start gate on stdin."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any


def emit(event: str, **fields: Any) -> None:
    """Write one message and flush it, so the parent sees it the moment the call it reports has returned."""
    sys.stdout.write(json.dumps({"event": event, **fields}, default=_jsonable) + "\n")
    sys.stdout.flush()


def wait_for_go() -> None:
    """Tell the parent we are ready, then block until it releases every child at once."""
    emit("ready")
    line = sys.stdin.readline()
    if line.strip() != "go":
        raise SystemExit(f"expected 'go' on stdin, got {line!r}")


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {value!r}")
