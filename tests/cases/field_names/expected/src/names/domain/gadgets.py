"""The Gadgets projection: how each event changes its rows.

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
