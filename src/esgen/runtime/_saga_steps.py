"""A saga's steps at rest: the commands it sent, kept for its compensations.

A command with personal fields is kept sealed under the saga's data subject (the value of
its state's `data_subject` field), as the state is: forgetting the subject leaves the
steps' placeholders, and the compensations still run, on those. A command without
personal fields is kept as its JSON, as always.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, cast
from uuid import UUID

from pydantic import BaseModel

from esgen.runtime._errors import AggregateDefinitionError
from esgen.runtime._finite import dump_json
from esgen.runtime._messages import Command
from esgen.runtime._personal import (
    PersonalDataError,
    PersonalFields,
    model_opener,
    personal_fields,
)
from esgen.runtime._ports import EventStore
from esgen.runtime._saga import Saga
from esgen.runtime._sealed import seal_derived

__all__ = ["SagaSteps"]


class SagaSteps:
    """How one saga class's steps are written and read on one store."""

    def __init__(self, saga: type[Saga[Any, Any]], store: EventStore) -> None:
        self._saga = saga.name
        self._store = store
        self._readers: dict[str, Callable[[str], Command]] = {}
        self._personal: dict[type[Command], PersonalFields] = {}
        for command in saga.sends:
            spec = personal_fields(command)
            if spec is None:
                self._readers[command.command_type] = command.model_validate_json
            else:
                self._personal[command] = spec
                opener = model_opener(command, store.keyring)
                self._readers[command.command_type] = cast("Callable[[str], Command]", opener)
        # A command naming no subject of its own (generated ones never do) is sealed under
        # the saga's: a saga follows several aggregates, so no id is the obvious one.
        unnamed = {c: s for c, s in self._personal.items() if s.subject is None}
        self._subject = _state_subject(saga, unnamed) if unnamed else None

    def read(self, kind: str, text: str) -> Command:
        """A stored step; a forgotten subject's personal fields read as placeholders."""
        return self._readers[kind](text)

    def writer(self, state: BaseModel | None) -> Callable[[Command], str]:
        """How each step of an instance with this state is stored."""
        if not self._personal:
            return dump_json  # no personal fields: no cost beyond what steps always had
        subject = self._subject_of(state)

        def text(command: Command) -> str:
            spec = self._personal.get(type(command))
            if spec is None:
                return dump_json(command)
            what = f"{type(command).__name__}, a step of saga {self._saga}"
            if spec.subject is None and subject is None:
                raise PersonalDataError(
                    f"{what}, holds personal data, but the instance has no state yet to name "
                    "its data subject: set `self.state` before sending it"
                )
            data = json.loads(dump_json(command, what))
            # A forgotten subject keeps the placeholders, and the saga goes on (as its
            # state does): the steps are derived data, not new personal data.
            data = seal_derived(self._store.keyring, spec, data, subject, what)
            return json.dumps(data, ensure_ascii=False, separators=(",", ":"))

        return text

    def _subject_of(self, state: BaseModel | None) -> str | None:
        if state is None or self._subject is None:
            return None
        value = getattr(state, self._subject)
        if isinstance(value, UUID) or (isinstance(value, int) and not isinstance(value, bool)):
            return str(value)
        if isinstance(value, str) and value:
            return value
        raise PersonalDataError(
            f"saga {self._saga}: the steps hold personal data, but the subject field "
            f"{self._subject!r} of its state is {value!r}"
        )


def _state_subject(
    saga: type[Saga[Any, Any]], commands: dict[type[Command], PersonalFields]
) -> str:
    """The attribute of the saga's state naming its data subject: required once a command
    it sends has personal fields, whether or not the state has any."""
    state_type = saga.state_type
    subject = getattr(state_type, "data_subject", None)
    sent = "; ".join(f"{c.__name__}: {', '.join(s.paths)}" for c, s in commands.items())
    if subject is None:
        raise AggregateDefinitionError(
            f"saga {saga.name}: it sends commands with personal fields ({sent}), kept sealed "
            f"in its steps under its data subject, but its state {state_type.__name__} names "
            "none: set `data_subject: ClassVar[str]` to the state field that identifies the "
            "person"
        )
    if subject not in state_type.model_fields:
        raise AggregateDefinitionError(
            f"saga {saga.name}: {state_type.__name__}.data_subject names {subject!r}, which "
            "is not a field"
        )
    return str(subject)
