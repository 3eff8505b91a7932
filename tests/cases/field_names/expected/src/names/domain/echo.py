"""The Echo saga: how the workflow reacts to each event, and how it undoes its
steps.

Yours to edit: esgen created this file once and never touches it again.
"""

from __future__ import annotations

from typing_extensions import override

from ..events.gadget import GadgetMade
from ..sagas.echo import EchoBase


class Echo(EchoBase):
    """The Echo."""

    @override
    def on_gadget_made(self, event: GadgetMade) -> None:
        # TODO: Echo.on_gadget_made: react to GadgetMade
        raise NotImplementedError("Echo.on_gadget_made")
