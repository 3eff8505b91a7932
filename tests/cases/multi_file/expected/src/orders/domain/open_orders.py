"""The OpenOrders projection: how each event changes its rows.

Handlers read and change rows through `self.rows`: get, put, update, delete,
and `list(...)`/`count(...)` with conditions and orders built from
OpenOrdersFields (`OpenOrdersFields.<field>.eq(value)`, `.desc()`). Code
outside handlers queries the read model with OpenOrdersQuery(store).

Yours to edit: esgen created this file once and never touches it again.
"""

from __future__ import annotations

from typing_extensions import override

from esgen.runtime import RecordedEvent

from ..events.order import OrderPlaced
from ..events.shipment import Shipped
from ..projections.open_orders import OpenOrdersBase


class OpenOrders(OpenOrdersBase):
    """The OpenOrders."""

    @override
    def on_order_placed(self, event: OrderPlaced, recorded: RecordedEvent) -> None:
        # TODO: OpenOrders.on_order_placed: change the rows for OrderPlaced
        raise NotImplementedError("OpenOrders.on_order_placed")

    @override
    def on_shipped(self, event: Shipped, recorded: RecordedEvent) -> None:
        # TODO: OpenOrders.on_shipped: change the rows for Shipped
        raise NotImplementedError("OpenOrders.on_shipped")
