"""Sagas (process managers): workflows across aggregates, with compensation.

An instance starts with its starting event and is found again by its correlation: a
field of the events it handles, or the id of the aggregate whose stream recorded them.
Its handlers send commands (only those the schema allows) through the context's command
dispatcher; each command sent successfully is remembered as a step. A refused command
calls the saga's hook for that command (`refusals`), which by default fails the
workflow. After a failure event, a failure, or a deadline that passed, the compensations
of the steps run in reverse order. An error that is no refusal (a bug) ends nothing: the
runner (`esgen.runtime._saga_runner`) stalls the instance until it is retried.
"""

from __future__ import annotations

import logging
import sys
import typing
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, ClassVar, Generic, Literal, Protocol, TypeVar

from pydantic import BaseModel, ValidationError
from typing_extensions import TypeVar as TypeVarWithDefault

from esgen._errors import EsgenError
from esgen.runtime._errors import (
    AggregateAlreadyExists,
    AggregateDefinitionError,
    AggregateNotFound,
    EventStoreError,
)
from esgen.runtime._ids import ID_TYPES, AnyId, check_id
from esgen.runtime._messages import Command, Event

__all__ = [
    "CorrT",
    "Dispatch",
    "Saga",
    "SagaError",
    "SagaFactory",
    "SagaStatus",
    "SagaT",
    "compensate",
    "is_refusal",
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
    refusal: as with a handler's, the instance stalls until `SagaRunner.retry`."""
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
    except Exception as exc:
        if not is_refusal(exc):
            # The store failed, or the code has a bug: no decision was made. The event's
            # transaction rolls back; the runner stops (the store) or stalls the instance.
            raise
        logger.info("%s %s: %s refused: %r", saga.name, saga.correlation_value,
                    type(command).__name__, exc)  # fmt: skip
        return exc
    saga.steps.append(command)
    return None


# What a refusal is. A refusal fails the workflow for good (its compensations run), and
# nothing can take that back, while a stall waits for a fix and a retry: so only what a
# domain raises on purpose to refuse counts, and anything else stalls (or, the store
# failing, stops the runner). A refusal is a `ValueError` (the usual `class
# InsufficientFunds(ValueError)`) or an exception class of the user's own that derives
# from no builtin category but `Exception`. Not a refusal:
# - every other builtin category, and whatever derives from one (a user's own class
#   included): RuntimeError, OSError (files, sockets, ReadOnlyStore, PermissionError),
#   LookupError (KeyError, IndexError, ReadModelNotFound), TypeError, AttributeError,
#   NameError, ArithmeticError, AssertionError, ImportError, MemoryError, and among the
#   ValueErrors the builtin UnicodeError family (data no codec reads: an environment);
# - the standard library's own exception classes, whatever they derive from: they tell
#   of the machine and the code (sqlite3.Error, subprocess.CalledProcessError,
#   json.JSONDecodeError, ...), never of a domain's decision. Another library's error
#   that derives straight from Exception (a driver's, an HTTP client's) cannot be told
#   from the user's own and counts as a refusal: a command side lets those out as a
#   RuntimeError (or catches them) when they must stall;
# - pydantic's ValidationError (a ValueError): a model that does not validate, as when an
#   aggregate's stored events no longer replay into its state, is a bug, not a decision;
# - esgen's own errors (EsgenError): the store (BackendError, ConcurrencyError,
#   ReadOnlyStore: these stop the runner), events this code cannot read (DecodeError and
#   its kinds), wiring (RegistryError, AggregateDefinitionError, UnhandledEvent,
#   UnhandledCommand, UndeclaredEvent, SagaError), the read side's state
#   (ProjectionNeedsRebuild, ReadModelNotFound: rebuild, then retry), values no store
#   takes (UnstorableText, UnstorableValue: the code that made them needs fixing), a bare
#   StreamNotFound (code reading the store directly, or the wrong store), and
#   AggregateNotCreated (a handler read `.state` of an aggregate never created without
#   checking `.exists`; its own message calls that a mistake) -
# - except the domain's answers about an aggregate's existence, which the runtime gives on
#   the domain's behalf before any handler runs (`creation_commands`, `must_exist`):
#   AggregateAlreadyExists (a creating command for an id in use) and AggregateNotFound (a
#   command for an aggregate that does not exist). Both are refusals.
_DOMAIN_ANSWERS = (AggregateAlreadyExists, AggregateNotFound)
_REFUSING_BASES = frozenset({ValueError, Exception, BaseException, object})


def is_refusal(error: BaseException) -> bool:
    """Whether a command's error is the domain refusing it (see the rule above)."""
    if isinstance(error, _DOMAIN_ANSWERS):
        return True
    if isinstance(error, EsgenError | ValidationError) or not isinstance(error, Exception):
        return False
    return not any(
        kind not in _REFUSING_BASES and _in_standard_library(kind) for kind in type(error).__mro__
    )


def _in_standard_library(kind: type) -> bool:
    # builtins is one of sys.stdlib_module_names. A project's top-level package named
    # like a standard module would shadow it (and break what imports that), so none is.
    return kind.__module__.partition(".")[0] in sys.stdlib_module_names


def compensate(saga: Saga[Any, Any], dispatch: Dispatch) -> None:
    """Undo the steps taken, newest first; a failing compensation does not stop the rest."""
    for step in reversed(saga.steps):
        undo = saga._compensation_for(step)
        if undo is None:
            continue
        try:
            dispatch(undo)
        except Exception as exc:
            if not is_refusal(exc):
                raise
            saga.reason = f"{saga.reason}; compensation {type(undo).__name__} failed: {exc}"
            logger.warning("%s %s: compensation %s failed: %r", saga.name,
                           saga.correlation_value, type(undo).__name__, exc)  # fmt: skip
        else:
            saga.compensated.append(undo)
