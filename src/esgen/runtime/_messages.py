"""Base classes for the messages generated code defines: events, commands, value types.

All are frozen pydantic models that reject unknown keys: an event is an immutable fact,
and a typo in a payload must fail loudly rather than vanish. Bytes travel as base64 in
JSON, so any bytes survive a round trip through the store. A field whose schema name
cannot be an attribute (`from`, `json`) is the attribute `from_`, `json_`, keyed in JSON by
its schema name: models read either, and write the schema name.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict

__all__ = ["Command", "Event", "ValueObject"]


class _Message(BaseModel):
    """What every generated model shares."""

    # A literal ConfigDict on a class, not a shared variable: pydantic's mypy plugin reads
    # `validate_by_name` only from one, and without it would ask for `from=` where code
    # writes `from_=`.
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        ser_json_bytes="base64",
        val_json_bytes="base64",
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )


class ValueObject(_Message):
    """A value type: compared by value, never changed after creation."""


class Event(_Message):
    """One version of one event type.

    Generated subclasses set `event_type` (the stable name stored with every event) and
    `event_version` (1..n). Older versions are separate classes with the same type name.
    """

    event_type: ClassVar[str]
    event_version: ClassVar[int]


class Command(_Message):
    """A request to change one aggregate; handled once, may be rejected."""

    command_type: ClassVar[str]
