"""Scenarios of the Order aggregate: one per command.

Yours to edit: esgen created this file once. Each test fails until its scenario
is written.
"""

from __future__ import annotations

from orders.domain.order import Order

from esgen.runtime.testing import AggregateScenario, todo


def test_place_order() -> None:
    (
        AggregateScenario(Order)
        .given()  # the events that happened before, oldest first
        .when(
            todo(
                "PlaceOrder(...): the command under test; then the events Order should record (OrderPlaced) or .then_raises(...)"
            )
        )
        .then()  # the events it should record
    )
