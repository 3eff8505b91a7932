"""The Gadgets projection: how each event changes its rows.

Handlers read and change rows through `self.rows`: get, put, update, delete,
and `list(...)`/`count(...)` with conditions and orders built from
GadgetsFields (`GadgetsFields.<field>.eq(value)`, `.desc()`). Code outside
handlers queries the read model with GadgetsQuery(store).

Yours to edit: esgen created this file once and never touches it again.
"""

from __future__ import annotations

from typing_extensions import override

from esgen.runtime import RecordedEvent

from ..events.gadget import GadgetMade
from ..projections.gadgets import GadgetsBase


class Gadgets(GadgetsBase):
    """The Gadgets."""

    @override
    def on_gadget_made(self, event: GadgetMade, recorded: RecordedEvent) -> None:
        # TODO: Gadgets.on_gadget_made: change the rows for GadgetMade
        raise NotImplementedError("Gadgets.on_gadget_made")
