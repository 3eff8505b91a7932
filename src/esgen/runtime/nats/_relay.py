"""The relay: publishes a context's published events to JetStream (being built)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from esgen.runtime._integration import Wire
from esgen.runtime._ports import EventStore
from esgen.runtime._records import Clock, utc_now
from esgen.runtime._registry import EventRegistry

__all__ = ["Relay"]

DEFAULT_SERVERS = "nats://127.0.0.1:4222"


class Relay:
    def __init__(
        self,
        store: EventStore,
        registry: EventRegistry,
        wire: Wire,
        published: Mapping[str, str],
        *,
        servers: str | Sequence[str] = DEFAULT_SERVERS,
        name: str | None = None,
        page_size: int = 500,
        clock: Clock = utc_now,
    ) -> None:
        raise NotImplementedError("the relay is being built (issue 17)")

    def catch_up(self, progress: Callable[[int, int], None] | None = None) -> int:
        raise NotImplementedError

    def run(
        self, stop: threading.Event, *, progress: Callable[[int, int], None] | None = None
    ) -> None:
        raise NotImplementedError

    def status(self) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError
