"""Driving real child Python processes from a test: spawn, wait for "ready", start them together, collect.

Children are ``python -m tests.workers.<module>`` run from the repository root. They talk on their stdout, one
JSON object per line, and wait for a ``go`` line on their stdin when they must start together; nothing here
sleeps to synchronise. A watchdog kills a child that outlives ``deadline`` seconds so a hung child fails the test
instead of hanging the suite. stderr goes to a file (a pipe nobody reads could fill and block the child).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DEADLINE_SECONDS = 300


class Child:
    """One child process: line-oriented JSON on stdout, commands on stdin, stderr kept for failure messages."""

    def __init__(self, module: str, *args: str, deadline: float = DEADLINE_SECONDS):
        self.module = module
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", f"tests.workers.{module}", *args],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        self._watchdog = threading.Timer(deadline, self.proc.kill)
        self._watchdog.daemon = True
        self._watchdog.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stderr(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    def read(self) -> dict[str, Any]:
        """The child's next message; fails with its stderr when it ended instead."""
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.endswith("\n"):
            self.proc.wait()
            raise AssertionError(
                f"{self.module} (pid {self.pid}) ended with code {self.proc.returncode} before its next message:\n"
                + self.stderr()[-4000:]
            )
        return json.loads(line)

    def expect(self, event: str) -> dict[str, Any]:
        message = self.read()
        assert message.get("event") == event, f"{self.module}: expected {event!r}, got {message!r}"
        return message

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def finish(self) -> dict[str, Any]:
        """Wait for a clean exit (code 0, else fail with stderr) and return the last message ("result")."""
        out, _ = self.proc.communicate()
        self._watchdog.cancel()
        assert self.proc.returncode == 0, (
            f"{self.module} (pid {self.pid}) exited with code {self.proc.returncode}:\n" + self.stderr()[-6000:]
        )
        lines = [line for line in out.splitlines() if line.strip()]
        assert lines, f"{self.module} printed no result"
        return json.loads(lines[-1])

    def kill(self) -> list[dict[str, Any]]:
        """SIGKILL the child; return the complete messages it had already written (they were acknowledged)."""
        self.proc.kill()
        out, _ = self.proc.communicate()
        self._watchdog.cancel()
        # A message is acknowledged once its whole line reached the pipe; a torn last line was not.
        return [json.loads(line) for line in out.splitlines(keepends=True) if line.endswith("\n")]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()
        self._watchdog.cancel()
        self._stderr.close()


def start_together(children: Iterable[Child]) -> None:
    """Wait until every child reports ready, then release them all at once through their stdin."""
    children = list(children)
    for child in children:
        child.expect("ready")
    for child in children:
        child.send("go")
