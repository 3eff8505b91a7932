"""The Order aggregate: what a customer bought and where it goes.

The shipping address of OrderPlaced is sealed with the key of the customer (the event's
`subject: customer_id`), not of the order, so forgetting the customer erases it here too.
The order's own state keeps no address: its snapshots would be sealed with the order's id.
"""

from __future__ import annotations

from collections.abc import Sequence

from typing_extensions import override

from ..aggregates.order import OrderBase, OrderState
from ..commands.order import PlaceOrder, ShipOrder
from ..events.order import OrderPlaced, OrderShipped
from ..types import OrderStatus


class OrderError(ValueError):
    """A command that makes no sense for this order; nothing is recorded."""


class Order(OrderBase):
    """What a customer bought and where it goes."""

    @override
    def handle_place_order(self, command: PlaceOrder) -> Sequence[OrderPlaced]:
        return [
            OrderPlaced(
                customer_id=command.customer_id, total=command.total, ship_to=command.ship_to
            )
        ]

    @override
    def handle_ship_order(self, command: ShipOrder) -> Sequence[OrderShipped]:
        if self.state.status is OrderStatus.SHIPPED:
            raise OrderError("the order was shipped already")
        return [OrderShipped()]

    @override
    def apply_order_placed(self, event: OrderPlaced) -> OrderState:
        return OrderState(
            customer_id=event.customer_id, total=event.total, status=OrderStatus.PLACED
        )

    @override
    def apply_order_shipped(self, event: OrderShipped) -> OrderState:
        return self.state.evolve(status=OrderStatus.SHIPPED)
