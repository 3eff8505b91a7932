"""The aggregate base: decide (command methods record events), evolve (apply methods).

A subclass declares, as plain class attributes, its type name, its state class and the
method that applies each event class; the dispatch table is built once per class, so
applying an event costs one dict lookup and one call. Apply methods return the new state
rather than changing it, which makes history listings and snapshots plain references.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import typing
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel

from esgen.runtime._errors import (
    AggregateDefinitionError,
    AggregateNotCreated,
    UndeclaredEvent,
    UnhandledCommand,
    UnhandledEvent,
)
from esgen.runtime._messages import Command, Event

__all__ = ["Aggregate", "StateT", "state_fingerprint"]

StateT = TypeVar("StateT", bound=BaseModel)

ApplyFunction = Callable[[Any, Any], Any]


class Aggregate(Generic[StateT]):
    """Base of every aggregate. Usage::

        class Account(Aggregate[AccountState]):
            aggregate_type = "Account"            # stored in every stream id: never rename
            snapshot_every = 100                  # optional
            apply_methods = {AccountOpened: "_opened", MoneyDeposited: "_deposited"}

            def deposit(self, amount: int) -> None:        # decide
                if amount <= 0:
                    raise ValueError("amount must be positive")
                self.record(MoneyDeposited(amount=amount))

            def _opened(self, event: AccountOpened) -> AccountState:      # evolve
                return AccountState(owner=event.owner, balance=0)

            def _deposited(self, event: MoneyDeposited) -> AccountState:
                return self.state.model_copy(update={"balance": self.state.balance + event.amount})

    (Annotate `apply_methods: ClassVar[Mapping[type[Event], str]]` where a linter asks for
    ClassVar on mutable class attributes; ruff's RUF012 does.) The state class comes from
    the type argument (`Aggregate[AccountState]`) unless `state_type` is set.
    `apply_methods` of base classes are inherited and may be extended; names are looked up
    on the concrete class, so a generated base may name methods that a hand-written
    subclass defines.
    """

    aggregate_type: ClassVar[str]
    """The stable name of the aggregate type; stream ids are "<aggregate_type>-<id>"."""
    state_type: ClassVar[type[BaseModel]]
    apply_methods: ClassVar[Mapping[type[Event], str]] = {}
    snapshot_every: ClassVar[int | None] = None
    """Take a snapshot when this many events were saved since the last one (None: never)."""
    state_fingerprint: ClassVar[str | None] = None
    """Identifies the state schema in snapshots; derived from `state_type` unless set."""
    command_methods: ClassVar[Mapping[type[Command], str]] = {}
    """The method handling each command class, for `execute`: (self, command) -> events."""
    command_emits: ClassVar[Mapping[type[Command], tuple[type[Event], ...]]] = {}
    """The event classes each command may produce (unlisted commands: any)."""

    _dispatch: ClassVar[dict[type[Event], ApplyFunction]] = {}
    _command_dispatch: ClassVar[dict[type[Command], str]] = {}
    _definition_problems: ClassVar[tuple[str, ...]] = ()

    __slots__ = ("_id", "_pending", "_snapshot_version", "_state", "_version")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "state_type" not in cls.__dict__:
            inferred = _state_type_argument(cls)
            if inferred is not None:
                cls.state_type = inferred
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
        for klass in reversed(cls.__mro__):
            commands.update(klass.__dict__.get("command_methods", {}))
        for command_class, name in commands.items():
            if inspect.getattr_static(cls, name, None) is None:
                problems.append(
                    f"{cls.__qualname__} has no method {name!r} to handle "
                    f"{command_class.__qualname__}"
                )
        cls._command_dispatch = commands
        cls._definition_problems = tuple(problems)

    def __init__(self, aggregate_id: str) -> None:
        if self._definition_problems:
            raise AggregateDefinitionError("; ".join(self._definition_problems))
        self._id = aggregate_id
        self._version = 0
        self._state: StateT | None = None
        self._pending: list[Event] = []
        # Version of the newest snapshot known to exist (0: none); the repository uses it to
        # decide when to snapshot without reading the store again.
        self._snapshot_version = 0

    # -- reading ------------------------------------------------------------------------

    @property
    def id(self) -> str:
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
                f"{self.aggregate_type} {self._id!r} has no state yet: no event has been "
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
    def stream_id_for(cls, aggregate_id: str) -> str:
        return f"{cls.aggregate_type}-{aggregate_id}"

    # -- deciding and evolving ----------------------------------------------------------

    def record(self, event: Event) -> None:
        """Apply a new event and keep it to be saved. If applying fails, nothing changes."""
        self._state = self._apply_function(event)(self, event)
        self._pending.append(event)
        self._version += 1

    def execute(self, command: Command) -> tuple[Event, ...]:
        """Handle a command: run its handler, then check and record the events it returns.

        All or nothing: if the handler raises, returns an event its command may not emit,
        or an event fails to apply, the aggregate is left as it was.
        """
        name = self._command_dispatch.get(command.__class__)
        if name is None:
            raise UnhandledCommand(
                f"{type(self).__qualname__} has no handler for {type(command).__qualname__}; "
                "add it to command_methods"
            )
        events = tuple(getattr(self, name)(command))
        allowed = self.command_emits.get(command.__class__)
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
        try:
            for event in events:
                self.record(event)
        except BaseException:
            self._state, self._version = state, version
            del self._pending[pending:]
            raise
        return events

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


def _state_type_argument(cls: type) -> type[BaseModel] | None:
    for base in getattr(cls, "__orig_bases__", ()):
        origin = typing.get_origin(base)
        if isinstance(origin, type) and issubclass(origin, Aggregate):
            for arg in typing.get_args(base):
                if isinstance(arg, type) and issubclass(arg, BaseModel):
                    return arg
    return None
