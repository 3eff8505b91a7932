"""The stores' one rule on text, for read-model rows and saga records: NUL and lone
surrogates in a row's text (its key, a text column, text inside a JSON column) or in a
saga's correlation are refused by name on every backend that keeps read models, before any
table changes or is read. PostgreSQL text and jsonb cannot hold
NUL while SQLite would, and no driver can encode a lone surrogate."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel

from esgen.runtime import (
    Column,
    Event,
    EventRegistry,
    EventStore,
    NewEvent,
    Projection,
    ProjectionRunner,
    RecordedEvent,
    Saga,
    SagaRunner,
    TableSpec,
    UnstorableText,
    ValueObject,
)
from esgen.runtime.testing._fixtures import StoreFixtures, active_rows

__all__ = ["RowTextContract"]


class Labelled(Event):
    event_type = "Labelled"
    event_version = 1
    key: str
    label: str
    tags: tuple[str, ...] = ()


class LabelRow(ValueObject):
    key: str
    label: str
    tags: tuple[str, ...] = ()


class Labels(Projection[LabelRow]):
    name: ClassVar[str] = "labels"
    table: ClassVar[TableSpec] = TableSpec(
        "labels",
        key="key",
        columns=(Column("key", "text"), Column("label", "text"), Column("tags", "json")),
    )
    row_type: ClassVar[type[BaseModel]] = LabelRow
    handlers: ClassVar[Mapping[type[Event], str]] = {Labelled: "on_labelled"}

    def on_labelled(self, event: Labelled, recorded: RecordedEvent) -> None:
        # A lone surrogate cannot come from a stored event (events refuse it): the handler
        # makes one from a marker, as a bug slicing UTF-16 text might.
        def odd(text: str) -> str:
            return text.replace("<surrogate>", "\ud800")

        self.rows.put(
            LabelRow(
                key=odd(event.key), label=odd(event.label), tags=tuple(odd(t) for t in event.tags)
            )
        )


# (event fields, the slot the error names): NUL travels in events as JSON's \u0000.
_ODD_ROWS = [
    ({"key": "k\x00", "label": "fine"}, "key"),
    ({"key": "k", "label": "a\x00b"}, "label"),
    ({"key": "k", "label": "fine", "tags": ("x", "y\x00")}, "tags[1]"),
    ({"key": "<surrogate>", "label": "fine"}, "key"),
    ({"key": "k", "label": "a<surrogate>"}, "label"),
    ({"key": "k", "label": "fine", "tags": ("<surrogate>",)}, "tags[0]"),
]


class LabelState(ValueObject):
    label: str


class Labelling(Saga[LabelState]):
    name = "Labelling"
    starts_with = Labelled
    correlation = "key"
    state_type = LabelState
    handlers: ClassVar[Mapping[type[Event], str]] = {Labelled: "on_labelled"}

    def on_labelled(self, event: Labelled) -> None:
        self.state = LabelState(label=event.label)


def _no_commands(command: object) -> object:
    raise AssertionError(f"this saga sends no commands (got {command!r})")


class RowTextContract(StoreFixtures):
    """What every backend that keeps read models does with text no backend can store."""

    @pytest.mark.parametrize(("fields", "slot"), _ODD_ROWS)
    def test_a_row_with_text_no_backend_can_store_is_refused_by_name(
        self, progress: EventStore, fields: dict[str, Any], slot: str
    ) -> None:
        store = progress
        registry = EventRegistry([Labelled])
        runner = ProjectionRunner(store, registry, [Labels()])
        store.append("first", [NewEvent.from_event(Labelled(key="ok", label="é ok"))], 0)
        assert runner.catch_up() == 1
        store.append("second", [NewEvent.from_event(Labelled(**fields))], 0)
        with pytest.raises(UnstorableText, match=rf"LabelRow\.{re.escape(slot)}"):
            runner.catch_up()
        (status,) = runner.status()
        assert status.position == 1
        assert [(r.key, r.label) for r in _rows(store)] == [("ok", "é ok")]

    @pytest.mark.parametrize("correlation", ["a\x00", "a\ud800"], ids=["NUL", "surrogate"])
    def test_a_saga_correlation_no_backend_can_store_is_refused_by_name(
        self, progress: EventStore, correlation: str
    ) -> None:
        store = progress
        runner = SagaRunner(Labelling, store, EventRegistry([Labelled]), _no_commands)
        store.append("first", [NewEvent.from_event(Labelled(key="a", label="ok"))], 0)
        runner.catch_up()
        with pytest.raises(UnstorableText, match="correlation of saga Labelling") as caught:
            runner.instance(correlation)
        assert caught.value.value == correlation
        found = runner.instance("a")
        assert found is not None and found.state == LabelState(label="ok")


def _rows(store: EventStore) -> list[LabelRow]:
    return active_rows(store, Labels)
