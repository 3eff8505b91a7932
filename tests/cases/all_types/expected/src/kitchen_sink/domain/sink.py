"""The Sink aggregate: what its commands decide, and how its events change its
state.

Yours to edit: esgen created this file once and never touches it again. When
the schema gains an event or a command, the generated base gains an abstract
method, and mypy and the tests name what to add here.
"""

from __future__ import annotations

from typing_extensions import override

from ..aggregates.sink import SinkBase, SinkState
from ..events.sink import EverythingHappened


class Sink(SinkBase):
    """The Sink."""

    @override
    def apply_everything_happened(self, event: EverythingHappened) -> SinkState:
        # TODO: Sink.apply_everything_happened: return the SinkState after
        # EverythingHappened
        raise NotImplementedError("Sink.apply_everything_happened")
