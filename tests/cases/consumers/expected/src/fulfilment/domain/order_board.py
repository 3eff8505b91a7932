"""The OrderBoard consumer: how each event changes its rows.

Handlers read and change rows through `self.rows`: get, put, update, delete,
and `list(...)`/`count(...)` with conditions and orders built from
OrderBoardFields (`OrderBoardFields.<field>.eq(value)`, `.desc()`). Code
outside handlers queries the read model with OrderBoardQuery(store).

Yours to edit: esgen created this file once and never touches it again.
"""

from __future__ import annotations

from typing_extensions import override

from esgen.runtime import RecordedEvent

from ..consumers.order_board import OrderBoardBase
from ..upstream.billing.events.invoice import InvoicePaid
from ..upstream.shop.events.order import OrderPlaced, OrderShipped


class OrderBoard(OrderBoardBase):
    """Where each order is, from the shop's and billing's events."""

    @override
    def on_order_placed(self, event: OrderPlaced, recorded: RecordedEvent) -> None:
        # TODO: OrderBoard.on_order_placed: change the rows for OrderPlaced
        raise NotImplementedError("OrderBoard.on_order_placed")

    @override
    def on_order_shipped(self, event: OrderShipped, recorded: RecordedEvent) -> None:
        # TODO: OrderBoard.on_order_shipped: change the rows for OrderShipped
        raise NotImplementedError("OrderBoard.on_order_shipped")

    @override
    def on_invoice_paid(self, event: InvoicePaid, recorded: RecordedEvent) -> None:
        # TODO: OrderBoard.on_invoice_paid: change the rows for InvoicePaid
        raise NotImplementedError("OrderBoard.on_invoice_paid")
