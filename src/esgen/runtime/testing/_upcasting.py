"""Given a stored payload of an old version, then the latest event: tests for upcasters.

    UpcasterScenario(REGISTRY).given("AccountOpened", 1, {"owner": "ann"}) \\
        .then(AccountOpened(owner="ann", currency="EUR"))
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Self

from esgen.runtime import Event, EventRegistry

__all__ = ["UpcasterScenario"]


class UpcasterScenario:
    def __init__(self, registry: EventRegistry) -> None:
        self._registry = registry
        self._stored: tuple[str, int, str] | None = None

    def given(self, event_type: str, version: int, payload: Mapping[str, object] | str) -> Self:
        """The event as stored by older code: its type, version and JSON payload (a payload
        TypedDict of that version, a dict, or the JSON text)."""
        data = payload if isinstance(payload, str) else json.dumps(payload)
        self._stored = (event_type, version, data)
        return self

    def read(self) -> Event:
        """The stored event read back through the registry's upcasters."""
        if self._stored is None:
            raise AssertionError("call .given(event_type, version, payload) first")
        return self._registry.decode(*self._stored)

    def then(self, expected: Event) -> Event:
        """Assert that reading the stored payload yields exactly `expected`."""
        event = self.read()
        if event != expected:
            raise AssertionError(
                f"upcast event differs\n  expected: {expected!r}\n  got:      {event!r}"
            )
        return event
