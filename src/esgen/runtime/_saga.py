"""Sagas (process managers): workflows across aggregates, with compensation.

An instance starts with its starting event and is found again by its correlation: a
field of the events it handles, or the id of the aggregate whose stream recorded them.
Its handlers send commands (only those the schema allows) through the context's command
dispatcher; each command sent successfully is remembered as a step. A refused command
calls the saga's hook for that command (`refusals`), which by default fails the
workflow. After a failure event, a failure, or a deadline that passed, the compensations
of the steps run in reverse order.

The runner follows the store's global order like a projection. Handling an event, the
commands it causes (and the events they record), the instance's new state and the
checkpoint commit in one transaction, so redelivery never sends a command twice.
"""

from __future__ import annotations

import json
import logging
import threading
import typing
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, ClassVar, Generic, Literal, Protocol, TypeVar, cast

from pydantic import BaseModel
from typing_extensions import TypeVar as TypeVarWithDefault

from esgen.runtime._context import command_context
from esgen.runtime._errors import (
    AggregateDefinitionError,
    BackendError,
    ConcurrencyError,
    DecodeError,
    EventStoreError,
    RegistryError,
)
from esgen.runtime._finite import dump_json
from esgen.runtime._ids import ID_TYPES, AnyId, check_id, decode_id, encode_id
from esgen.runtime._messages import Command, Event
from esgen.runtime._ports import EventStore
from esgen.runtime._progress_store import (
    ProgressStorage,
    ProgressUnit,
    SagaRecord,
    progress_storage,
    saga_steps,
)
from esgen.runtime._records import Clock, RecordedEvent, to_utc, utc_now
from esgen.runtime._registry import EventRegistry
from esgen.runtime._text import check_key

__all__ = [
    "CorrT",
    "Dispatch",
    "Saga",
    "SagaError",
    "SagaFactory",
    "SagaRunner",
    "SagaStatus",
    "compensate",
    "react",
    "send_outbox",
    "time_out",
]

logger = logging.getLogger("esgen.runtime")

StateT = TypeVar("StateT", bound=BaseModel)
CorrT = TypeVarWithDefault("CorrT", bound=AnyId, default=str)
"""The type of a saga's correlation value (UUID, int or str), as its events declare it."""

Dispatch = Callable[[Any], object]
"""Sends one command (the generated service's `dispatch`)."""

SagaStatus = Literal["running", "completed", "failed", "compensated", "timed_out", "stalled"]
"""`stalled`: a handler, hook or command raised an error that is not a refusal (a bug, an
event this code cannot read); the instance waits, its later events kept in order, until
`SagaRunner.retry` after a fix. The others are the workflow's own outcomes."""


class SagaError(EventStoreError, TypeError):
    """A saga tried something its schema does not allow (e.g. a command it may not send)."""


class Saga(Generic[StateT, CorrT]):
    """Base of every saga. Generated bases set the class attributes, typed `send_*`
    methods and `on_<command>_refused` hooks; users write the handlers, compensations and
    (if declared) `on_timeout`, and override the hooks they need (see `refusals`).

    The correlation type comes from the second type argument (`Saga[State, UUID]`; str
    when not given) unless `correlation_type` is set. Stored instances keep the value as
    text (`encode_id`), so a uuid or str correlation is stored as `str(value)`.
    """

    name: ClassVar[str]
    starts_with: ClassVar[type[Event]]
    correlation: ClassVar[str]
    """The field, on every event the saga handles, whose value identifies the instance;
    with `correlation_aggregate`, on the events of other aggregates only."""
    correlation_aggregate: ClassVar[str | None] = None
    """The aggregate type (as in stream ids) whose id is the correlation: an event recorded
    in a `<correlation_aggregate>-<id>` stream belongs to the instance of that id, and an
    event of another aggregate to the one its `correlation` field names. None: every
    event carries the `correlation` field."""
    correlation_type: ClassVar[type] = str
    """UUID, int or str: the type of `correlation_value`."""
    handlers: ClassVar[Mapping[type[Event], str]] = {}
    fails_on: ClassVar[frozenset[type[Event]]] = frozenset()
    sends: ClassVar[frozenset[type[Command]]] = frozenset()
    compensations: ClassVar[Mapping[type[Command], str]] = {}
    """Command sent -> the method building the command that undoes it."""
    refusals: ClassVar[Mapping[type[Command], str]] = {}
    """Command sent -> the hook called when it is refused, `(command, error) -> None`; a
    command not listed fails the workflow (`fail_refused`, also what generated hooks do
    unless overridden).

    A hook may update `self.state`, send commands, `fail(reason)` (the compensations of
    the steps taken run), `fail(reason, compensate=False)`, `complete()`, or leave the
    instance running to wait for more events. The commands it sends go out at once, and
    become steps when sent; a refusal of one of them fails the workflow without calling
    a hook. The commands the handler queued after the refused one are sent only if the
    hook left the status as it was. A refused compensation calls no hook: it is noted in
    `reason`, and the other compensations still run. An error raised by a hook is no
    refusal: as with a handler's, the event is handled again."""
    timeout: ClassVar[timedelta | None] = None
    on_deadline: ClassVar[Literal["compensate", "handler"]] = "compensate"
    state_type: ClassVar[type[BaseModel]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        declared: object = cls.__dict__.get("correlation_type")
        for base in getattr(cls, "__orig_bases__", ()):
            origin = typing.get_origin(base)
            args = typing.get_args(base)
            given = len(args) > 1 and not isinstance(args[1], typing.TypeVar)
            if declared is None and given and isinstance(origin, type) and issubclass(origin, Saga):
                declared = _underlying(args[1])
        if declared is not None:
            if not (isinstance(declared, type) and declared in ID_TYPES):
                raise AggregateDefinitionError(
                    f"{cls.__qualname__}: correlation values must be UUID, int or str "
                    f"(got {declared!r})"
                )
            cls.correlation_type = declared

    def __init__(self, correlation_value: CorrT) -> None:
        check_id(self.correlation_type, correlation_value, type(self).__qualname__, "correlations")
        self.correlation_value: CorrT = correlation_value
        self.state_or_none: StateT | None = None
        self.status: SagaStatus = "running"
        self.reason: str | None = None
        self.steps: list[Command] = []
        """Commands sent successfully, oldest first: what compensation undoes."""
        self.compensated: list[Command] = []
        """Compensating commands sent, in the order they were sent."""
        self._outbox: list[Command] = []
        self._compensate = True  # what the last fail() asked for

    @property
    def state(self) -> StateT:
        if self.state_or_none is None:
            raise LookupError(f"{self.name} {self.correlation_value!r} has no state yet")
        return self.state_or_none

    @state.setter
    def state(self, value: StateT) -> None:
        self.state_or_none = value

    # -- what handlers call -------------------------------------------------------------

    def send(self, command: Command) -> None:
        """Queue a command; it is dispatched when the handler returns."""
        if type(command) not in self.sends:
            allowed = ", ".join(sorted(c.__name__ for c in self.sends))
            raise SagaError(
                f"{self.name} may not send {type(command).__name__} (it may send: {allowed})"
            )
        self._outbox.append(command)

    def complete(self) -> None:
        """The workflow reached its goal; the instance handles no more events."""
        self.status = "completed"

    def fail(self, reason: str, *, compensate: bool = True) -> None:
        """Give up: the compensations of the steps taken so far run, newest first, unless
        `compensate=False` (the workflow ends as failed and its steps stand)."""
        self.status = "failed"
        self.reason = reason
        self._compensate = compensate

    def fail_refused(self, command: Command, error: Exception) -> None:
        """What a refused command does unless its hook decides otherwise: the workflow
        fails and the compensations of the steps taken run. A workflow already failed
        keeps its reason (the refusal is added to it) and its choice to compensate."""
        _fail_by_default(self, _refusal(command, error))

    def on_timeout(self) -> None:
        """Called when the deadline passes, for sagas whose schema says `then: handler`."""
        raise SagaError(f"{self.name} declares no timeout handler")

    # -- what the runner calls ----------------------------------------------------------

    def _refused(self, command: Command, error: Exception) -> None:
        hook = self.refusals.get(type(command))
        if hook is None:
            self.fail_refused(command, error)
        else:
            getattr(self, hook)(command, error)

    def _compensation_for(self, command: Command) -> Command | None:
        method = self.compensations.get(type(command))
        return None if method is None else getattr(self, method)(command)

    @classmethod
    def _handles(cls) -> dict[str, str]:
        return {event.event_type: method for event, method in cls.handlers.items()}


def _underlying(argument: object) -> object:
    # A NewType of UUID (TransferId = NewType("TransferId", UUID)) is a UUID at run time.
    while hasattr(argument, "__supertype__"):
        argument = argument.__supertype__
    return argument


SagaT = TypeVar("SagaT", bound=Saga[Any, Any])
SagaT_co = TypeVar("SagaT_co", bound=Saga[Any, Any], covariant=True)
CorrT_contra = TypeVarWithDefault("CorrT_contra", bound=AnyId, contravariant=True, default=str)


class SagaFactory(Protocol[SagaT_co, CorrT_contra]):
    """A saga class seen as what builds an instance from its correlation value, so type
    checkers read the correlation type off the class (`SagaRunner(Transfer, ...)`)."""

    def __call__(self, correlation_value: CorrT_contra, /) -> SagaT_co: ...


class SagaRunner(Generic[SagaT, CorrT]):
    """Runs one saga class over an event store that supports transactions."""

    def __init__(
        self,
        saga_class: SagaFactory[SagaT, CorrT],
        store: EventStore,
        registry: EventRegistry,
        dispatch: Dispatch,
        *,
        clock: Clock = utc_now,
        page_size: int = 500,
        storage: ProgressStorage | None = None,
        start: Literal["now", "beginning"] = "now",
    ) -> None:
        """`start` matters only the first time the saga runs against a store: "now" (the
        default) ignores the events already there, as a saga deployed onto a running
        system must; "beginning" handles every event ever recorded, sending commands for
        history (only for a store the saga has followed from its first event)."""
        self._class = cast("type[SagaT]", saga_class)
        self._store = store
        self._registry = registry
        self._dispatch = dispatch
        self._clock = clock
        self._page_size = page_size
        self._storage = storage or progress_storage(store)
        saga = self._class
        self._handles = saga._handles()
        self._start_type = saga.starts_with.event_type
        self._fails = {e.event_type for e in saga.fails_on}
        self._commands = {c.command_type: c for c in saga.sends}
        self._checkpoint = f"saga:{saga.name}"
        if self._start_type not in self._handles:
            raise AggregateDefinitionError(
                f"{saga.name} has no handler for its starting event {self._start_type}"
            )
        with self._storage.unit() as unit:
            if not unit.generations(self._checkpoint):
                position = store.head_position() if start == "now" else 0
                unit.set_checkpoint(self._checkpoint, 1, position, active=True)

    # -- following the store ----------------------------------------------------------

    def catch_up(self, *, until: int | None = None) -> int:
        """Handle every event recorded so far (or up to position `until`), then run due
        deadlines; returns how many events were handled."""
        handled = 0
        while True:
            count, done = self._page(until)
            handled += count
            if done:
                break
        self.expire()
        return handled

    def run(self, stop: threading.Event, *, poll_interval: float = 0.25) -> None:
        wait: Callable[[int, float], bool] | None = getattr(self._store, "wait_for_events", None)
        while not stop.is_set():
            self.catch_up()
            if wait is not None:
                wait(self._store.head_position(), poll_interval)
            else:
                stop.wait(poll_interval)

    def _page(self, until: int | None = None) -> tuple[int, bool]:
        with self._storage.unit() as unit:
            position = unit.generations(self._checkpoint)[1][0]
            limit = self._page_size if until is None else min(self._page_size, until - position)
            records = self._store.read_all(after=position, limit=limit) if limit > 0 else []
            if not records:
                return 0, True
            handled = 0
            # Events stored under a former name of a renamed type are handled as that type.
            handles = self._registry.by_stored_type(self._handles)
            for recorded in records:
                if recorded.event_type in handles and self._handle(unit, recorded):
                    handled += 1
            unit.set_checkpoint(self._checkpoint, 1, records[-1].position, active=True)
            # Not done even after a short page: the commands just sent recorded new events
            # (the saga's own included), and the next page should see them.
            return handled, False

    def _handle(self, unit: ProgressUnit, recorded: RecordedEvent) -> bool:
        event = self._registry.decode_recorded(recorded)
        correlation = self._correlation_of(event, recorded)
        if correlation is None:
            return False  # not part of any instance (e.g. a deposit outside a transfer)
        record = unit.saga(self._class.name, correlation)
        starting = event.event_type == self._start_type  # the current name, if renamed
        if record is None and not starting:
            return False
        if record is not None and starting:
            return False  # started already: a second starting event changes nothing
        if record is not None and record.status != "running":
            return False
        if not unit.mark_handled(self._class.name, str(recorded.event_id)):
            return False  # already handled: redelivery changes nothing
        if record is None:
            try:
                saga = self._class(decode_id(self._class.correlation_type, correlation))
            except DecodeError as exc:
                exc.add_note(
                    f"{self._class.name}: the {self._class.correlation!r} of "
                    f"{recorded.event_type} at position {recorded.position} is its "
                    "correlation, so it must be of the saga's correlation type"
                )
                raise
            started = recorded.recorded_at
            deadline = None if self._class.timeout is None else started + self._class.timeout
            conversation = recorded.correlation_id or str(recorded.event_id)
            record = SagaRecord(self._class.name, correlation, "running", None,
                                saga_steps([], []),
                                json.dumps({"correlation_id": conversation}),
                                started.isoformat(),
                                None if deadline is None else deadline.isoformat())  # fmt: skip
        else:
            saga = self._restore(record)
        try:
            with command_context(caused_by=recorded):
                react(saga, event, self._dispatch)
        except Exception as exc:
            # Which event and instance: the traceback shows only the handler's code.
            exc.add_note(
                f"{self._class.name} {correlation}: handling {recorded.event_type} "
                f"(event {recorded.event_id}) at position {recorded.position} of stream "
                f"{recorded.stream_id!r}"
            )
            raise
        self._save(unit, record, saga)
        return True

    def _correlation_of(self, event: Event, recorded: RecordedEvent) -> str | None:
        """The stored correlation of the instance an event belongs to, or None for none."""
        saga = self._class
        aggregate = saga.correlation_aggregate
        # Aggregate types are never renamed (they are in every stream id), so the prefix
        # is the one the aggregate writes; renamed event types were read as the new ones.
        if aggregate is not None and recorded.stream_id.startswith(f"{aggregate}-"):
            text = recorded.stream_id[len(aggregate) + 1 :]
            try:
                decode_id(saga.correlation_type, text)
            except DecodeError as exc:
                raise DecodeError(
                    f"{saga.name}: {recorded.event_type} at position {recorded.position} is "
                    f"in stream {recorded.stream_id!r}, whose {aggregate} id is the saga's "
                    f"correlation: {exc}"
                ) from None
            return self._stored_correlation(text)
        value = getattr(event, saga.correlation, None)
        return None if value is None else self._stored_correlation(value)

    # -- deadlines --------------------------------------------------------------------

    def expire(self) -> int:
        """Run the deadline of every instance whose time is up; returns how many ran."""
        now = to_utc(self._clock(), "the saga clock")  # deadlines are stored in UTC
        count = 0
        with self._storage.unit() as unit:
            for record in unit.due_sagas(self._class.name, now):
                saga = self._restore(record)
                metadata = json.loads(record.metadata)
                with command_context(
                    correlation_id=metadata.get("correlation_id"),
                    causation_id=f"{self._class.name}:{record.correlation}:deadline",
                ):
                    time_out(saga, self._dispatch)
                self._save(unit, record, saga)
                count += 1
        return count

    # -- persistence ------------------------------------------------------------------

    def _restore(self, record: SagaRecord) -> SagaT:
        saga = self._class(decode_id(self._class.correlation_type, record.correlation))
        if record.state is not None:
            saga.state_or_none = self._class.state_type.model_validate_json(record.state)
        saga.status = cast(SagaStatus, record.status)
        saga.reason = json.loads(record.metadata).get("reason")
        steps = json.loads(record.steps)
        saga.steps = [self._command(kind, data) for kind, data in steps["sent"]]
        saga.compensated = [self._command(kind, data) for kind, data in steps["compensated"]]
        return saga

    def _command(self, kind: str, data: str) -> Command:
        return self._commands[kind].model_validate_json(data)

    def _save(self, unit: ProgressUnit, record: SagaRecord, saga: Saga[Any, Any]) -> None:
        state = saga.state_or_none
        metadata = {**json.loads(record.metadata), "reason": saga.reason}
        unit.save_saga(
            SagaRecord(
                record.saga,
                record.correlation,
                saga.status,
                None if state is None else dump_json(state, f"the state of saga {record.saga}"),
                saga_steps(saga.steps, saga.compensated),
                json.dumps(metadata, separators=(",", ":")),
                record.started_at,
                record.deadline,
            ),
            self._clock(),
        )

    def instance(self, correlation: CorrT) -> SagaT | None:
        """The stored instance for a correlation value, to inspect its state and status."""
        saga = self._class
        check_id(saga.correlation_type, correlation, saga.__qualname__, "correlations")
        key = self._stored_correlation(correlation)
        with self._storage.unit() as unit:
            record = unit.saga(self._class.name, key)
        return None if record is None else self._restore(record)

    def _stored_correlation(self, value: AnyId) -> str:
        # Stored as text, in the one form per id type (str(UUID) for a uuid, as always),
        # checked before the store sees it: SQLite takes NUL that PostgreSQL refuses, and a
        # lone surrogate would fail either driver with a bare UnicodeEncodeError.
        correlation = encode_id(value)
        check_key(correlation, f"the correlation of saga {self._class.name}")
        return correlation


# The steps of a saga's life, shared by the runner and the test fixture (SagaScenario).


def react(saga: Saga[Any, Any], event: Event, dispatch: Dispatch) -> None:
    """Run the handler of `event`, send what it queued, and compensate if it failed."""
    saga._compensate = True
    getattr(saga, type(saga)._handles()[event.event_type])(event)
    send_outbox(saga, dispatch)
    if type(event) in saga.fails_on and saga.status == "running":
        saga.status = "compensated"
        saga.reason = f"{event.event_type} happened"
    _end(saga, dispatch)


def time_out(saga: Saga[Any, Any], dispatch: Dispatch) -> None:
    """The deadline passed: run the timeout handler, or compensate."""
    saga._compensate = True
    if saga.on_deadline == "handler":
        saga.on_timeout()
        send_outbox(saga, dispatch)
        if saga.status == "running":
            saga.status = "timed_out"
    else:
        saga.status = "timed_out"
        saga.reason = "the deadline passed"
    _end(saga, dispatch)


def _end(saga: Saga[Any, Any], dispatch: Dispatch) -> None:
    if saga.status in ("failed", "timed_out", "compensated") and saga._compensate:
        compensate(saga, dispatch)


def send_outbox(saga: Saga[Any, Any], dispatch: Dispatch) -> None:
    """Send the queued commands, oldest first; each one sent is a step.

    A refused command calls its hook (`Saga.refusals`; by default the workflow fails).
    The commands the hook queues are sent next; a refusal of one of those fails the
    workflow without calling a hook again, so hooks never loop. The commands queued
    after the refused one are sent only if the hook left the status as it was (the
    default fails the workflow, so they are dropped).
    """
    outbox, saga._outbox = saga._outbox, []
    for index, command in enumerate(outbox):
        error = _send(saga, command, dispatch)
        if error is None:
            continue
        status = saga.status
        saga._refused(command, error)  # an error raised here is no refusal: it propagates
        replies, saga._outbox = saga._outbox, []
        for reply in replies:
            refused = _send(saga, reply, dispatch)
            if refused is not None:
                # No hook for a hook's own command: the workflow fails, unless the hook
                # already ended it as failed (then its reason and choice stand).
                _fail_by_default(saga, _refusal(reply, refused))
                break
        if saga.status != status:
            dropped = outbox[index + 1 :]
            if dropped:
                logger.info("%s %s: not sent after %s was refused: %s", saga.name,
                            saga.correlation_value, type(command).__name__,
                            ", ".join(type(c).__name__ for c in dropped))  # fmt: skip
            return


def _refusal(command: Command, error: Exception) -> str:
    return f"{type(command).__name__} failed: {error}"


def _fail_by_default(saga: Saga[Any, Any], reason: str) -> None:
    """Fail the workflow as a refusal does by default; one that a handler or hook already
    failed keeps its first cause and its `compensate=` choice, the refusal added."""
    if saga.status == "failed":
        saga.reason = reason if saga.reason is None else f"{saga.reason}; {reason}"
    else:
        saga.fail(reason)


def _send(saga: Saga[Any, Any], command: Command, dispatch: Dispatch) -> Exception | None:
    """Dispatch one command: None when it was sent (a step now), else its refusal."""
    try:
        dispatch(command)
    except _NOT_A_REFUSAL:
        # The store failed, or the code has a bug: no decision was made. The page's
        # transaction rolls back and the event is handled again on the next run.
        raise
    except Exception as exc:  # the aggregate refused the command
        logger.info("%s %s: %s refused: %r", saga.name, saga.correlation_value,
                    type(command).__name__, exc)  # fmt: skip
        return exc
    saga.steps.append(command)
    return None


# Errors that are not a domain's refusal of a command; everything else is. A refusal
# fails the workflow for good, so only what a handler raises on purpose may count as
# one: the store failing, events this code cannot read, esgen's own wiring errors, an
# unwritten handler and the usual signs of a bug leave the event to be handled again.
_NOT_A_REFUSAL = (
    BackendError,
    ConcurrencyError,
    DecodeError,
    RegistryError,
    TypeError,  # also UndeclaredEvent, UnhandledCommand, AggregateDefinitionError, ...
    AttributeError,
    NameError,
    NotImplementedError,
    AssertionError,
    KeyError,
    IndexError,
    ArithmeticError,
    ImportError,
    RecursionError,
    MemoryError,
)


def compensate(saga: Saga[Any, Any], dispatch: Dispatch) -> None:
    """Undo the steps taken, newest first; a failing compensation does not stop the rest."""
    for step in reversed(saga.steps):
        undo = saga._compensation_for(step)
        if undo is None:
            continue
        try:
            dispatch(undo)
        except _NOT_A_REFUSAL:
            raise
        except Exception as exc:
            saga.reason = f"{saga.reason}; compensation {type(undo).__name__} failed: {exc}"
            logger.warning("%s %s: compensation %s failed: %r", saga.name,
                           saga.correlation_value, type(undo).__name__, exc)  # fmt: skip
        else:
            saga.compensated.append(undo)
