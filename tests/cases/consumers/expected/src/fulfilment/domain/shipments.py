"""The Shipments consumer: how each event changes its rows.

Handlers read and change rows through `self.rows`: get, put, update, delete,
and `list(...)`/`count(...)` with conditions and orders built from
ShipmentsFields (`ShipmentsFields.<field>.eq(value)`, `.desc()`). Code outside
handlers queries the read model with ShipmentsQuery(store).

Yours to edit: esgen created this file once and never touches it again.
"""

from __future__ import annotations

from typing_extensions import override

from esgen.runtime import RecordedEvent

from ..consumers.shipments import ShipmentsBase
from ..upstream.shop.events.order import OrderShipped


class Shipments(ShipmentsBase):
    """The Shipments."""

    @override
    def on_order_shipped(self, event: OrderShipped, recorded: RecordedEvent) -> None:
        # TODO: Shipments.on_order_shipped: change the rows for OrderShipped
        raise NotImplementedError("Shipments.on_order_shipped")
