"""Live wake-ups for `PostgresEventStore.wait_for_events`: one LISTEN connection per store.

A daemon thread holds a dedicated connection (LISTEN needs a session of its own, which a
pool cannot lend) and counts notifications. Waiters use the count to know *when* to look
again; what they see is always read from the table, so a lost or duplicated notification
can cost a query, never an event. While the connection is down the thread keeps
reconnecting and waiters fall back to polling.

Each notification carries the position its append committed (appends commit in position
order). On a channel no other schema shares, the position of the notification that woke a
waiter tells it that there is something after its own without asking the server again: one
round trip less between a commit and a tailing reader's read. Only the latest notification
counts, and only for a waiter it woke: a position sent by hand, or one from before the
schema was dropped and made again, answers one wait at most.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

__all__ = ["Listener"]

logger = logging.getLogger("esgen.runtime.postgres")

# How long the thread blocks on the socket before it looks at the stop flag again; bounds
# how long close() waits for it.
_TICK = 0.5
_MAX_BACKOFF = 5.0


class Listener:
    def __init__(
        self,
        conninfo: str,
        connect_kwargs: dict[str, Any],
        channel: str,
        *,
        trust_positions: bool = False,
    ) -> None:
        """`trust_positions`: the channel is this store's alone (not cut to PostgreSQL's
        63 bytes and so shared with schemas of the same long prefix), so the position a
        notification carries is one of this store's."""
        self._conninfo = conninfo
        self._connect_kwargs = connect_kwargs
        self._channel = channel
        self._trust_positions = trust_positions
        self._changed = threading.Condition()
        self._generation = 0
        """Bumped on every notification and every (re)connection: a waiter that saw another
        value must look at the table again."""
        self._listening = False
        self._stopping = False
        self._latest = 0
        """The position the latest bump carried (0: a reconnection, or not trusted)."""
        self._wakers: set[Callable[[], None]] = set()
        """Called after every bump, from the listening thread: how asyncio waiters, which
        cannot block on the condition, learn of one (each hands its loop the news)."""
        self._thread = threading.Thread(
            target=self._run, name=f"esgen-listen-{channel}", daemon=True
        )
        self._thread.start()

    @property
    def generation(self) -> int:
        with self._changed:
            return self._generation

    @property
    def listening(self) -> bool:
        return self._listening

    @property
    def stopping(self) -> bool:
        return self._stopping

    def latest(self) -> tuple[int, int]:
        """The generation and the position its notification carried (0 if none)."""
        with self._changed:
            return self._generation, self._latest

    def wait(self, seen: int, timeout: float) -> None:
        """Return when the generation is no longer `seen`, the listener stops, or after
        `timeout` seconds, whichever comes first."""
        with self._changed:
            self._changed.wait_for(
                lambda: self._generation != seen or self._stopping, timeout=timeout
            )

    def add_waker(self, waker: Callable[[], None]) -> None:
        with self._changed:
            self._wakers.add(waker)

    def remove_waker(self, waker: Callable[[], None]) -> None:
        with self._changed:
            self._wakers.discard(waker)

    def stop(self) -> None:
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
            wakers = list(self._wakers)
        for waker in wakers:
            waker()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=_TICK * 4)

    def _bump(self, listening: bool, position: int = 0) -> None:
        with self._changed:
            self._listening = listening
            self._generation += 1
            self._latest = position
            self._changed.notify_all()
            wakers = list(self._wakers)
        for waker in wakers:  # outside the lock: a waker may take locks of its own
            waker()

    def _position(self, payload: str) -> int:
        # Anything but a position (a notification sent by hand) is only a wake-up. ASCII
        # digits only: str.isdigit() also takes "²", which int() refuses.
        if not self._trust_positions or len(payload) > 18:
            return 0
        if not (payload.isascii() and payload.isdigit()):
            return 0
        return int(payload)

    def _run(self) -> None:
        backoff = 0.1
        while not self._stopping:
            try:
                with psycopg.connect(
                    self._conninfo, autocommit=True, **self._connect_kwargs
                ) as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
                    # Appends committed before LISTEN took effect sent nobody a notification:
                    # the bump makes every waiter look at the table once more.
                    self._bump(listening=True)
                    backoff = 0.1
                    while not self._stopping:
                        for notification in conn.notifies(timeout=_TICK):
                            self._bump(True, self._position(notification.payload))
            except psycopg.Error as exc:
                if self._stopping:
                    break
                logger.warning(
                    "LISTEN %s: %s; polling until reconnected (retry in %.1f s)",
                    self._channel,
                    str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
                    backoff,
                )
                self._bump(listening=False)
                with self._changed:
                    self._changed.wait_for(lambda: self._stopping, timeout=backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF)
        self._listening = False
