"""The relay: publishes a context's published events to JetStream, in the store's order.

The store is the outbox. The relay reads the global order after its checkpoint (kept in
the store's own database as `relay:<context>`), publishes each published event on its
subject (`Wire.subject`) with `message_headers`, many at a time on one connection, and
moves the checkpoint only up to the last event whose ack, and every earlier one's, came
back (committed at most every `_COMMIT_EVERY` seconds while acks stream in). Unpublished
events move it without a message. A catch-up runs as one `_Pump` on the connection's
event loop: reading, encoding and acks on one thread (see docs/relay.md, Figures).

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

An event that cannot be decoded (a type this code does not know, published or not: newer
code may publish it; a version newer than this code; data that does not validate) stops
the relay with `RelayError` naming it: skipping it would lose it for every consumer.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from nats.js.errors import ServiceUnavailableError

from esgen.runtime._errors import DecodeError
from esgen.runtime._finite import dump_json
from esgen.runtime._health import Problem
from esgen.runtime._integration import H_MSG_ID, Wire, message_headers, partition_of
from esgen.runtime._messages import Event
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

T = TypeVar("T")

DEFAULT_SERVERS = "nats://127.0.0.1:4222"

H_EXPECTED_LAST_MSG_ID = "Nats-Expected-Last-Msg-Id"

Progress = Callable[[int, int], None]
"""Called after each committed checkpoint: (position reached, head position)."""

_WINDOW = 256
"""Messages in flight at most: enough to keep the connection busy, few enough that a
lost message costs little to send again."""
_ACK_TIMEOUT = 5.0
"""Seconds to wait for a window's oldest ack before sending again from it."""
_PARTITIONS_KEPT = 65536
"""Stream ids whose partition the relay keeps at most (then it forgets them all)."""
_COMMIT_EVERY = 0.2
"""Seconds between checkpoint commits at most while acks stream in: a commit per window
would cost a few per cent of the throughput; a crash sends this much again (the broker
drops the copies)."""


_WRONG_LAST = "the broker's last message id is not the expected one"
_NO_STREAM = "no JetStream stream answered (503 no responders)"
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
class _Kind:
    """A published stored type and version: where and how its events are sent."""

    aggregate: str
    event_type: str
    """The current name (a renamed type's events are sent under it)."""
    version: int
    """The latest version, which the payload is sent in."""
    as_stored: bool
    """Stored in the latest version under the current name: the payload is the stored
    text, once it decodes."""
    decode: Callable[[str], Event]
    subjects: list[str | None]
    """Per partition, made when first needed."""


class _Message:
    """One event's message; its headers get the expected last id when it is sent."""

    __slots__ = ("event_id", "headers", "payload", "position", "subject")

    def __init__(
        self, position: int, event_id: str, subject: str, headers: dict[str, str], payload: bytes
    ) -> None:
        self.position = position
        self.event_id = event_id
        self.subject = subject
        self.headers = headers
        self.payload = payload


class _Failed(Exception):
    """A window stopped before all its acks came back; why, for the outage line."""


class _NoJetStream(Exception):
    """The broker answers but JetStream does not (a server run without it): no outage of
    the connection, so it is said in a line of its own."""


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
        self._stream_lost = False  # a 503 ack: the stream is looked for, made again if gone
        self._no_jetstream = False  # said once, until JetStream answers again
        self._fresh = True  # the next message goes alone, without an expected last id
        self._last_id: str | None = None
        self._backoff = Backoff()
        self._had_problem: bool | None = None
        self._kinds: dict[tuple[str, int], _Kind] = {}
        self._unpublished: set[str] = set()
        """Stored types the registry knows and the context does not publish."""
        self._partitions: dict[str, int] = {}
        """Stream id -> partition, for the streams seen lately (a checksum saved per
        event: an aggregate's events come in runs)."""
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
        while stop is None or not stop.is_set():
            position = self.position()
            records = self._store.read_all(after=position, limit=self._page_size)
            if not records:
                return sent
            # The page's first published event, made into its message here: an event that
            # cannot be decoded stops the relay before it looks for the broker.
            first: _Message | None = None
            rest = 0
            try:
                for rest, recorded in enumerate(records, 1):  # noqa: B007  # used below
                    first = self._message(recorded)
                    if first is not None:
                        break
            except RelayError as error:
                assert error.recorded is not None
                if error.recorded.position - 1 > position:
                    self._commit(error.recorded.position - 1)  # the unpublished before it
                self._record(error, error.recorded)
                raise
            if first is None:
                # Nothing to publish: the checkpoint moves without the broker.
                self._commit(records[-1].position)
                self._report(progress, records[-1].position)
                continue
            try:
                self._ready(stop)
                if stop is not None and stop.is_set():
                    break
                link = self._link
                assert link is not None
                pump = _Pump(self, link, position, first, records, rest, progress, stop)
                acked, failure = _wait(link.submit(pump.run))
            except (RelayError, StreamConflict):
                raise
            except _StoreFailed as exc:
                raise exc.error from None
            except _NoJetStream as exc:
                self._fresh = True
                if not self._no_jetstream:
                    self._no_jetstream = True
                    logger.warning("%s; retrying every %g s", exc, BACKOFF_CAP)
                if self._had_problem is not True:
                    self._record(exc, None)
                self._pause(stop)
                continue
            except Exception as exc:
                # The broker is down or unreachable: nothing was lost (the checkpoint is
                # behind every unacknowledged event); send again from it after a pause.
                self._failed(exc)
                self._pause(stop)
                continue
            sent += acked
            if failure is _WRONG_LAST:
                # The broker did not know the previous id (it restarted) or lost that
                # message: sending again from here, that one alone first, settles which.
                continue
            if failure is _NO_STREAM:
                # Nothing took the message: the stream was deleted (it is made again) or
                # JetStream went away on that server (said so when the stream is looked
                # for). Not an unreachable broker: it answered.
                self._stream_ready = False
                self._stream_lost = True
                self._pause(stop)
                continue
            if failure is not None:
                if acked == 0:
                    self._failed(_Failed(failure))
                self._pause(stop)
                continue
            self._backoff.reset()
            link.outage.recovered()
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

    def _message(self, recorded: RecordedEvent) -> _Message | None:
        """The message of a published event (None for an unpublished one); `RelayError`
        if it cannot be decoded."""
        kind = self._kinds.get((recorded.event_type, recorded.event_version))
        if kind is None:
            if recorded.event_type not in self._published:
                if recorded.event_type not in self._unpublished:
                    self._known_or_stop(recorded)
                return None
            kind = self._kind(recorded)
        try:
            event = kind.decode(recorded.data)
        except Exception:
            # The registry's own path, for the error it names (or, if it decodes after
            # all, the event).
            event = self._decoded(recorded)
        # Stored in the latest version under the current name: checked, then sent as
        # stored; otherwise upcast and sent in the latest version.
        data = recorded.data if kind.as_stored else dump_json(event)
        published = (
            recorded
            if kind.event_type == recorded.event_type
            else (_renamed(recorded, kind.event_type))
        )
        headers = message_headers(self._wire.context, kind.aggregate, published, kind.version)
        # The subject depends on the stream only through its partition: one string per
        # partition and kind, checked once.
        stream_id = recorded.stream_id
        partition = self._partitions.get(stream_id)
        if partition is None:
            if len(self._partitions) >= _PARTITIONS_KEPT:
                self._partitions.clear()
            partition = self._partitions[stream_id] = partition_of(stream_id, self._wire.partitions)
        subject = kind.subjects[partition]
        if subject is None:
            subject = self._wire.subject(kind.aggregate, kind.event_type, recorded.stream_id)
            kind.subjects[partition] = subject
        return _Message(
            recorded.position, headers[H_MSG_ID], subject, headers, data.encode("utf-8")
        )

    def _known_or_stop(self, recorded: RecordedEvent) -> None:
        """Remember an unpublished type the registry knows; `RelayError` naming the event
        for one it does not. Newer code (a rolling deploy) may record, and publish, a type
        this code has never heard of: passing over it would move the checkpoint past an
        event that every consumer would then miss for good."""
        registry = self._registry
        if recorded.event_type in registry or recorded.event_type in registry.renamed:
            self._unpublished.add(recorded.event_type)
            return
        error = RelayError(
            f"cannot relay {recorded.event_type} v{recorded.event_version} at position "
            f"{recorded.position} (event {recorded.event_id}, stream {recorded.stream_id!r}): "
            f"the type is unknown to this code (recorded by a newer version? deploy it "
            "to the relay too); stopped before it so that no consumer misses it"
        )
        error.recorded = recorded
        raise error

    def _kind(self, recorded: RecordedEvent) -> _Kind:
        """What every published event of this stored type and version has in common;
        `RelayError` if the registry cannot decode it (an unknown version)."""
        registry = self._registry
        try:
            event_type = registry.current_type(recorded.event_type)
            version = registry.latest(event_type).event_version
            decode = registry.raw_decoder(recorded.event_type, recorded.event_version)
        except (DecodeError, ValueError):
            self._decoded(recorded)  # raises the error naming the event
            raise  # not reached: the registry refuses it there too
        kind = _Kind(
            self._published[recorded.event_type],
            event_type,
            version,
            recorded.event_version == version and event_type == recorded.event_type,
            decode,
            [None] * self._wire.partitions,
        )
        self._kinds[(recorded.event_type, recorded.event_version)] = kind
        return kind

    def _decoded(self, recorded: RecordedEvent) -> Event:
        """The event decoded by the registry, or `RelayError` naming it."""
        try:
            return self._registry.decode_recorded(recorded)
        except (DecodeError, ValueError) as exc:
            error = RelayError(
                f"cannot relay {recorded.event_type} v{recorded.event_version} at position "
                f"{recorded.position} (event {recorded.event_id}, stream "
                f"{recorded.stream_id!r}): {str(exc).splitlines()[0]}"
            )
            error.__cause__ = exc
            error.recorded = recorded
            raise error from exc

    # -- the broker ----------------------------------------------------------------------

    def _ready(self, stop: threading.Event | None) -> None:
        link = self._link
        if link is None:
            link = self._link = NatsLink(self._servers, name=self._name)
        if not link.connect(stop, failed=self._unreachable):
            return
        if not self._stream_ready:
            try:
                created = link.ensure_stream(self._wire.stream, self._wire.all_subjects)
            except StreamConflict as exc:
                self._record(exc, None)
                raise
            except (ServiceUnavailableError, NoRespondersError) as exc:
                raise _NoJetStream(
                    f"JetStream is not enabled on {_server_of(link)} (its API does not answer)"
                ) from exc
            if self._no_jetstream:
                self._no_jetstream = False
                logger.warning("JetStream answers again on %s", _server_of(link))
            if created and self._stream_lost:
                logger.warning(
                    "the JetStream stream %s is missing: created again (for %s)",
                    self._wire.stream, self._wire.all_subjects,
                )  # fmt: skip
            self._stream_lost = False
            self._stream_ready = True

    def _unreachable(self, why: BaseException) -> None:
        """A failed connect: recorded for `status` at once (the link says it in its line),
        and cleared by the next checkpoint moved."""
        self._fresh = True
        if self._had_problem is not True:
            self._record(_Failed(f"NATS at {', '.join(self._servers)} unreachable: {why}"), None)

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


class _StoreFailed(Exception):
    """The store (or a progress callback) failed inside the pump, on the link's loop: the
    caller raises `error` as it is, since it is no broker outage to wait out."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def _wait(future: Future[T]) -> T:
    """The pump's result; an interruption of the waiting thread (Ctrl-C) cancels the pump
    at its next await (never inside a checkpoint's commit, which does not await)."""
    try:
        return future.result()
    except BaseException:
        future.cancel()
        raise


class _Pump:
    """One catch-up's traffic with the broker, on the link's event loop: it reads the
    store's pages after the first one itself, makes each event into its message just
    before sending it (the broker works on the ones in flight meanwhile), keeps up to
    `_WINDOW` in flight across pages (no pause at a page's end), and commits the
    checkpoint over the acknowledged prefix at most every `_COMMIT_EVERY` seconds while
    acks stream in, and when it ends.

    Everything runs on the one loop thread: the store's reads, the messages' encoding and
    the acks would otherwise take turns at the interpreter lock with the caller's thread.
    It ends when the store has nothing more (or holds an undecodable event, whose
    predecessors it sends first; the caller then meets it and reports it), when `stop`
    is set (after what it has read), or at the first message the broker did not
    acknowledge: `run` returns how many were acked and why the next one was not (None:
    all were; `_WRONG_LAST`: its expected last id)."""

    def __init__(
        self,
        relay: Relay,
        link: NatsLink,
        position: int,
        first: _Message,
        records: list[RecordedEvent],
        rest: int,
        progress: Progress | None,
        stop: threading.Event | None,
    ) -> None:
        self.relay = relay
        self.link = link
        self.committed = position
        self.queued: deque[_Message | RecordedEvent] = deque([first])
        self.queued.extend(records[rest:])
        self.covered = records[-1].position
        """The position the pages read so far reach (published events or not)."""
        self.exhausted = False
        """No page to read any more: the store had none, or an undecodable event came."""
        self.progress = progress
        self.stop = stop

    async def run(self) -> tuple[int, str | None]:
        relay = self.relay
        nc = self.link.client
        loop = asyncio.get_running_loop()
        inbox = nc.new_inbox()
        acks: dict[str, asyncio.Future[Msg]] = {}

        async def on_ack(msg: Msg) -> None:
            future = acks.pop(msg.subject, None)
            if future is not None and not future.done():
                future.set_result(msg)

        subscription = await nc.subscribe(inbox + ".*", cb=on_ack)
        queued = self.queued
        make = relay._message
        flight: deque[tuple[_Message, asyncio.Future[Msg]]] = deque()
        watchdog = loop.create_task(_watch(flight))
        acked = since_commit = serial = 0
        last_commit = loop.time()
        failure: str | None = None
        try:
            while True:
                if not self.exhausted and len(queued) < _WINDOW:
                    self._read()
                # The first message of a fresh session goes alone: the stream's last id is
                # not known (a restart, an earlier failure), so none is expected.
                limit = 1 if relay._fresh else _WINDOW
                while queued and len(flight) < limit:
                    item = queued.popleft()
                    if isinstance(item, _Message):
                        message = item
                    else:
                        try:
                            made = make(item)
                        except RelayError:
                            self._stop_at(item)
                            break
                        if made is None:
                            continue  # not published
                        message = made
                    if not relay._fresh and relay._last_id is not None:
                        # Each message is sent once per pump: its headers are its own.
                        message.headers[H_EXPECTED_LAST_MSG_ID] = relay._last_id
                    reply = f"{inbox}.{serial}"
                    serial += 1
                    future: asyncio.Future[Msg] = loop.create_future()
                    acks[reply] = future
                    # In flight before it is sent: a publish that fails keeps the
                    # checkpoint before it.
                    flight.append((message, future))
                    await nc.publish(message.subject, message.payload, reply, message.headers)
                    relay._last_id = message.event_id
                if not flight:
                    if self.exhausted or (self.stop is not None and self.stop.is_set()):
                        break
                    continue  # every event read is out: read on
                # The oldest first: the checkpoint moves over a prefix only. The watchdog
                # fails it if no ack comes in time.
                try:
                    msg = await flight[0][1]
                except TimeoutError:
                    failure = f"no ack within {_ACK_TIMEOUT:g} s"
                    break
                data = msg.data
                # A plain ack, `{"stream":"X","seq":N}`, seen without parsing: `"error":`
                # cannot hide inside a JSON string (a quote there is escaped).
                if not (
                    msg.headers is None
                    and data[:10] == b'{"stream":'
                    and b'"error":' not in data
                    and b'"seq":' in data
                ):
                    failure = _ack_failure(msg)
                    if failure is not None:
                        break
                flight.popleft()
                acked += 1
                # The server writes the key only for a duplicate (`"duplicate": true`).
                if b'"duplicate"' in data:
                    relay.duplicates += 1
                relay._fresh = False
                since_commit += 1
                if since_commit >= _WINDOW and loop.time() - last_commit >= _COMMIT_EVERY:
                    self._commit(self._reached(flight))
                    since_commit = 0
                    last_commit = loop.time()
        except _StoreFailed:
            raise
        except Exception:
            # The broker went away mid-window: what was acknowledged stays acknowledged.
            self._settle(flight)
            raise
        finally:
            watchdog.cancel()
            if flight:
                # Whether the broker stored what was in flight is unknown (a failure, the
                # store's or the broker's, or a cancel): the next message goes alone.
                relay._fresh = True
            for _, future in flight:
                future.cancel()
            try:
                await subscription.unsubscribe()
            except Exception as exc:  # a dropped connection took the subscription along
                logger.debug("unsubscribing the relay's acks: %s", exc)
        if failure is not None:
            self._settle(flight)
            logger.debug("relay %s: %s after %d acks; sending again", relay._name, failure, acked)
            return acked, failure
        self._commit(self._reached(flight))
        return acked, None

    def _stop_at(self, recorded: RecordedEvent) -> None:
        """At an undecodable event, nothing more is read or sent: what came before it
        goes out, the checkpoint stops just before it, and the caller meets it again."""
        self.queued.clear()
        self.covered = recorded.position - 1
        self.exhausted = True

    def _read(self) -> None:
        """The next page, behind the events queued."""
        relay = self.relay
        if self.stop is not None and self.stop.is_set():
            self.exhausted = True
            return
        try:
            records = relay._store.read_all(after=self.covered, limit=relay._page_size)
        except Exception as exc:
            raise _StoreFailed(exc) from exc
        if not records:
            self.exhausted = True
            return
        self.queued.extend(records)
        self.covered = records[-1].position

    def _reached(self, flight: deque[tuple[_Message, asyncio.Future[Msg]]]) -> int:
        """Where the checkpoint may go: just before the first event not acknowledged yet,
        or, with none left, as far as the pages read reach."""
        if flight:
            return flight[0][0].position - 1
        if self.queued:
            return self.queued[0].position - 1
        return self.covered

    def _settle(self, flight: deque[tuple[_Message, asyncio.Future[Msg]]]) -> None:
        """After a failed window: the checkpoint over what was acknowledged, and the next
        session fresh (its first message alone, expecting no last id)."""
        relay = self.relay
        relay._fresh = True
        relay.resent += len(flight)
        if flight:
            try:
                self._commit(flight[0][0].position - 1)
            except _StoreFailed as exc:  # the broker's failure is the one to report
                logger.debug("relay %s: committing after a failure: %s", relay._name, exc)

    def _commit(self, position: int) -> None:
        if position <= self.committed:
            return
        try:
            self.relay._commit(position)
            self.committed = position
            self.relay._report(self.progress, position)
        except Exception as exc:
            raise _StoreFailed(exc) from exc


async def _watch(flight: deque[tuple[_Message, asyncio.Future[Msg]]]) -> None:
    """Fails the oldest message in flight with TimeoutError once it has waited
    `_ACK_TIMEOUT` seconds for its ack (give or take a tenth): one timer per pump, where
    a timeout per awaited ack would cost about as much as the publish."""
    step = _ACK_TIMEOUT / 10
    oldest: asyncio.Future[Msg] | None = None
    waited = 0.0
    while True:
        await asyncio.sleep(step)
        head = flight[0][1] if flight else None
        if head is None or head is not oldest:
            oldest, waited = head, 0.0
            continue
        waited += step
        if waited >= _ACK_TIMEOUT and not head.done():
            head.set_exception(TimeoutError())


def _server_of(link: NatsLink) -> str:
    """The URL of the server the link is connected to (the list when it is not)."""
    try:
        url = link.client.connected_url
    except RuntimeError:
        url = None
    if url is None:
        return ", ".join(link.servers)
    return f"{url.scheme}://{url.netloc}"


def _ack_failure(msg: Msg) -> str | None:
    """Why a reply is not a good ack (None when it is one)."""
    headers = msg.headers or {}
    status = headers.get("Status")
    if status == "503":
        return _NO_STREAM
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
