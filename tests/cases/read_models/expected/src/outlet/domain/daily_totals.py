"""The DailyTotals projection: how each event changes its rows.

Handlers read and change rows through `self.rows`: get, put, update, delete,
and `list(...)`/`count(...)` with conditions and orders built from
DailyTotalsFields (`DailyTotalsFields.<field>.eq(value)`, `.desc()`). Code
outside handlers queries the read model with DailyTotalsQuery(store).

Yours to edit: esgen created this file once and never touches it again.
"""

from __future__ import annotations

from typing_extensions import override

from esgen.runtime import RecordedEvent

from ..events.order import OrderPlaced
from ..projections.daily_totals import DailyTotalsBase


class DailyTotals(DailyTotalsBase):
    """The DailyTotals."""

    @override
    def on_order_placed(self, event: OrderPlaced, recorded: RecordedEvent) -> None:
        # TODO: DailyTotals.on_order_placed: change the rows for OrderPlaced
        raise NotImplementedError("DailyTotals.on_order_placed")
