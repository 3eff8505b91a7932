"""The Shipment aggregate: what its commands decide, and how its events change its
state.

Yours to edit: esgen created this file once and never touches it again. When
the schema gains an event or a command, the generated base gains an abstract
method, and mypy and the tests name what to add here.
"""

from __future__ import annotations

from collections.abc import Sequence

from typing_extensions import override

from ..aggregates.shipment import ShipmentBase, ShipmentState
from ..commands.shipment import Ship
from ..events.shipment import Shipped


class Shipment(ShipmentBase):
    """The Shipment."""

    @override
    def handle_ship(self, command: Ship) -> Sequence[Shipped]:
        # TODO: Shipment.handle_ship: decide which events Ship causes
        # (Shipped)
        raise NotImplementedError("Shipment.handle_ship")

    @override
    def apply_shipped(self, event: Shipped) -> ShipmentState:
        # TODO: Shipment.apply_shipped: return the ShipmentState after Shipped
        raise NotImplementedError("Shipment.apply_shipped")
