"""The Order aggregate: what its commands decide, and how its events change its
state.

Yours to edit: esgen created this file once and never touches it again. When
the schema gains an event or a command, the generated base gains an abstract
method, and mypy and the tests name what to add here.
"""

from __future__ import annotations

from collections.abc import Sequence

from typing_extensions import override

from ..aggregates.order import OrderBase, OrderState
from ..commands.order import PlaceOrder
from ..events.order import OrderPlaced, OrderShipped


class Order(OrderBase):
    """The Order."""

    @override
    def handle_place_order(self, command: PlaceOrder) -> Sequence[OrderPlaced]:
        # TODO: Order.handle_place_order: decide which events PlaceOrder
        # causes (OrderPlaced)
        raise NotImplementedError("Order.handle_place_order")

    @override
    def apply_order_placed(self, event: OrderPlaced) -> OrderState:
        # TODO: Order.apply_order_placed: return the OrderState after
        # OrderPlaced
        raise NotImplementedError("Order.apply_order_placed")

    @override
    def apply_order_shipped(self, event: OrderShipped) -> OrderState:
        # TODO: Order.apply_order_shipped: return the OrderState after
        # OrderShipped
        raise NotImplementedError("Order.apply_order_shipped")
