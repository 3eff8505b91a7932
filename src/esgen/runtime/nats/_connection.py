"""One NATS connection for a synchronous runner: its own event loop on a thread, connected
with retry and backoff, and the JetStream streams a context needs.

nats-py is asynchronous; the relay and the consumer runner are called from plain threads
(the command line, a service's worker). The connection lives on an event loop running on
a daemon thread of its own, so its pings and reconnects go on between the runner's calls
(while it waits for the store), and the runner submits coroutines to it with `call`.

An outage is said once: a warning when the broker is first found unreachable ("NATS at X
unreachable: <reason>; retrying every N s") and one when it answers again (a warning too,
so that whoever sees the first line also sees the second); the attempts between are
logged at debug level, never as a traceback each.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

import nats
from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import NotFoundError, ServiceUnavailableError

__all__ = [
    "DUPLICATE_WINDOW",
    "Backoff",
    "NatsLink",
    "Outage",
    "StreamConflict",
    "jetstream_missing",
    "server_list",
    "stopped_within",
]

logger = logging.getLogger("esgen.runtime")

T = TypeVar("T")

DUPLICATE_WINDOW = 120.0
"""Seconds the broker remembers a `Nats-Msg-Id`. A relay that crashed after publishing
and before committing its checkpoint publishes the same events again when it restarts;
within this window the broker drops them, so the stream holds each event once. Past it
(a relay down for longer, with its checkpoint behind the stream), a resent event is
stored twice and consumers' inboxes drop the second. nats-server's default is also two
minutes; it is set explicitly so that a stream made by hand with none still gets one."""

BACKOFF_FIRST = 0.1
BACKOFF_CAP = 5.0
RECONNECT_WAIT = 1
"""Seconds between nats-py's own attempts to reconnect a connection it lost."""


class StreamConflict(RuntimeError):
    """A JetStream stream of the expected name exists but holds other subjects."""


def server_list(servers: str | Sequence[str]) -> list[str]:
    """URLs from one URL, a comma-separated list (as `--servers a,b` or an environment
    variable gives them) or a sequence; ValueError when none is left."""
    items = [servers] if isinstance(servers, str) else list(servers)
    urls = [part.strip() for item in items for part in item.split(",") if part.strip()]
    if not urls:
        raise ValueError("no NATS server given (expected a URL such as nats://127.0.0.1:4222)")
    return urls


class Backoff:
    """Pauses between attempts: `first` seconds, doubling up to `cap`."""

    def __init__(self, first: float = BACKOFF_FIRST, cap: float = BACKOFF_CAP) -> None:
        self.first = first
        self.cap = cap
        self.current = first

    def next(self) -> float:
        pause = self.current
        self.current = min(self.cap, self.current * 2)
        return pause

    def reset(self) -> None:
        self.current = self.first


class Outage:
    """Says once that the broker is unreachable, and once that it is back."""

    def __init__(self, where: str, what: str = "NATS") -> None:
        self.where = where
        self.what = what
        self.down = False

    def failed(self, reason: object, retry_every: float = BACKOFF_CAP) -> None:
        if self.down:
            logger.debug("%s at %s still unreachable: %s", self.what, self.where, reason)
            return
        self.down = True
        logger.warning(
            "%s at %s unreachable: %s; retrying every %g s",
            self.what, self.where, _reason(reason), retry_every,
        )  # fmt: skip

    def recovered(self) -> None:
        if self.down:
            self.down = False
            logger.warning("%s at %s is reachable again", self.what, self.where)


def jetstream_missing(exc: BaseException) -> bool:
    """Whether a JetStream API call failed because nothing answers the API on a server
    that is connected: JetStream not enabled there (`nats-server` without `-js`), or a
    cluster with no JetStream leader for the moment. Not a connection failure: the
    connection is up, so the link says nothing of it."""
    return isinstance(exc, ServiceUnavailableError | NoRespondersError)


def _reason(reason: object) -> str:
    if isinstance(reason, BaseException):
        text = str(reason) or type(reason).__name__
        return text.splitlines()[0]
    return str(reason)


class NatsLink:
    """A NATS connection on an event loop of its own thread; `connect` retries until the
    broker answers (or `stop` is set), and nats-py reconnects by itself after that."""

    def __init__(
        self,
        servers: str | Sequence[str],
        *,
        name: str | None = None,
        connect_timeout: float = 2.0,
    ) -> None:
        self.servers = server_list(servers)
        self.name = name
        self.outage = Outage(", ".join(self.servers))
        self._connect_timeout = connect_timeout
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"nats {name or ''}".strip(), daemon=True
        )
        self._thread.start()
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._closed = False
        self._closing = False
        self._last_error: Exception | None = None
        # A runner may ask from two threads at once (a consumer runner's status while it
        # runs): one connection is made, and the other caller takes it.
        self._connecting = threading.Lock()

    # -- running coroutines on the link's loop -----------------------------------------

    def call(self, factory: Callable[[], Awaitable[T]], timeout: float | None = None) -> T:
        """Run a coroutine on the link's loop and wait for its result."""
        future = self.submit(factory)
        try:
            return future.result(timeout)
        except BaseException:
            future.cancel()
            raise

    def submit(self, factory: Callable[[], Awaitable[T]]) -> Future[T]:
        """Start a coroutine on the link's loop; its result comes in the future."""
        if self._closed:
            raise RuntimeError("the NATS link is closed")

        async def run() -> T:
            return await factory()

        return asyncio.run_coroutine_threadsafe(run(), self._loop)

    @property
    def client(self) -> Client:
        if self._nc is None:
            raise RuntimeError("not connected to NATS yet (call connect first)")
        return self._nc

    @property
    def jetstream(self) -> JetStreamContext:
        if self._js is None:
            raise RuntimeError("not connected to NATS yet (call connect first)")
        return self._js

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    @property
    def connected_url(self) -> str:
        """The server the connection is on, or the list given while there is none."""
        url = None if self._nc is None else self._nc.connected_url
        return url.geturl() if url is not None else ", ".join(self.servers)

    # -- connecting --------------------------------------------------------------------

    def connect(
        self,
        stop: threading.Event | None = None,
        *,
        retry: bool = True,
        failed: Callable[[BaseException], None] | None = None,
    ) -> bool:
        """Connect, retrying with backoff while the broker is down or unreachable; False
        only if `stop` was set first, or (with `retry=False`, for a look that must answer
        at once) if the one attempt failed. Once connected, nats-py reconnects on its own.
        `failed` is told why each attempt failed (a runner records it for its status)."""
        backoff = Backoff()
        while True:
            if stop is not None and stop.is_set():  # asked to stop before an attempt
                return False
            with self._connecting:
                if self._nc is not None and not self._nc.is_closed:
                    return True
                try:
                    # Bounded: with reconnects allowed forever, nats-py's first connect
                    # would retry on its own forever too, without a word; cancelled, it
                    # is retried here with backoff, and the outage said once.
                    timeout = self._connect_timeout * (len(self.servers) + 1)
                    self._nc = self.call(self._open, timeout)
                    self._js = self._nc.jetstream()
                    self.outage.recovered()
                    return True
                except Exception as exc:
                    # nats-py's own last error says why (refused, unknown host) where the
                    # bound above only says that time ran out.
                    why = self._last_error or exc
                    self.outage.failed(why, BACKOFF_CAP)
            if failed is not None:
                failed(why)
            if not retry:
                return False
            pause = backoff.next()
            if stop is None:
                threading.Event().wait(pause)
            elif stop.wait(pause):
                return False

    async def until_connected(self, stop: threading.Event) -> bool:
        """On the link's loop: wait while nats-py reconnects (the outage is said by the
        link); False if `stop` was set first."""
        backoff = Backoff()
        while not self.connected:
            if await stopped_within(stop, backoff.next()):
                return False
        return True

    async def _open(self) -> Client:
        outage = self.outage

        async def on_error(exc: Exception) -> None:
            # nats-py's default logs a traceback per failed attempt; one line is enough.
            self._last_error = exc
            logger.debug("NATS: %s", _reason(exc))

        async def on_disconnected() -> None:
            if not self._closing:
                outage.failed("the connection was lost", RECONNECT_WAIT)

        async def on_reconnected() -> None:
            outage.recovered()

        return await nats.connect(
            self.servers,
            name=self.name,
            error_cb=on_error,
            disconnected_cb=on_disconnected,
            reconnected_cb=on_reconnected,
            allow_reconnect=True,
            # Forever: the runner keeps its place in the store, and the broker comes back.
            max_reconnect_attempts=-1,
            reconnect_time_wait=RECONNECT_WAIT,
            connect_timeout=max(1, round(self._connect_timeout)),
        )

    # -- streams -----------------------------------------------------------------------

    def ensure_stream(
        self,
        name: str,
        subjects: str,
        *,
        replicas: int = 1,
        duplicate_window: float = DUPLICATE_WINDOW,
        timeout: float = 10.0,
    ) -> bool:
        """`stream_ready` from a thread other than the link's."""
        return self.call(
            lambda: self.stream_ready(
                name, subjects, replicas=replicas, duplicate_window=duplicate_window
            ),
            timeout,
        )

    async def stream_ready(
        self,
        name: str,
        subjects: str,
        *,
        replicas: int = 1,
        duplicate_window: float = DUPLICATE_WINDOW,
    ) -> bool:
        """Create the stream if it is missing (True when it did); leave one that already
        holds `subjects` alone (its replicas, limits and window are the operator's);
        `StreamConflict` if one of that name holds other subjects. On the link's loop."""
        js = self.jetstream
        try:
            info = await js.stream_info(name)
        except NotFoundError:
            config = StreamConfig(
                name=name,
                subjects=[subjects],
                storage=StorageType.FILE,
                num_replicas=replicas,
                duplicate_window=duplicate_window,
            )
            await js.add_stream(config)
            logger.info("created the JetStream stream %s for %s", name, subjects)
            return True
        held = list(info.config.subjects or [])
        if subjects not in held:
            raise StreamConflict(
                f"the JetStream stream {name} holds the subjects {held}, not {subjects!r}: "
                "another application uses that name (or the prefix changed); delete or "
                "rename that stream, or run with another --prefix"
            )
        return False

    # -- closing -----------------------------------------------------------------------

    def close(self) -> None:
        if self._closed:
            return
        self._closing = True  # a disconnect from here on is no outage
        nc = self._nc
        if nc is not None and not nc.is_closed:
            try:
                self.call(nc.close, 5.0)
            except Exception as exc:  # closing a dead connection: nothing more to say
                logger.debug("closing the NATS connection: %s", _reason(exc))
        self._closed = True
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5.0)
        if not self._thread.is_alive():
            self._loop.close()

    def __enter__(self) -> NatsLink:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


async def stopped_within(stop: threading.Event, seconds: float) -> bool:
    """Sleep up to `seconds` on an event loop, ending early when `stop` (set from another
    thread) is; True if it was."""
    step = 0.05
    waited = 0.0
    while waited < seconds:
        if stop.is_set():
            return True
        await asyncio.sleep(min(step, seconds - waited))
        waited += step
    return stop.is_set()
