"""The consumer runner: feeds a context's consumers from the JetStream streams of the
contexts they subscribe to (docs/consumers.md tells the whole story).

- One durable pull consumer per (consumer, upstream, partition), or per (consumer,
  upstream) when no partitions are chosen, with explicit acks and at most one message in
  flight (`max_ack_pending=1`): a message is delivered only after the one before it was
  acknowledged, and a redelivery (after `ack_wait`, or a nak) comes before anything
  later, so each aggregate's events are handled in their order, across crashes.
- Each message: decoded with the upstream's registry as this context knows it (upcast
  to the latest version), then in ONE transaction of the consumer's store: its id goes in
  the inbox (a redelivery finds it there and changes nothing), the handler changes rows;
  commit; only then the ack.
- A message that cannot be decoded goes to the consumer's dead-letter subject with the
  reason and is acknowledged; a handler that raises is not (it is a bug to fix, and
  later events of the aggregate must wait for it): the transaction rolls back, the error
  is recorded as the consumer's problem, and the message is nak'ed to come back later.

nats-py is asyncio; the runner's API is not. Its connection is a `NatsLink` (shared with
the relay: connecting with backoff, one line per outage, streams), whose event loop runs
on a thread of its own; the runner runs everything there, the store's transactions
included (one message at a time, so a SQLite store sees one writer from this process).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.client import JetStreamContext
from nats.js.errors import BadRequestError, NotFoundError
from pydantic import ValidationError

from esgen.runtime._consumer import Consumer, ConsumerNeedsReplay
from esgen.runtime._errors import AggregateDefinitionError, DecodeError
from esgen.runtime._health import Problem
from esgen.runtime._integration import (
    H_CONTEXT,
    H_DEAD_LETTER_REASON,
    H_MSG_ID,
    H_ORIGINAL_SUBJECT,
    MessageError,
    Wire,
    dead_letter_stream,
    dead_letter_subject,
    recorded_from_message,
)
from esgen.runtime._ports import EventStore
from esgen.runtime._progress_store import ProgressStorage, is_looking, progress_storage
from esgen.runtime._readmodel import Rows
from esgen.runtime._records import Clock, RecordedEvent, to_utc, utc_now
from esgen.runtime.nats._connection import (
    BACKOFF_CAP,
    Backoff,
    NatsLink,
    jetstream_missing,
    server_list,
    stopped_within,
)

__all__ = ["ConsumerRunner", "ConsumerStatus", "DeadLetterFailed", "DurableLost", "durable_name"]

logger = logging.getLogger("esgen.runtime")

DEFAULT_SERVERS = "nats://127.0.0.1:4222"

# How long one fetch waits under run() before it looks at `stop` again.
_FETCH_WAIT = 1.0
# Seconds a quiet durable goes without being looked up on the broker (it may be gone).
_CHECK_EVERY = 5.0
# Delays before a message whose handler raised comes back: doubled per failed delivery.
_RETRY_FIRST = 1.0
_RETRY_MAX = 60.0

_NAME = re.compile(r"^[A-Za-z0-9_-]+$")

Outcome = Literal["handled", "duplicate", "skipped", "dead", "failed"]

ConsumerProgress = Callable[[str, int], None]
"""Called after each message a consumer handled: (consumer name, messages it handled
in this run so far)."""


class DurableLost(RuntimeError):
    """A consumer's durable vanished from the broker (deleted, or its stream deleted) and
    could not be created again yet; recorded as the consumer's problem meanwhile."""


class DeadLetterFailed(RuntimeError):
    """An undecodable message could not be published to the dead-letter stream (the broker
    is up): recorded as the consumer's problem, and the message comes back to try again."""


def durable_name(context: str, consumer: str, upstream: str, partition: int | None) -> str:
    """The JetStream durable of one consumer on one upstream (and partition): the same in
    every process, so processes running it share its place in the stream."""
    for what, value in (("context", context), ("consumer", consumer), ("upstream", upstream)):
        if not _NAME.match(value):
            raise ValueError(f"{what} {value!r} cannot be part of a JetStream consumer name")
    part = "all" if partition is None else f"p{partition}"
    return f"esgen-{context}-{consumer}-{upstream}-{part}"


@dataclass(frozen=True, slots=True)
class _Durable:
    consumer: Consumer[Any, Any]
    upstream: str
    wire: Wire
    partition: int | None
    name: str
    subject: str
    methods: Mapping[str, str]
    """Event type as sent (former names of renamed types included) -> handler method."""


@dataclass(frozen=True, slots=True)
class ConsumerStatus:
    """What `esgen consumers status` shows of one consumer."""

    name: str
    handled: int
    """Messages it has handled in this store (its inbox)."""
    pending: int | None
    """Messages its durables hold that it has not acknowledged yet; None when the broker
    could not say (see `broker`)."""
    last_handled: datetime | None
    problem: Problem | None
    """The last error its handler (or the store) raised; cleared by the next message it
    handles."""
    durables: tuple[str, ...]
    broker: str | None = None
    """Why `pending` is unknown: the broker unreachable, a durable not created yet."""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "handled": self.handled,
            "pending": self.pending,
            "last_handled": None if self.last_handled is None else self.last_handled.isoformat(),
            "problem": None if self.problem is None else self.problem.to_json(),
            "durables": list(self.durables),
            "broker": self.broker,
        }


class ConsumerRunner:
    """Runs a context's consumers on JetStream; a context manager (`close()` at the end)."""

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
        names = [c.name for c in consumers]
        if len(set(names)) != len(names):
            raise AggregateDefinitionError(f"consumer names must be unique: {names}")
        if ack_wait <= 0:
            raise ValueError(f"ack_wait must be above 0 seconds (got {ack_wait})")
        if partitions is not None and not partitions:
            raise ValueError("partitions is empty: give at least one, or None for all")
        self._context = context
        self._servers = server_list(servers)  # a bad list fails here, not as an outage
        self._ack_wait = ack_wait
        self._clock = clock
        self._store = store
        self._consumers = {c.name: c for c in consumers}
        self._durables = self._plan(context, consumers, wires, partitions)
        self._storage: ProgressStorage = progress_storage(store)
        self._handled: dict[str, int] = dict.fromkeys(names, 0)
        self._dead_letter_ready: set[str] = set()
        self._waiting: set[str] = set()  # streams said to be missing, once each
        self._jetstream_down = False  # said once per outage (see _jetstream_missing)
        self._link: NatsLink | None = None
        self._progress: ConsumerProgress | None = None
        if not is_looking():
            self._set_up(consumers)

    @staticmethod
    def _plan(
        context: str,
        consumers: Sequence[Consumer[Any, Any]],
        wires: Mapping[str, Wire],
        partitions: Sequence[int] | None,
    ) -> list[_Durable]:
        durables: list[_Durable] = []
        for consumer in consumers:
            upstreams = sorted(set(consumer.upstream_of.values()))
            for upstream in upstreams:
                wire = wires.get(upstream)
                if wire is None:
                    raise AggregateDefinitionError(
                        f"consumer {consumer.name!r} handles events of {upstream!r}, but no "
                        f"wire is given for it (wires: {', '.join(sorted(wires)) or 'none'})"
                    )
                registry = consumer.subscriptions.get(upstream)
                if registry is None:
                    raise AggregateDefinitionError(
                        f"consumer {consumer.name!r} handles events of {upstream!r} but has no "
                        "registry of its published events (subscriptions)"
                    )
                own = {
                    event.event_type: method
                    for event, method in consumer.handlers.items()
                    if consumer.upstream_of.get(event) == upstream
                }
                methods = registry.by_stored_type(own)
                # A partition named twice is one durable, followed once.
                chosen: Sequence[int | None] = (
                    [None] if partitions is None else sorted(set(partitions))
                )
                for partition in chosen:
                    subject = (
                        wire.all_subjects
                        if partition is None
                        else wire.partition_subjects(partition)
                    )
                    durables.append(
                        _Durable(
                            consumer,
                            upstream,
                            wire,
                            partition,
                            durable_name(context, consumer.name, upstream, partition),
                            subject,
                            methods,
                        )
                    )
        return durables

    def _set_up(self, consumers: Sequence[Consumer[Any, Any]]) -> None:
        """Each consumer's read-model table, as a projection's is made."""
        with self._storage.unit() as unit:
            for consumer in consumers:
                generations = unit.generations(consumer.name)
                if not generations:
                    unit.set_checkpoint(consumer.name, 1, 0, active=True)
                    unit.create_table(consumer.table, 1)
                    unit.activate(consumer.table, 1)
                    continue
                generation = _active(generations, consumer.name)
                if unit.layout(consumer.name, generation) != consumer.table.layout:
                    raise ConsumerNeedsReplay(consumer.name)
                unit.ensure_indexes(consumer.table, generation)

    @property
    def consumers(self) -> Mapping[str, Consumer[Any, Any]]:
        return self._consumers

    @property
    def durables(self) -> list[str]:
        return [d.name for d in self._durables]

    # -- the API ----------------------------------------------------------------------

    def catch_up(self, idle: float = 0.5, *, stop: threading.Event | None = None) -> int:
        """Handle messages until none has arrived for `idle` seconds on any durable, or
        until `stop` is set (the message in hand is finished first); returns how many were
        handled (duplicates, skipped and dead letters not counted).

        A broker that cannot be reached is waited for (retrying with backoff, said in one
        line), as long as `stop` is not set; a stream that does not exist yet has nothing
        to catch up with. A handler that raises leaves its message to come back later
        (see `status().problem`).
        """
        if idle <= 0:
            raise ValueError(f"idle must be above 0 seconds (got {idle})")
        before = sum(self._handled.values())
        self._serve(threading.Event() if stop is None else stop, idle)
        return sum(self._handled.values()) - before

    def run(self, stop: threading.Event, *, progress: ConsumerProgress | None = None) -> None:
        """Handle messages as they arrive until `stop` is set (the message in hand is
        finished first); through broker outages, which are retried with backoff."""
        self._progress = progress
        try:
            self._serve(stop, None)
        finally:
            self._progress = None

    def status(self) -> list[ConsumerStatus]:
        """Each consumer's messages handled (from its inbox), pending (from the broker,
        if it answers within a few seconds), last handled time and problem."""
        found: dict[str, tuple[int, str | None, str | None]] = {}
        with self._storage.look() as unit:
            for name in self._consumers:
                handled, last = unit.inbox_stats(name)
                found[name] = (handled, last, unit.problem(_slot(name)))
        pending, broker = self._pending()
        result = []
        for name, (handled, last, problem) in found.items():
            durables = tuple(d.name for d in self._durables if d.consumer.name == name)
            counts = [pending.get(d) for d in durables]
            missing = [d for d, count in zip(durables, counts, strict=True) if count is None]
            note = broker
            if note is None and missing:
                note = f"not created on the broker yet: {', '.join(missing)}"
            result.append(
                ConsumerStatus(
                    name=name,
                    handled=handled,
                    pending=None if missing else sum(c for c in counts if c is not None),
                    last_handled=None if last is None else datetime.fromisoformat(last),
                    problem=None if problem is None else Problem.loads(problem),
                    durables=durables,
                    broker=note,
                )
            )
        return result

    def close(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            link.close()

    def __enter__(self) -> ConsumerRunner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the broker -------------------------------------------------------------------

    def _linked(self) -> NatsLink:
        link = self._link
        if link is None:
            link = self._link = NatsLink(self._servers, name=f"esgen-consumers-{self._context}")
        return link

    def _serve(self, stop: threading.Event, idle: float | None) -> None:
        """Follow every durable until `stop` (idle None), or until each has been idle for
        `idle` seconds, on the link's loop. A broker down at the start is waited for here;
        one lost later, while nats-py reconnects (see `_follow`).

        Ctrl-C in the waiting thread asks the durables to stop after the message in hand,
        waits for that, and goes on up; anything else raised there (a signal's exception)
        cancels them."""
        link = self._linked()
        if not link.connect(stop):
            return
        future = link.submit(lambda: self._follow_all(link, stop, idle))
        try:
            future.result()
        except KeyboardInterrupt:
            stop.set()
            # The interruption is what goes on up, whatever the run ended with.
            with contextlib.suppress(BaseException):
                future.result()
            raise
        except BaseException:
            future.cancel()
            raise

    async def _follow_all(self, link: NatsLink, stop: threading.Event, idle: float | None) -> None:
        tasks = [asyncio.ensure_future(self._follow(link, d, stop, idle)) for d in self._durables]
        try:
            await asyncio.gather(*tasks)
        finally:
            # One that failed (a bug: `_follow` handles the broker's failures) ends the
            # others rather than leave them running behind the caller's back. A message
            # cancelled between its commit and its ack comes back, and its inbox row
            # makes that a no-op.
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _follow(
        self, link: NatsLink, durable: _Durable, stop: threading.Event, idle: float | None
    ) -> None:
        """One durable's messages, one at a time, until `stop`, or (with `idle`) until
        none came for that long or its stream does not exist yet. While the connection
        is lost, nats-py makes it again (the link says so) and this waits; a durable that
        fails otherwise (its stream's leader moving in a cluster) is bound again after a
        pause that doubles up to the link's cap.

        A durable can also vanish while the connection stays up: deleted by an operator,
        or its stream deleted and made again. A pull request to a durable that is gone
        just times out (nats-py reads the server's "consumer deleted" as a timeout), so
        a quiet durable is looked up every `_CHECK_EVERY` seconds (and before `idle`
        ends a catch-up); one that is gone is created again, by this durable's task
        alone, while the others go on."""
        backoff = Backoff()
        subscription: JetStreamContext.PullSubscription | None = None
        lost = False  # bound in this run, then gone from the broker: said in one line
        stuck = False  # and not created again at the first try: recorded as a problem
        checked = time.monotonic()
        try:
            while not stop.is_set():
                if not await link.until_connected(stop):
                    return
                if subscription is None:
                    try:
                        subscription = await self._subscribe(link.jetstream, durable)
                    except Exception as exc:
                        stuck = stuck or lost
                        if not self._unbindable(link, durable, exc, lost, idle):
                            return
                        await stopped_within(stop, backoff.next())
                        continue
                    self._waiting.discard(durable.wire.stream)
                    if lost:
                        self._rebound(durable, stuck)
                        lost = stuck = False
                    # Also a problem recorded by an earlier process that stopped before
                    # the durable came back: it is back now.
                    self._clear(durable.consumer.name, DurableLost, durable.name)
                    checked = time.monotonic()
                try:
                    messages = await subscription.fetch(1, timeout=idle or _FETCH_WAIT)
                except NatsTimeout:
                    if not link.connected:
                        continue  # time spent without the broker is not idle time
                    if idle is not None or time.monotonic() - checked >= _CHECK_EVERY:
                        checked = time.monotonic()
                        if await self._gone(link.jetstream, durable):
                            lost = True
                            await _unbound(subscription)
                            subscription = None
                            continue
                    if idle is not None:
                        return
                    continue
                except Exception as exc:
                    logger.debug("consumers of %s: %s: %s", self._context, durable.name, exc)
                    await _unbound(subscription)
                    subscription = None
                    await stopped_within(stop, backoff.next())
                    continue
                self._jetstream_back(link)
                for message in messages:
                    try:
                        await self._deliver(link, durable, message)
                    except Exception as exc:
                        # The broker, mid-message: unacknowledged, it comes back.
                        logger.debug("consumers of %s: %s: %s", self._context, durable.name, exc)
                backoff.reset()
        finally:
            await _unbound(subscription)

    def _unbindable(
        self, link: NatsLink, durable: _Durable, exc: Exception, lost: bool, idle: float | None
    ) -> bool:
        """Say (once) why a durable could not be bound, and record it as the consumer's
        problem if the durable was lost; False when `_follow` should end (a catch-up
        with no stream to catch up with)."""
        if isinstance(exc, NotFoundError):
            if lost:
                self._record_broker(durable, f"its stream {durable.wire.stream} is gone: {exc}")
            else:
                self._stream_missing(durable, idle)
            return idle is None
        if jetstream_missing(exc) and link.connected:
            self._jetstream_missing(link, exc)
        else:
            logger.debug("consumers of %s: %s: %s", self._context, durable.name, exc)
        if lost:
            self._record_broker(durable, _one_line(exc) or type(exc).__name__)
        return True

    async def _gone(self, js: JetStreamContext, durable: _Durable) -> bool:
        """Whether the durable (or its stream) no longer exists on the broker; said in one
        line. Any other failure to look is the broker's, and left to the next fetch."""
        try:
            await js.consumer_info(durable.wire.stream, durable.name)
        except NotFoundError:
            logger.warning(
                "consumers of %s: the durable %s is gone from the broker (deleted, or its "
                "stream %s deleted); creating it again (it starts over from the stream's "
                "first message, and the inbox drops what was handled)",
                self._context, durable.name, durable.wire.stream,
            )  # fmt: skip
            return True
        except Exception as exc:
            logger.debug("consumers of %s: %s: %s", self._context, durable.name, exc)
        return False

    def _rebound(self, durable: _Durable, stuck: bool) -> None:
        # Loud only after a time without it (its problem recorded): whoever saw the
        # consumer failing learns that it goes on. Made again at once, the line that it
        # was gone is the one line.
        logger.log(
            logging.WARNING if stuck else logging.INFO,
            "consumers of %s: the durable %s is on the broker again", self._context, durable.name,
        )  # fmt: skip

    def _record_broker(self, durable: _Durable, why: str) -> None:
        """A lost durable that cannot be created again, as its consumer's problem: status
        shows it while the consumer receives nothing through it."""
        exc = DurableLost(
            f"the durable {durable.name} is gone from the broker and cannot be created "
            f"again: {why}; retrying"
        )
        name = durable.consumer.name
        try:
            with self._storage.unit() as unit:
                attempts = 1
                if (text := unit.problem(_slot(name))) is not None:
                    earlier = Problem.loads(text)
                    if earlier.error == _error_name(DurableLost) and durable.name in (
                        earlier.message
                    ):
                        attempts = earlier.attempts + 1
                at = to_utc(self._clock(), "the consumer clock")
                unit.set_problem(_slot(name), Problem.of(exc, None, at, attempts).dumps())
        except Exception as failure:
            logger.warning("consumer %s: its error could not be recorded: %s", name, failure)

    def _clear(self, name: str, kind: type[Exception], mentioning: str) -> None:
        """Clear the consumer's problem if it is one of `kind` naming `mentioning` (a
        handler's failure, or another durable's, stays)."""
        try:
            with self._storage.unit() as unit:
                text = unit.problem(_slot(name))
                if text is None:
                    return
                problem = Problem.loads(text)
                if problem.error == _error_name(kind) and mentioning in problem.message:
                    unit.set_problem(_slot(name), None)
        except Exception as failure:
            logger.warning("consumer %s: its problem could not be cleared: %s", name, failure)

    def _jetstream_missing(self, link: NatsLink, exc: Exception) -> None:
        """Said once per outage, whichever durable finds it first; the flag stays until a
        message is fetched (a connection that is up proves nothing of JetStream)."""
        if self._jetstream_down:
            logger.debug("consumers of %s: JetStream still missing: %s", self._context, exc)
            return
        self._jetstream_down = True
        logger.warning(
            "consumers of %s: JetStream is not enabled on %s (nats-server runs without -js, "
            "or its cluster has no JetStream leader yet); retrying every %g s",
            self._context, link.connected_url, BACKOFF_CAP,
        )  # fmt: skip

    def _jetstream_back(self, link: NatsLink) -> None:
        if self._jetstream_down:
            self._jetstream_down = False
            logger.warning(
                "consumers of %s: JetStream answers on %s again", self._context,
                link.connected_url,
            )  # fmt: skip

    def _stream_missing(self, durable: _Durable, idle: float | None) -> None:
        stream = durable.wire.stream
        if stream not in self._waiting:
            self._waiting.add(stream)
            logger.warning(
                "consumers of %s: no stream %s on the broker yet (the relay of %s creates "
                "it)%s",
                self._context, stream, durable.upstream,
                "" if idle is not None else "; waiting for it",
            )  # fmt: skip

    async def _subscribe(
        self, js: JetStreamContext, durable: _Durable
    ) -> JetStreamContext.PullSubscription:
        config = ConsumerConfig(
            durable_name=durable.name,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            filter_subject=durable.subject,
            # One message in flight: see the module's docstring (per-aggregate order).
            max_ack_pending=1,
            ack_wait=self._ack_wait,
            max_deliver=-1,
        )
        try:
            await js.add_consumer(durable.wire.stream, config)
        except BadRequestError as exc:
            # It exists with another configuration (another ack_wait): it is used as it
            # is; its order guarantees do not depend on what differs.
            logger.info("consumers of %s: %s kept as it is (%s)", self._context, durable.name, exc)
        return await js.pull_subscribe_bind(durable=durable.name, stream=durable.wire.stream)

    def _pending(self) -> tuple[dict[str, int | None], str | None]:
        """Each durable's messages not yet acknowledged (None: not on the broker yet),
        and why the broker could not say, if it could not. One attempt to connect: a
        look answers at once."""
        link = self._linked()
        if not link.connect(retry=False) or not link.connected:
            return {}, f"the broker ({', '.join(self._servers)}) cannot be reached"
        js = link.jetstream

        async def counts() -> dict[str, int | None]:
            found: dict[str, int | None] = {}
            for durable in self._durables:
                try:
                    info = await js.consumer_info(durable.wire.stream, durable.name)
                except NotFoundError:
                    found[durable.name] = None
                    continue
                found[durable.name] = (info.num_pending or 0) + (info.num_ack_pending or 0)
            return found

        try:
            return link.call(counts), None
        except Exception as exc:
            if jetstream_missing(exc):
                return {}, f"JetStream is not enabled on {link.connected_url}"
            return {}, f"the broker did not answer ({_one_line(exc)})"

    # -- one message ------------------------------------------------------------------

    async def _deliver(self, link: NatsLink, durable: _Durable, message: Msg) -> None:
        headers = dict(message.headers or {})
        outcome, detail = self._process(durable, headers, message.data)
        delivered = message.metadata.num_delivered or 1
        delay = min(_RETRY_FIRST * 2 ** (delivered - 1), _RETRY_MAX)
        if outcome == "dead":
            try:
                await self._dead_letter(link, durable, message, headers, detail)
            except Exception as exc:
                if not link.connected:
                    raise  # the broker, mid-message: unacknowledged, it comes back
                self._dead_letter_failed(durable, message, exc, delivered, delay)
                await message.nak(delay=delay)
                return
            await message.ack()
        elif outcome == "failed":
            logger.warning(
                "consumer %s: %s; retrying in %gs (delivery %d)",
                durable.consumer.name, detail, delay, delivered,
            )  # fmt: skip
            await message.nak(delay=delay)
        else:
            await message.ack()
            if outcome == "duplicate":
                logger.debug(
                    "consumer %s: %s already handled (a redelivery): acknowledged, no effect",
                    durable.consumer.name, headers.get(H_MSG_ID),
                )  # fmt: skip
            if outcome == "handled" and self._progress is not None:
                name = durable.consumer.name
                self._progress(name, self._handled[name])

    def _process(
        self, durable: _Durable, headers: Mapping[str, str], data: bytes
    ) -> tuple[Outcome, str]:
        """Decode and handle one message: the outcome, and the reason of a dead letter or
        the failure's line."""
        consumer = durable.consumer
        try:
            recorded = recorded_from_message(headers, data)
        except MessageError as exc:
            return "dead", str(exc)
        sender = headers.get(H_CONTEXT)
        if sender != durable.upstream:
            return "dead", (
                f"the message says it comes from context {sender!r}, but it is in the stream "
                f"of {durable.upstream!r}"
            )
        registry = consumer.subscriptions[durable.upstream]
        event_type = recorded.event_type
        if registry.current_type(event_type) not in registry:
            return "dead", (
                f"{durable.upstream} event type {event_type!r} (version "
                f"{recorded.event_version}) is not one this context knows of its published "
                "events (update its copy of the upstream's contract)"
            )
        method = durable.methods.get(event_type)
        if method is None:
            return "skipped", ""  # a published event this consumer does not handle
        try:
            event = registry.raw_decoder(event_type, recorded.event_version)(recorded.data)
        except ValidationError as exc:
            return "dead", str(registry.invalid_recorded(recorded, exc))
        except DecodeError as exc:  # a future version, no upcaster, an upcaster that failed
            return "dead", str(exc)
        try:
            handled = self._handle(consumer, method, event, recorded)
        except Exception as exc:
            exc.add_note(f"{consumer.name}: handling {_event_at(recorded)}")
            self._record(consumer.name, exc, recorded)
            return "failed", f"{type(exc).__name__}: {_one_line(exc)} on {_event_at(recorded)}"
        if not handled:
            return "duplicate", ""
        self._handled[consumer.name] += 1
        return "handled", ""

    def _handle(
        self, consumer: Consumer[Any, Any], method: str, event: Any, recorded: RecordedEvent
    ) -> bool:
        """The inbox mark and the handler's rows in one transaction; False (nothing done)
        when the inbox already has the message."""
        name = consumer.name
        at = to_utc(self._clock(), "the consumer clock")
        with self._storage.unit() as unit:
            if not unit.inbox_add(name, str(recorded.event_id), at):
                return False
            generation = _active(unit.generations(name), name)
            rows: Rows[Any] = Rows(
                consumer.table,
                consumer.row_type,
                unit.table(consumer.table, generation),
                keyring=self._store.keyring,
            )
            consumer._rows = rows
            try:
                getattr(consumer, method)(event, recorded)
                rows.flush()
            finally:
                rows.discard()
                consumer._rows = None
            if unit.problem(_slot(name)) is not None:
                unit.set_problem(_slot(name), None)
        return True

    def _record(self, name: str, exc: Exception, recorded: RecordedEvent) -> None:
        """The consumer's problem, in a transaction of its own after the failed one."""
        try:
            with self._storage.unit() as unit:
                attempts = 1
                if (text := unit.problem(_slot(name))) is not None:
                    earlier = Problem.loads(text)
                    if earlier.event_id == str(recorded.event_id):  # the same message again
                        attempts = earlier.attempts + 1
                at = to_utc(self._clock(), "the consumer clock")
                unit.set_problem(_slot(name), Problem.of(exc, recorded, at, attempts).dumps())
        except Exception as failure:
            # The store may be what failed: the original error is the one to report.
            logger.warning("consumer %s: its error could not be recorded: %s", name, failure)

    async def _dead_letter(
        self,
        link: NatsLink,
        durable: _Durable,
        message: Msg,
        headers: Mapping[str, str],
        reason: str,
    ) -> None:
        prefix = durable.wire.prefix
        consumer = durable.consumer.name
        stream = dead_letter_stream(self._context, prefix)
        original = (
            headers.get(H_MSG_ID) or f"{durable.wire.stream}:{message.metadata.sequence.stream}"
        )
        sent = {
            **{k: _header_value(v) for k, v in headers.items()},
            H_DEAD_LETTER_REASON: _header_value(reason),
            H_ORIGINAL_SUBJECT: message.subject,
            # The broker's dedupe is per stream, and every consumer of the context
            # dead-letters into this one: the id names the consumer too. A dead letter sent
            # again after a crash before the ack is then dropped as the duplicate it is.
            H_MSG_ID: _header_value(f"{consumer}.{original}"),
        }
        subject = dead_letter_subject(prefix, self._context, consumer)
        try:
            await self._dead_letter_stream(link, stream, prefix)
            await link.jetstream.publish(subject, message.data, headers=sent, stream=stream)
        except Exception as exc:
            if not link.connected:
                raise
            # The stream may have been deleted since it was made here (retention tidied
            # up, an operator): made again once; a second failure is the caller's.
            logger.debug("consumer %s: dead letter to %s: %s", consumer, subject, exc)
            self._dead_letter_ready.discard(stream)
            await self._dead_letter_stream(link, stream, prefix)
            await link.jetstream.publish(subject, message.data, headers=sent, stream=stream)
        self._clear(consumer, DeadLetterFailed, message.subject)
        logger.warning(
            "consumer %s: %s dead-lettered to %s: %s",
            consumer, message.subject, subject, _one_line(reason),
        )  # fmt: skip

    async def _dead_letter_stream(self, link: NatsLink, stream: str, prefix: str) -> None:
        if stream not in self._dead_letter_ready:
            await link.stream_ready(stream, f"{prefix}.deadletter.{self._context}.>")
            self._dead_letter_ready.add(stream)

    def _dead_letter_failed(
        self, durable: _Durable, message: Msg, exc: Exception, delivered: int, delay: float
    ) -> None:
        """A dead letter the broker refused while it is up: the consumer's problem (its
        durable waits behind the message), said as what it is."""
        name = durable.consumer.name
        why = _one_line(exc) or type(exc).__name__
        if jetstream_missing(exc):
            why = f"JetStream does not answer ({why})"
        failure = DeadLetterFailed(
            f"{message.subject} could not be dead-lettered to the stream "
            f"{dead_letter_stream(self._context, durable.wire.prefix)}: {why}"
        )
        logger.warning(
            "consumer %s: %s; retrying in %gs (delivery %d)", name, failure, delay, delivered
        )
        try:
            with self._storage.unit() as unit:
                at = to_utc(self._clock(), "the consumer clock")
                problem = Problem.of(failure, None, at, delivered)
                unit.set_problem(_slot(name), problem.dumps())
        except Exception as error:
            logger.warning("consumer %s: its error could not be recorded: %s", name, error)


def _slot(name: str) -> str:
    """Where a consumer's problem is recorded, apart from projections' and sagas'."""
    return f"consumer:{name}"


def _active(generations: Mapping[int, tuple[int, bool]], name: str) -> int:
    for generation, (_, active) in generations.items():
        if active:
            return generation
    raise LookupError(f"consumer {name!r} has no active read-model generation")


def _event_at(recorded: RecordedEvent) -> str:
    return (
        f"{recorded.event_type} (event {recorded.event_id}), version {recorded.stream_version} "
        f"of stream {recorded.stream_id!r}"
    )


def _error_name(kind: type[BaseException]) -> str:
    """A class's name as `Problem.of` records it."""
    return f"{kind.__module__}.{kind.__qualname__}"


def _one_line(value: object) -> str:
    return " ".join(str(value).split())


def _header_value(value: str) -> str:
    # A header value ends at a line break on the wire: multi-line reasons become one line.
    return _one_line(value)


async def _unbound(subscription: JetStreamContext.PullSubscription | None) -> None:
    """Let go of a pull subscription, if there is one."""
    if subscription is not None:
        with contextlib.suppress(Exception):  # a lost connection took it along
            await subscription.unsubscribe()
