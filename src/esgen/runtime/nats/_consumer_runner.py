"""The consumer runner: feeds a context's consumers from JetStream (being built)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from esgen.runtime._consumer import Consumer
from esgen.runtime._integration import Wire
from esgen.runtime._ports import EventStore
from esgen.runtime._records import Clock, utc_now

__all__ = ["ConsumerRunner"]

DEFAULT_SERVERS = "nats://127.0.0.1:4222"


class ConsumerRunner:
    def __init__(
        self,
        store: EventStore,
        consumers: Sequence[Consumer[Any, Any]],
        wires: Mapping[str, Wire],
        *,
        context: str,
        servers: str | Sequence[str] = DEFAULT_SERVERS,
        partitions: Sequence[int] | None = None,
        ack_wait: float = 30.0,
        clock: Clock = utc_now,
    ) -> None:
        raise NotImplementedError("the consumer runner is being built (issue 17)")

    def catch_up(self, idle: float = 0.5) -> int:
        raise NotImplementedError

    def run(
        self, stop: threading.Event, *, progress: Callable[[str, int], None] | None = None
    ) -> None:
        raise NotImplementedError

    def status(self) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError
