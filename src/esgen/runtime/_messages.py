"""Base classes for the messages generated code defines: events, commands, value types.

All are frozen pydantic models that reject unknown keys: an event is an immutable fact,
and a typo in a payload must fail loudly rather than vanish. Bytes travel as base64 in
JSON, so any bytes survive a round trip through the store.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict

__all__ = ["Command", "Event", "ValueObject"]

_CONFIG = ConfigDict(frozen=True, extra="forbid", ser_json_bytes="base64", val_json_bytes="base64")


class ValueObject(BaseModel):
    """A value type: compared by value, never changed after creation."""

    model_config = _CONFIG


class Event(BaseModel):
    """One version of one event type.

    Generated subclasses set `event_type` (the stable name stored with every event) and
    `event_version` (1..n). Older versions are separate classes with the same type name.
    """

    model_config = _CONFIG

    event_type: ClassVar[str]
    event_version: ClassVar[int]


class Command(BaseModel):
    """A request to change one aggregate; handled once, may be rejected."""

    model_config = _CONFIG

    command_type: ClassVar[str]
