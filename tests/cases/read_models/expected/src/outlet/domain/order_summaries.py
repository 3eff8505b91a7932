"""The OrderSummaries projection: how each event changes its rows.

Handlers read and change rows through `self.rows`: get, put, update, delete,
and `list(...)`/`count(...)` with conditions and orders built from
OrderSummariesFields (`OrderSummariesFields.<field>.eq(value)`, `.desc()`).
Code outside handlers queries the read model with OrderSummariesQuery(store).

Yours to edit: esgen created this file once and never touches it again.
"""

from __future__ import annotations

from typing_extensions import override

from esgen.runtime import RecordedEvent

from ..events.order import OrderPlaced, OrderShipped
from ..projections.order_summaries import OrderSummariesBase


class OrderSummaries(OrderSummariesBase):
    """One row per order, with everything a listing shows."""

    @override
    def on_order_placed(self, event: OrderPlaced, recorded: RecordedEvent) -> None:
        # TODO: OrderSummaries.on_order_placed: change the rows for
        # OrderPlaced
        raise NotImplementedError("OrderSummaries.on_order_placed")

    @override
    def on_order_shipped(self, event: OrderShipped, recorded: RecordedEvent) -> None:
        # TODO: OrderSummaries.on_order_shipped: change the rows for
        # OrderShipped
        raise NotImplementedError("OrderSummaries.on_order_shipped")
