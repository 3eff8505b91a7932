"""The aggregate base: decide (command methods record events), evolve (apply methods).

A subclass declares, as plain class attributes, its type name, its state class and the
method that applies each event class; the dispatch table is built once per class, so
applying an event costs one dict lookup and one call. Apply methods return the new state
rather than changing it, which makes history listings and snapshots plain references.
The id type (UUID, int or str) comes from the type arguments, like the state class.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar, cast

from pydantic import BaseModel

from esgen.runtime._errors import (
    AggregateAlreadyExists,
    AggregateDefinitionError,
    AggregateNotCreated,
    AggregateNotFound,
    DecodeError,
    UndeclaredEvent,
    UnhandledCommand,
    UnhandledEvent,
    show_id,
)
from esgen.runtime._ids import ID_TYPES, IdT, check_id, decode_id, encode_id
from esgen.runtime._messages import Command, Event
from esgen.runtime._records import Clock, to_utc, utc_now

__all__ = ["Aggregate", "IdT", "StateT", "state_fingerprint"]

StateT = TypeVar("StateT", bound=BaseModel)

ApplyFunction = Callable[[Any, Any], Any]


class Aggregate(Generic[StateT, IdT]):
    """Base of every aggregate. Usage::

        class Account(Aggregate[AccountState, UUID]):   # ids are UUIDs (default: str)
            aggregate_type = "Account"            # stored in every stream id: never rename
            snapshot_every = 100                  # optional
            apply_methods = {AccountOpened: "_opened", MoneyDeposited: "_deposited"}
            creation_commands = frozenset({OpenAccount})   # optional, see `execute`

            def deposit(self, amount: int) -> None:        # decide
                if amount <= 0:
                    raise ValueError("amount must be positive")
                self.record(MoneyDeposited(amount=amount, at=self.now()))

            def _opened(self, event: AccountOpened) -> AccountState:      # evolve
                return AccountState(owner=event.owner, balance=0, since=self.event_time)

            def _deposited(self, event: MoneyDeposited) -> AccountState:
                return self.state.model_copy(update={"balance": self.state.balance + event.amount})

    (Annotate `apply_methods: ClassVar[Mapping[type[Event], str]]` where a linter asks for
    ClassVar on mutable class attributes; ruff's RUF012 does.) The state class and the id
    type come from the type arguments (`Aggregate[AccountState, UUID]`) unless
    `state_type` / `id_type` are set. `apply_methods`, `command_methods` and
    `creation_commands` of base classes are inherited and may be extended; names are
    looked up on the concrete class, so a generated base may name methods that a
    hand-written subclass defines.
    """

    aggregate_type: ClassVar[str]
    """The stable name of the aggregate type; stream ids are "<aggregate_type>-<id>"."""
    state_type: ClassVar[type[BaseModel]]
    id_type: ClassVar[type] = str
    """UUID, int or str: the type of `id`, which decides its text form in the stream id."""
    apply_methods: ClassVar[Mapping[type[Event], str]] = {}
    snapshot_every: ClassVar[int | None] = None
    """Take a snapshot when this many events were saved since the last one (None: never)."""
    state_fingerprint: ClassVar[str | None] = None
    """Identifies the state schema in snapshots; derived from `state_type` unless set."""
    command_methods: ClassVar[Mapping[type[Command], str]] = {}
    """The method handling each command class, for `execute`: (self, command) -> events."""
    command_emits: ClassVar[Mapping[type[Command], tuple[type[Event], ...]]] = {}
    """The event classes each command may produce (unlisted commands: any)."""
    creation_commands: ClassVar[frozenset[type[Command]]] = frozenset()
    """The commands that create the aggregate. When there are any, `execute` refuses them
    on an aggregate that exists, and every other command on one that does not."""

    _dispatch: ClassVar[dict[type[Event], ApplyFunction]] = {}
    _command_dispatch: ClassVar[dict[type[Command], str]] = {}
    _creation: ClassVar[frozenset[type[Command]]] = frozenset()
    _reads_event_time: ClassVar[bool] = False
    """Whether the class's own code names `event_time`: only then do loads fetch each
    event's stored time (a column that costs every load otherwise). Set at class creation,
    and on the first read a scan missed (code elsewhere reading it), from then on."""
    _definition_problems: ClassVar[tuple[str, ...]] = ()

    __slots__ = (
        "_clock",
        "_event_time",
        "_event_time_of",
        "_id",
        "_moment",
        "_pending",
        "_pending_times",
        "_snapshot_version",
        "_state",
        "_version",
    )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._reads_event_time = cls._reads_event_time or _names_event_time(cls)
        state_argument, id_argument = _type_arguments(cls)
        if "state_type" not in cls.__dict__ and state_argument is not None:
            cls.state_type = state_argument
        if "id_type" not in cls.__dict__ and id_argument is not None:
            cls.id_type = id_argument
        if cls.id_type not in ID_TYPES:
            raise AggregateDefinitionError(
                f"{cls.__qualname__}: ids must be UUID, int or str (got {cls.id_type!r})"
            )
        merged: dict[type[Event], str] = {}
        for klass in reversed(cls.__mro__):
            merged.update(klass.__dict__.get("apply_methods", {}))
        dispatch: dict[type[Event], ApplyFunction] = {}
        problems: list[str] = []
        for event_class, name in merged.items():
            if not (isinstance(event_class, type) and issubclass(event_class, Event)):
                raise AggregateDefinitionError(
                    f"{cls.__qualname__}.apply_methods keys must be Event classes "
                    f"(got {event_class!r})"
                )
            if not isinstance(name, str):
                raise AggregateDefinitionError(
                    f"{cls.__qualname__}.apply_methods[{event_class.__qualname__}] must be the "
                    f"name of a method (got {name!r})"
                )
            raw = inspect.getattr_static(cls, name, None)
            if raw is None:
                # Allowed on an abstract base; reported when the class is used.
                problems.append(
                    f"{cls.__qualname__} has no method {name!r} to apply {event_class.__qualname__}"
                )
            elif isinstance(raw, staticmethod | classmethod) or not callable(raw):
                raise AggregateDefinitionError(
                    f"{cls.__qualname__}.{name} must be a plain method (self, event) -> state "
                    f"to apply {event_class.__qualname__}"
                )
            else:
                dispatch[event_class] = raw
        cls._dispatch = dispatch
        commands: dict[type[Command], str] = {}
        creation: set[type[Command]] = set()
        for klass in reversed(cls.__mro__):
            commands.update(klass.__dict__.get("command_methods", {}))
            creation.update(klass.__dict__.get("creation_commands", ()))
        for command_class, name in commands.items():
            if inspect.getattr_static(cls, name, None) is None:
                problems.append(
                    f"{cls.__qualname__} has no method {name!r} to handle "
                    f"{command_class.__qualname__}"
                )
        for command_class in creation:
            if not (isinstance(command_class, type) and issubclass(command_class, Command)):
                raise AggregateDefinitionError(
                    f"{cls.__qualname__}.creation_commands must hold Command classes "
                    f"(got {command_class!r})"
                )
            if command_class not in commands:
                problems.append(
                    f"{cls.__qualname__}.creation_commands lists {command_class.__qualname__}, "
                    "which command_methods gives no handler"
                )
        cls._command_dispatch = commands
        cls._creation = frozenset(creation)
        cls._definition_problems = tuple(problems)

    def __init__(self, aggregate_id: IdT, *, clock: Clock | None = None) -> None:
        """A new, empty aggregate (version 0, no state). `clock` is what `now()` reads;
        repositories pass theirs."""
        if self._definition_problems:
            raise AggregateDefinitionError("; ".join(self._definition_problems))
        check_id(self.id_type, aggregate_id, type(self).__qualname__)
        self._id: IdT = aggregate_id
        self._version = 0
        self._state: StateT | None = None
        self._pending: list[Event] = []
        # When each pending event was recorded, by this aggregate's clock: saved with it.
        self._pending_times: list[datetime] = []
        # Version of the newest snapshot known to exist (0: none); the repository uses it to
        # decide when to snapshot without reading the store again.
        self._snapshot_version = 0
        self._clock: Clock = utc_now if clock is None else clock
        # The time of the event being applied (or last applied): a datetime; the ISO text
        # a store handed over, parsed only if `event_time` is read; NOT_FETCHED while a
        # load replays without the times; after such a load, the last event's version
        # (an int), whose time `_event_time_of` reads from the store if asked.
        self._event_time: datetime | str | int | None = None
        self._event_time_of: Callable[[int], datetime] | None = None
        # While `execute` runs: the one moment the command happens at.
        self._moment: datetime | None = None

    # -- reading ------------------------------------------------------------------------

    @property
    def id(self) -> IdT:
        return self._id

    @property
    def version(self) -> int:
        """Number of events applied, including pending ones not saved yet."""
        return self._version

    @property
    def committed_version(self) -> int:
        """The stream version this aggregate was loaded at or last saved at."""
        return self._version - len(self._pending)

    @property
    def exists(self) -> bool:
        """False until the first event has been applied."""
        return self._state is not None

    @property
    def state(self) -> StateT:
        """The current state; raises `AggregateNotCreated` before the first event."""
        state = self._state
        if state is None:
            raise AggregateNotCreated(
                f"{self.aggregate_type} {show_id(self._id)} has no state yet: no event has been "
                "applied (check .exists, or use .state_or_none)"
            )
        return state

    @property
    def state_or_none(self) -> StateT | None:
        return self._state

    @property
    def pending_events(self) -> tuple[Event, ...]:
        """Events recorded since the last load or save, oldest first."""
        return tuple(self._pending)

    @classmethod
    def stream_id_for(cls, aggregate_id: IdT) -> str:
        check_id(cls.id_type, aggregate_id, cls.__qualname__)
        return f"{cls.aggregate_type}-{encode_id(aggregate_id)}"

    @classmethod
    def id_from_stream_id(cls, stream_id: str) -> IdT:
        """The id in a stream id of this aggregate type (`Account-<id>` -> id, typed)."""
        prefix = f"{cls.aggregate_type}-"
        if not stream_id.startswith(prefix):
            raise DecodeError(
                f"{stream_id!r} is not a stream of {cls.__qualname__}: expected "
                f"{prefix!r} followed by its id"
            )
        try:
            value = decode_id(cls.id_type, stream_id[len(prefix) :])
        except DecodeError as exc:
            raise DecodeError(f"stream {stream_id!r} of {cls.__qualname__}: {exc}") from None
        # id_type is the runtime copy of the IdT argument, which the checker cannot relate.
        return cast("IdT", value)

    # -- time ---------------------------------------------------------------------------

    def now(self) -> datetime:
        """The current time (aware, UTC) by the aggregate's clock, for command handlers.

        Within one `execute`, every call returns the same moment, which is also the time
        the command's events are recorded at.
        """
        moment = self._moment
        if moment is None:
            moment = to_utc(self._clock(), f"{type(self).__qualname__}'s clock time")
        return moment

    @property
    def event_time(self) -> datetime:
        """In an apply method, when the event being applied was recorded: its stored time
        when replaying, the time the aggregate recorded it when new. Elsewhere, the time
        of the last event applied (unknown after a snapshot with no later events)."""
        value = self._event_time
        if isinstance(value, str):
            value = self._event_time = datetime.fromisoformat(value)
        elif value is NOT_FETCHED:
            # Read during a load that left the times out, by code the class scan did not
            # see: from now on the class's loads fetch them, starting with this one again.
            type(self)._reads_event_time = True
            raise TimesNotFetched
        elif isinstance(value, int):
            # After such a load: the time of the last event applied, read on demand.
            if self._event_time_of is None:  # set by the load that left an int here
                raise RuntimeError("event_time: the stored time cannot be read here")
            value = self._event_time = self._event_time_of(value)
        if value is None:
            raise AggregateNotCreated(
                f"{self.aggregate_type} {show_id(self._id)}: no event time, since no event "
                "has been applied here (event_time is meant for apply methods)"
            )
        return value

    # -- deciding and evolving ----------------------------------------------------------

    def record(self, event: Event) -> None:
        """Apply a new event and keep it to be saved. If applying fails, nothing changes."""
        self._record(event, self.now())

    def _record(self, event: Event, moment: datetime) -> None:
        previous = self._event_time
        self._event_time = moment
        try:
            self._state = self._apply_function(event)(self, event)
        except BaseException:
            self._event_time = previous
            raise
        self._pending.append(event)
        self._pending_times.append(moment)
        self._version += 1

    def execute(self, command: Command) -> tuple[Event, ...]:
        """Handle a command: run its handler, then check and record the events it returns.

        With `creation_commands` declared, a creating command on an aggregate that exists
        raises `AggregateAlreadyExists`, and any other command on one that does not raises
        `AggregateNotFound`, before the handler runs. All or nothing: if the handler
        raises, returns an event its command may not emit, or an event fails to apply, the
        aggregate is left as it was. The events are recorded at the time `now()` returns.
        """
        cls = command.__class__
        name = self._command_dispatch.get(cls)
        if name is None:
            raise UnhandledCommand(
                f"{type(self).__qualname__} has no handler for {type(command).__qualname__}; "
                "add it to command_methods"
            )
        if self._creation:
            self._check_creation(cls)
        outer = self._moment
        moment = self._moment = self.now()
        try:
            events = tuple(getattr(self, name)(command))
        finally:
            self._moment = outer
        allowed = self.command_emits.get(cls)
        if allowed is not None:
            for event in events:
                if event.__class__ not in allowed:
                    names = ", ".join(e.__qualname__ for e in allowed)
                    raise UndeclaredEvent(
                        f"{type(self).__qualname__}.{name} returned "
                        f"{type(event).__qualname__}, but {type(command).__qualname__} may "
                        f"only emit {names}"
                    )
        state, version, pending = self._state, self._version, len(self._pending)
        event_time = self._event_time
        try:
            for event in events:
                self._record(event, moment)
        except BaseException:
            self._state, self._version, self._event_time = state, version, event_time
            del self._pending[pending:]
            del self._pending_times[pending:]
            raise
        return events

    def _check_creation(self, command_class: type[Command]) -> None:
        exists = self._state is not None
        if (command_class in self._creation) != exists:
            return
        command = command_class.__qualname__
        stream_id = self.stream_id_for(self._id)
        if exists:
            raise AggregateAlreadyExists(self.aggregate_type, self._id, stream_id, command)
        creators = " or ".join(sorted(c.__qualname__ for c in self._creation))
        raise AggregateNotFound(
            self.aggregate_type,
            self._id,
            stream_id,
            hint=f": {command} needs one that exists ({creators} creates it)",
        )

    def _apply_function(self, event: Event) -> ApplyFunction:
        try:
            return self._dispatch[event.__class__]
        except KeyError:
            raise UnhandledEvent(
                f"{type(self).__qualname__} has no apply method for {type(event).__qualname__} "
                f"(event type {getattr(event, 'event_type', '?')!r}); add it to apply_methods"
            ) from None

    def __repr__(self) -> str:
        pending = f", pending={len(self._pending)}" if self._pending else ""
        return (
            f"{type(self).__qualname__}(id={self._id!r}, version={self._version}{pending}, "
            f"state={self._state!r})"
        )


def state_fingerprint(state_type: type[BaseModel]) -> str:
    """A short hash of the shape of the state class: its fields, their types and defaults.

    Snapshots store it; a snapshot whose fingerprint differs from the running code's is
    ignored, because its JSON may no longer validate as (or mean the same in) the new shape.
    Titles, descriptions and examples do not count. A change of meaning without a change
    of shape (say, an apply method fixed) is invisible here: set `state_fingerprint` on
    the aggregate class to a new value to drop the old snapshots then.
    """
    try:
        schema: object = _shape(state_type.model_json_schema())
    except Exception:  # types without a JSON schema: fall back to the field declarations
        schema = {name: repr(f.annotation) for name, f in state_type.model_fields.items()}
    text = json.dumps(schema, sort_keys=True, separators=(",", ":"), default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


_PROSE = frozenset({"title", "description", "examples"})
_NAME_MAPS = frozenset({"properties", "$defs", "definitions", "patternProperties"})


def _shape(node: object, names: bool = False) -> object:
    """The JSON schema without its prose; keys of name maps (field names) are kept as is."""
    if isinstance(node, dict):
        if names:
            return {key: _shape(value) for key, value in node.items()}
        return {
            key: _shape(value, key in _NAME_MAPS)
            for key, value in node.items()
            if key not in _PROSE
        }
    if isinstance(node, list):
        return [_shape(item) for item in node]
    return node


def _type_arguments(cls: type) -> tuple[type[BaseModel] | None, type | None]:
    """The state class and id type given to Aggregate[...] in the class's own bases."""
    for base in getattr(cls, "__orig_bases__", ()):
        origin = typing.get_origin(base)
        if isinstance(origin, type) and issubclass(origin, Aggregate):
            args = typing.get_args(base)
            state = args[0] if args else None
            if not (isinstance(state, type) and issubclass(state, BaseModel)):
                state = None
            return state, _id_argument(cls, args[1]) if len(args) > 1 else None
    return None, None


def _id_argument(cls: type, argument: object) -> type | None:
    if isinstance(argument, typing.TypeVar):
        return None  # a generic base; its subclasses give the type
    # A NewType (AccountId = NewType("AccountId", UUID)) is its underlying type at run time.
    while hasattr(argument, "__supertype__"):
        argument = argument.__supertype__
    if argument in ID_TYPES:
        assert isinstance(argument, type)
        return argument
    raise AggregateDefinitionError(
        f"{cls.__qualname__}: ids must be UUID, int or str (got {argument!r} as the id type "
        "argument of Aggregate[...])"
    )


class _NotFetched:
    def __repr__(self) -> str:
        return "<event time not fetched>"


NOT_FETCHED: Any = _NotFetched()
"""In place of the event time while a load replays without the stored times."""


class TimesNotFetched(BaseException):
    """`event_time` was read during a load that did not fetch the times: the repository
    loads again, with them. Never leaves the runtime; a BaseException, like GeneratorExit,
    so that an apply method's `except Exception` cannot swallow it."""


def _names_event_time(cls: type) -> bool:
    """Whether a function defined in `cls` (nested functions included) reads an attribute
    or name `event_time`: a look at the compiled code, which never runs it."""
    stack = [
        code
        for member in _functions(cls)
        if isinstance(code := getattr(member, "__code__", None), types.CodeType)
    ]
    while stack:
        code = stack.pop()
        if "event_time" in code.co_names:
            return True
        stack.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    return False


def _functions(cls: type) -> Iterator[object]:
    for value in cls.__dict__.values():
        value = inspect.unwrap(value) if callable(value) else value
        if isinstance(value, staticmethod | classmethod):
            yield value.__func__
        elif isinstance(value, property):
            yield from (f for f in (value.fget, value.fset) if f is not None)
        else:
            yield value
