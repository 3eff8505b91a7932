"""The Thing aggregate: what its commands decide, and how its events change its
state.

Yours to edit: esgen created this file once and never touches it again. When
the schema gains an event or a command, the generated base gains an abstract
method, and mypy and the tests name what to add here.
"""

from __future__ import annotations

from typing_extensions import override

from ..aggregates.thing import ThingBase, ThingState
from ..events.thing import Happened


class Thing(ThingBase):
    "ends with a backslash \\"

    @override
    def apply_happened(self, event: Happened) -> ThingState:
        # TODO: Thing.apply_happened: return the ThingState after Happened
        raise NotImplementedError("Thing.apply_happened")
