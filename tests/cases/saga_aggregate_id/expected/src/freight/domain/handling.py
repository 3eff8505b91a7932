"""The Handling aggregate: what its commands decide, and how its events change its
state.

Yours to edit: esgen created this file once and never touches it again. When
the schema gains an event or a command, the generated base gains an abstract
method, and mypy and the tests name what to add here.
"""

from __future__ import annotations

from collections.abc import Sequence

from typing_extensions import override

from ..aggregates.handling import HandlingBase, HandlingState
from ..commands.handling import RegisterHandling
from ..events.handling import HandlingLost, HandlingRegistered


class Handling(HandlingBase):
    """A handling event at a port, which names the cargo it handled."""

    @override
    def handle_register_handling(
        self, command: RegisterHandling
    ) -> Sequence[HandlingRegistered]:
        # TODO: Handling.handle_register_handling: decide which events
        # RegisterHandling causes (HandlingRegistered)
        raise NotImplementedError("Handling.handle_register_handling")

    @override
    def apply_handling_registered(self, event: HandlingRegistered) -> HandlingState:
        # TODO: Handling.apply_handling_registered: return the HandlingState
        # after HandlingRegistered
        raise NotImplementedError("Handling.apply_handling_registered")

    @override
    def apply_handling_lost(self, event: HandlingLost) -> HandlingState:
        # TODO: Handling.apply_handling_lost: return the HandlingState after
        # HandlingLost
        raise NotImplementedError("Handling.apply_handling_lost")
