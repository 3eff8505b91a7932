"""Scenarios of the Order aggregate: one per command.

Yours to edit: esgen created this file once. Each test fails until its scenario
is written.
"""

from __future__ import annotations

from outlet.domain.order import Order

from esgen.runtime.testing import AggregateScenario, todo


def test_place_order() -> None:
    # PlaceOrder(...): the command under test; then the events Order should
    # record (OrderPlaced) or .then_raises(...)
    scenario = AggregateScenario(Order).given()  # what happened before
    scenario.when(todo("PlaceOrder(...)"))
    scenario.then()  # what it should record or send
