"""The Gadget aggregate: what its commands decide, and how its events change its
state.

Yours to edit: esgen created this file once and never touches it again. When
the schema gains an event or a command, the generated base gains an abstract
method, and mypy and the tests name what to add here.
"""

from __future__ import annotations

from collections.abc import Sequence

from typing_extensions import override

from ..aggregates.gadget import GadgetBase, GadgetState
from ..commands.gadget import MakeGadget
from ..events.gadget import GadgetMade, Moved


class Gadget(GadgetBase):
    """The Gadget."""

    @override
    def handle_make_gadget(self, command: MakeGadget) -> Sequence[GadgetMade]:
        # TODO: Gadget.handle_make_gadget: decide which events MakeGadget
        # causes (GadgetMade)
        raise NotImplementedError("Gadget.handle_make_gadget")

    @override
    def apply_moved(self, event: Moved) -> GadgetState:
        # TODO: Gadget.apply_moved: return the GadgetState after Moved
        raise NotImplementedError("Gadget.apply_moved")

    @override
    def apply_gadget_made(self, event: GadgetMade) -> GadgetState:
        # TODO: Gadget.apply_gadget_made: return the GadgetState after
        # GadgetMade
        raise NotImplementedError("Gadget.apply_gadget_made")
