"""Scenarios of the Shipment aggregate: one per command.

Yours to edit: esgen created this file once. Each test fails until its scenario
is written.
"""

from __future__ import annotations

from orders.domain.shipment import Shipment

from esgen.runtime.testing import AggregateScenario, todo


def test_ship() -> None:
    # Ship(...): the command under test; then the events Shipment should
    # record (Shipped) or .then_raises(...)
    scenario = AggregateScenario(Shipment).given()  # what happened before
    scenario.when(todo("Ship(...)"))
    scenario.then()  # what it should record or send
