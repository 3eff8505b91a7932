"""Consumers: read models of this context fed by events that other contexts publish.

A consumer is a projection whose events come from the broker instead of this context's
store: its handlers get the upstream's typed events (upcast to the latest version this
context knows) and the message as a `RecordedEvent` of the upstream context, and change
rows through `self.rows`, exactly as a projection's do. `ConsumerRunner`
(`esgen.runtime.nats`) commits each message's row changes together with its id in an
inbox, so a message delivered twice has one effect.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar, NoReturn

from pydantic import BaseModel
from typing_extensions import TypeVar

from esgen.runtime._errors import EventStoreError, ProjectionNeedsRebuild
from esgen.runtime._messages import Event
from esgen.runtime._projection import Projection
from esgen.runtime._readmodel import TableBackend
from esgen.runtime._registry import EventRegistry
from esgen.runtime._views import ReadModel

__all__ = ["Consumer", "ConsumerNeedsReplay", "ConsumerReadModel"]

RowT = TypeVar("RowT", bound=BaseModel)
AggIdT = TypeVar("AggIdT", default=str)
KeyT = TypeVar("KeyT", default=Any)


class Consumer(Projection[RowT, AggIdT]):
    """Base of every generated consumer base; users write the `on_<event>` handlers."""

    subscriptions: ClassVar[Mapping[str, EventRegistry]] = {}
    """Upstream context -> the registry of its published events as this context knows
    them (every version it knows, with upcasters to the latest)."""
    upstream_of: ClassVar[Mapping[type[Event], str]] = {}
    """Each handled event class (an upstream's, latest version) -> its upstream context."""

    @classmethod
    def handles(cls) -> frozenset[tuple[str, str]]:
        """(upstream context, event type) of every event it has a handler for."""
        return frozenset((cls.upstream_of[event], event.event_type) for event in cls.handlers)


class ConsumerNeedsReplay(EventStoreError, RuntimeError):
    """A consumer's table was built with another layout (its fields changed since). Its
    rows come from the broker, not from this store, so no rebuild can refill them here:
    they are refilled by replaying the upstream streams (docs/consumers.md)."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"the table of consumer {name} was built with other fields; replay it from the "
            "upstream streams (docs/consumers.md, 'Changing a consumer's fields')"
        )


class ConsumerReadModel(ReadModel[RowT, KeyT]):
    """Typed queries on a consumer's read model: those of a projection's, but for waiting
    on a position, and with the advice a consumer needs when its fields changed."""

    def wait_for(self, position_or_token: int | str | bytes, *, timeout: float) -> NoReturn:
        """Refused: a consumer's rows follow another context's events through the broker,
        not this store's global order, so no position of this store (or token a command of
        this context gave) says whether they hold a write."""
        raise TypeError(
            f"{type(self).__name__} reads consumer {self.table.name}, fed by other contexts' "
            "events through the broker: positions and tokens of this store do not apply to "
            "it (see docs/consumers.md)"
        )

    @contextmanager
    def _read(self) -> Iterator[TableBackend]:
        try:
            with super()._read() as backend:
                yield backend
        except ProjectionNeedsRebuild:
            raise ConsumerNeedsReplay(self.table.name) from None
