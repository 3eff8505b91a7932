"""The relay: publishes a context's published events to JetStream, in the store's order.

The store is the outbox. The relay reads the global order after its checkpoint (kept in
the store's own database as `relay:<context>`), publishes each published event on its
subject (`Wire.subject`) with `message_headers`, many at a time on one connection, and
moves the checkpoint only up to the last event whose ack, and every earlier one's, came
back. Unpublished events move it without a message.

At least once: a crash between an ack and the checkpoint's commit publishes events again;
the broker drops them by `Nats-Msg-Id` within the stream's duplicate window, and
consumers' inboxes drop them for good.

In order per aggregate (indeed in the store's order): messages leave in order on one
connection, and every message of a window but the first carries
`Nats-Expected-Last-Msg-Id`, the previous event's id. If a message is lost (a stream
leader that dies, a dropped connection) the broker refuses the later ones rather than
store them ahead of it; the relay then sends again from the first unacknowledged event,
that one alone first. A window that failed for any other reason (no ack in time, no
stream) is resent the same way after a pause that doubles up to 5 s; the outage is
logged in one line, and the write side is untouched.

An event that cannot be decoded (unknown type, a version newer than this code, data that
does not validate) stops the relay with `RelayError` naming it: skipping it would lose
it for every consumer.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from nats.aio.msg import Msg

from esgen.runtime._errors import DecodeError
from esgen.runtime._finite import dump_json
from esgen.runtime._health import Problem
from esgen.runtime._integration import H_MSG_ID, Wire, message_headers
from esgen.runtime._ports import EventStore
from esgen.runtime._progress_store import ProgressStorage, progress_storage
from esgen.runtime._records import Clock, RecordedEvent, to_utc, utc_now
from esgen.runtime._registry import EventRegistry
from esgen.runtime.nats._connection import (
    BACKOFF_CAP,
    Backoff,
    NatsLink,
    StreamConflict,
    server_list,
)

__all__ = ["DEFAULT_SERVERS", "Relay", "RelayError", "RelayStatus"]

logger = logging.getLogger("esgen.runtime")

DEFAULT_SERVERS = "nats://127.0.0.1:4222"

H_EXPECTED_LAST_MSG_ID = "Nats-Expected-Last-Msg-Id"

Progress = Callable[[int, int], None]
"""Called after each committed checkpoint: (position reached, head position)."""

_WINDOW = 256
"""Messages in flight at most: enough to keep the connection busy, few enough that a
lost message costs little to send again."""
_ACK_TIMEOUT = 5.0
"""Seconds to wait for a window's oldest ack before sending again from it."""


_WRONG_LAST = "the broker's last message id is not the expected one"
_WRONG_LAST_CODE = 10070  # JSStreamWrongLastMsgIDErrF


class RelayError(RuntimeError):
    """The relay cannot go on: an event it cannot decode, or a stream it cannot use."""

    recorded: RecordedEvent | None = None
    """The event it could not decode, if that is what stopped it."""


@dataclass(frozen=True, slots=True)
class RelayStatus:
    """Where the relay is in the store's global order, and what last stopped it."""

    name: str
    position: int
    head: int
    lag_seconds: float
    """How long ago the oldest event not yet relayed was recorded; 0.0 when caught up."""
    problem: Problem | None = None
    """The last error that stopped the relay or held it back (an undecodable event, the
    broker unreachable); cleared when it next moves its checkpoint."""

    @property
    def behind(self) -> int:
        return max(0, self.head - self.position)

    def to_json(self) -> dict[str, Any]:
        """The stable form `esgen relay status --json` prints for monitoring."""
        return {
            "name": self.name,
            "position": self.position,
            "head": self.head,
            "behind": self.behind,
            "lag_seconds": self.lag_seconds,
            "problem": None if self.problem is None else self.problem.to_json(),
        }


@dataclass(frozen=True, slots=True)
class _Message:
    position: int
    event_id: str
    subject: str
    headers: dict[str, str]
    payload: bytes


_Page = tuple[list[_Message], int, "RelayError | None"]
"""A page's messages, the position they cover, and the error of an event that stopped it."""


class _Failed(Exception):
    """A window stopped before all its acks came back; why, for the outage line."""


class Relay:
    """Publishes the published events of one context's store to JetStream; see the module."""

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
        if page_size < 1:
            raise ValueError(f"page_size must be >= 1 (got {page_size})")
        unknown = sorted(t for t in published if t not in registry)
        if unknown:
            raise ValueError(
                f"the relay of {wire.context} publishes {', '.join(unknown)}, which the "
                "registry does not know"
            )
        self._store = store
        self._registry = registry
        self._wire = wire
        # Events stored under a former name of a renamed type are published as that type.
        self._published = dict(registry.by_stored_type(dict(published)))
        self._servers = server_list(servers)  # a bad list fails here, not as an outage
        self._name = name or f"esgen-relay-{wire.context}"
        self._page_size = page_size
        self._clock = clock
        self._checkpoint = f"relay:{wire.context}"
        self._storage: ProgressStorage = progress_storage(store)
        self._link: NatsLink | None = None
        self._stream_ready = False
        self._fresh = True  # the next message goes alone, without an expected last id
        self._last_id: str | None = None
        self._backoff = Backoff()
        self._had_problem: bool | None = None
        self.resent = 0
        """Messages sent again after a failed window (for the benchmark and tests)."""
        self.duplicates = 0
        """Acks saying the broker already had the message (sent before a crash)."""

    @property
    def wire(self) -> Wire:
        return self._wire

    @property
    def checkpoint_name(self) -> str:
        return self._checkpoint

    # -- the checkpoint ------------------------------------------------------------------

    def position(self) -> int:
        with self._storage.look() as unit:
            generations = unit.generations(self._checkpoint)
        return generations[1][0] if generations else 0

    def _commit(self, position: int) -> None:
        with self._storage.unit() as unit:
            unit.set_checkpoint(self._checkpoint, 1, position, active=True)
            if self._had_problem is not False:
                if unit.problem(self._checkpoint) is not None:
                    unit.set_problem(self._checkpoint, None)
                self._had_problem = False

    def _record(self, exc: BaseException, recorded: RecordedEvent | None) -> None:
        try:
            at = to_utc(self._clock(), "the relay clock")
            with self._storage.unit() as unit:
                unit.set_problem(self._checkpoint, Problem.of(exc, recorded, at).dumps())
            self._had_problem = True
        except Exception as failure:  # the store may be what failed
            logger.warning("relay %s: its error could not be recorded: %s", self._name, failure)

    # -- following the store -------------------------------------------------------------

    def catch_up(
        self, progress: Progress | None = None, *, stop: threading.Event | None = None
    ) -> int:
        """Publish every published event recorded since the checkpoint; returns how many
        messages were acknowledged. Waits out broker outages (retrying with backoff); with
        `stop`, returns early once it is set."""
        sent = 0
        # The page after the one in flight, read and made into messages while the broker
        # acknowledges: (the position it follows, its records, its messages).
        ahead: tuple[int, list[RecordedEvent], _Page | None] | None = None
        while stop is None or not stop.is_set():
            position = self.position()
            if ahead is not None and ahead[0] == position:
                _, records, page = ahead
            else:
                records = self._store.read_all(after=position, limit=self._page_size)
                page = self._messages(records) if records else None
            ahead = None
            if not records or page is None:
                return sent
            messages, end, error = page
            if error is not None and end <= position:
                # The first event left is the undecodable one; those before it are out.
                self._record(error, error.recorded)
                raise error
            if not messages:
                self._commit(end)
                self._report(progress, end)
                continue
            try:
                self._ready(stop)
                if stop is not None and stop.is_set():
                    break
                link = self._link
                assert link is not None
                flight = link.submit(functools.partial(self._send, link, messages))
                if error is None:
                    ahead = self._read_ahead(end)
                acked, failure = flight.result()
            except (RelayError, StreamConflict):
                raise
            except Exception as exc:
                # The broker is down or unreachable: nothing was lost (the checkpoint did
                # not move); send again from it after a pause.
                self._failed(exc)
                self._pause(stop)
                continue
            sent += acked
            # Every event before the first unacknowledged message is out; with all of
            # them acked, the whole page is.
            reached = end if acked == len(messages) else messages[acked].position - 1
            if reached > position:
                self._commit(reached)
                self._report(progress, reached)
            if failure is _WRONG_LAST:
                # The broker did not know the previous id (it restarted) or lost that
                # message: sending again from here, that one alone first, settles which.
                continue
            if failure is not None:
                if acked == 0:
                    self._failed(_Failed(failure))
                self._pause(stop)
                continue
            self._backoff.reset()
            if self._link is not None:
                self._link.outage.recovered()
        return sent

    def run(self, stop: threading.Event, *, progress: Progress | None = None) -> None:
        """Catch up, then follow new events until `stop` is set; broker outages are waited
        out (the store keeps every event meanwhile)."""
        wait: Callable[[int, float], bool] | None = getattr(self._store, "wait_for_events", None)
        while not stop.is_set():
            self.catch_up(progress, stop=stop)
            if stop.is_set():
                break
            if wait is not None:
                wait(self._store.head_position(), 0.25)
            else:
                stop.wait(0.25)

    def _report(self, progress: Progress | None, position: int) -> None:
        if progress is not None:
            progress(position, self._store.head_position())

    def _pause(self, stop: threading.Event | None) -> None:
        pause = self._backoff.next()
        if stop is None:
            threading.Event().wait(pause)
        else:
            stop.wait(pause)

    def _failed(self, exc: BaseException) -> None:
        self._fresh = True
        link = self._link
        if link is not None:
            link.outage.failed(exc, BACKOFF_CAP)
            if not link.connected:
                self._stream_ready = False
        if self._had_problem is not True:
            self._record(exc, None)

    # -- messages ------------------------------------------------------------------------

    def _messages(self, records: list[RecordedEvent]) -> _Page:
        """The messages of a page's published events, the position they cover, and the
        error of an event that cannot be decoded (the page then ends before it: what comes
        before it is still sent)."""
        out: list[_Message] = []
        wire = self._wire
        registry = self._registry
        context = wire.context
        for recorded in records:
            aggregate = self._published.get(recorded.event_type)
            if aggregate is None:
                continue
            try:
                event_type = registry.current_type(recorded.event_type)
                latest = registry.latest(event_type)
                if recorded.event_version == latest.event_version and (
                    event_type == recorded.event_type
                ):
                    # Stored in the latest version: checked, then sent as stored.
                    registry.decode(event_type, recorded.event_version, recorded.data)
                    data = recorded.data
                else:
                    event = registry.decode_recorded(recorded)
                    data = dump_json(event)
            except (DecodeError, ValueError) as exc:
                error = RelayError(
                    f"cannot relay {recorded.event_type} v{recorded.event_version} at position "
                    f"{recorded.position} (event {recorded.event_id}, stream "
                    f"{recorded.stream_id!r}): {str(exc).splitlines()[0]}"
                )
                error.__cause__ = exc
                error.recorded = recorded
                return out, recorded.position - 1, error
            published = recorded
            if event_type != recorded.event_type:
                published = _renamed(recorded, event_type)
            headers = message_headers(context, aggregate, published, latest.event_version)
            out.append(
                _Message(
                    recorded.position,
                    headers[H_MSG_ID],
                    wire.subject(aggregate, event_type, recorded.stream_id),
                    headers,
                    data.encode("utf-8"),
                )
            )
        return out, records[-1].position, None

    # -- the broker ----------------------------------------------------------------------

    def _ready(self, stop: threading.Event | None) -> None:
        link = self._link
        if link is None:
            link = self._link = NatsLink(self._servers, name=self._name)
        if not link.connect(stop):
            return
        if not self._stream_ready:
            try:
                link.ensure_stream(self._wire.stream, self._wire.all_subjects)
            except StreamConflict as exc:
                self._record(exc, None)
                raise
            self._stream_ready = True

    def _read_ahead(self, after: int) -> tuple[int, list[RecordedEvent], _Page | None] | None:
        try:
            records = self._store.read_all(after=after, limit=self._page_size)
            return after, records, self._messages(records) if records else None
        except Exception as exc:  # read again in its turn, where a failure is reported
            logger.debug("relay %s: reading ahead failed: %s", self._name, exc)
            return None

    async def _send(self, link: NatsLink, messages: list[_Message]) -> tuple[int, str | None]:
        """Publish `messages` in order, up to `_WINDOW` awaiting their acks: how many, from
        the first, were acknowledged, and why the next one was not (None: all were;
        `_WRONG_LAST`: the broker refused it for its expected last id)."""
        nc = link.client
        loop = asyncio.get_running_loop()
        inbox = nc.new_inbox()
        acks: dict[str, asyncio.Future[Msg]] = {}

        async def on_ack(msg: Msg) -> None:
            future = acks.get(msg.subject)
            if future is not None and not future.done():
                future.set_result(msg)

        subscription = await nc.subscribe(inbox + ".*", cb=on_ack)
        acked = 0
        failure: str | None = None
        pending: list[asyncio.Future[Msg]] = []
        try:
            index = 0
            while (index < len(messages) or pending) and failure is None:
                # The first message of a fresh session goes alone: the stream's last id is
                # not known (a restart, an earlier failure), so none is expected.
                limit = 1 if self._fresh and index == acked else _WINDOW
                while index < len(messages) and len(pending) < limit:
                    message = messages[index]
                    headers = message.headers
                    if not (self._fresh and index == acked) and self._last_id is not None:
                        headers = {**headers, H_EXPECTED_LAST_MSG_ID: self._last_id}
                    reply = f"{inbox}.{index}"
                    future: asyncio.Future[Msg] = loop.create_future()
                    acks[reply] = future
                    await nc.publish(message.subject, message.payload, reply, headers)
                    pending.append(future)
                    self._last_id = message.event_id
                    index += 1
                # The oldest first: the checkpoint moves over a prefix only.
                oldest = pending.pop(0)
                try:
                    # Acks come in bursts: most are in by the time they are looked at, and
                    # a timer per message would cost more than the publish.
                    msg = (
                        oldest.result()
                        if oldest.done()
                        else await asyncio.wait_for(oldest, _ACK_TIMEOUT)
                    )
                except TimeoutError:
                    failure = f"no ack within {_ACK_TIMEOUT:g} s"
                    break
                failure = _ack_failure(msg)
                if failure is not None:
                    break
                acked += 1
                # The server writes the key only for a duplicate (`"duplicate": true`).
                if b'"duplicate"' in msg.data:
                    self.duplicates += 1
                self._fresh = False
        finally:
            for future in pending:
                future.cancel()
            try:
                await subscription.unsubscribe()
            except Exception as exc:  # a dropped connection took the subscription along
                logger.debug("unsubscribing the relay's acks: %s", exc)
        if failure is not None:
            self._fresh = True
            self._last_id = messages[acked - 1].event_id if acked else None
            self.resent += index - acked
            logger.debug("relay %s: %s after %d acks; sending again", self._name, failure, acked)
        return acked, failure

    # -- what operators see --------------------------------------------------------------

    def status(self) -> RelayStatus:
        """Checkpoint, head, lag and last problem; a read transaction, so it answers at
        once while another process runs the relay."""
        with self._storage.look() as unit:
            generations = unit.generations(self._checkpoint)
            problem = unit.problem(self._checkpoint)
        position = generations[1][0] if generations else 0
        head = self._store.head_position()
        lag = 0.0
        oldest = self._store.read_all(after=position, limit=1)
        if oldest:
            now: datetime = to_utc(self._clock(), "the relay clock")
            lag = max(0.0, (now - oldest[0].recorded_at).total_seconds())
        return RelayStatus(
            name=self._checkpoint,
            position=position,
            head=max(head, position),
            lag_seconds=lag,
            problem=None if problem is None else Problem.loads(problem),
        )

    def close(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            link.close()

    def __enter__(self) -> Relay:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _ack_failure(msg: Msg) -> str | None:
    """Why a reply is not a good ack (None when it is one)."""
    headers = msg.headers or {}
    status = headers.get("Status")
    if status == "503":
        return "no JetStream stream answered (503 no responders)"
    if status:
        return f"status {status} {headers.get('Description', '')}".strip()
    try:
        ack = json.loads(msg.data)
    except ValueError:
        return f"an ack that is not JSON: {msg.data[:80]!r}"
    if not isinstance(ack, dict):
        return f"an ack that is not an object: {msg.data[:80]!r}"
    error = ack.get("error")
    if error is not None:
        if isinstance(error, dict) and error.get("err_code") == _WRONG_LAST_CODE:
            return _WRONG_LAST
        if isinstance(error, dict):
            return f"{error.get('description', error)} (code {error.get('err_code')})"
        return str(error)
    if "seq" not in ack:
        return f"an ack without a sequence: {msg.data[:80]!r}"
    return None


def _renamed(recorded: RecordedEvent, event_type: str) -> RecordedEvent:
    """The event as its current type: consumers know it by that name."""
    return RecordedEvent(
        position=recorded.position,
        stream_id=recorded.stream_id,
        stream_version=recorded.stream_version,
        event_type=event_type,
        event_version=recorded.event_version,
        data=recorded.data,
        event_id=recorded.event_id,
        metadata=recorded.metadata,
        recorded_at=recorded.recorded_at,
    )
