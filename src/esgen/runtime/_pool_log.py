"""One warning per incident from the PostgreSQL connection pool, not one per connection.

When the server ends the pool's sessions (a restart, `pg_terminate_backend`), psycopg_pool
warns once for every dead connection it meets, and a busy process met hundreds. The first
warning of a kind passes; the same kind again within `QUIET` seconds of the last is
counted instead, and the count rides on the next one that passes.
"""

from __future__ import annotations

import logging
import threading
import time

__all__ = ["QUIET", "install"]

QUIET = 10.0
"""Seconds without a warning of a kind that end its incident."""

# The pool's per-connection warnings (psycopg_pool/pool.py), by their message templates.
_PER_CONNECTION = frozenset(
    {
        "discarding closed connection: %s",
        "discarding broken connection: %s",
        "error connecting in %r: %s",
        "closing returned connection: %s",
        "rolling back returned connection: %s",
        "error resetting connection: %s",
    }
)


class _OnePerIncident(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        kind = record.msg
        if record.levelno < logging.WARNING or kind not in _PER_CONNECTION:
            return True
        now = time.monotonic()
        with self._lock:
            last = self._last.get(kind)
            self._last[kind] = now
            if last is not None and now - last < QUIET:
                self._held[kind] = self._held.get(kind, 0) + 1
                return False
            held = self._held.pop(kind, 0)
        note = f"; {held} more like it in the last incident were not logged" if held else ""
        record.msg = (
            f"{record.getMessage()} (the same again within {QUIET:g} s is counted, "
            f"not logged{note})"
        )
        record.args = None
        return True


_installed: list[_OnePerIncident] = []
_install_lock = threading.Lock()


def install() -> None:
    """Put the filter on the pool's logger, once per process."""
    with _install_lock:
        if not _installed:
            _installed.append(_OnePerIncident())
            logging.getLogger("psycopg.pool").addFilter(_installed[0])
