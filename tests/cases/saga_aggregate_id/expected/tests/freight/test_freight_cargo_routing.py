"""Scenarios of the CargoRouting saga: one per event it handles.

Yours to edit: esgen created this file once. Each test fails until its scenario
is written.
"""

from __future__ import annotations

from freight.domain.cargo_routing import CargoRouting

from esgen.runtime.testing import SagaScenario, todo


def test_cargo_routing_on_cargo_booked() -> None:
    # CargoBooked(...): the event under test (given the events before it,
    # starting with CargoBooked); then the commands CargoRouting sends, and
    # .then_compensates(...) for a failure; .when(..., failing=(AssignRoute,))
    # refuses that command and runs on_assign_route_refused, then
    # .then_state(...) and .then_status(...)
    scenario = SagaScenario(CargoRouting).given()  # what happened before
    scenario.when(todo("CargoBooked(...)"))
    scenario.then_sends()  # what it should record or send


def test_cargo_routing_on_route_assigned() -> None:
    # RouteAssigned(...): the event under test (given the events before it,
    # starting with CargoBooked); then the commands CargoRouting sends, and
    # .then_compensates(...) for a failure
    scenario = SagaScenario(CargoRouting).given()  # what happened before
    scenario.when(todo("RouteAssigned(...)"))
    scenario.then_sends()  # what it should record or send


def test_cargo_routing_on_handling_registered() -> None:
    # HandlingRegistered(...): the event under test (given the events before
    # it, starting with CargoBooked); then the commands CargoRouting sends,
    # and .then_compensates(...) for a failure
    scenario = SagaScenario(CargoRouting).given()  # what happened before
    scenario.when(todo("HandlingRegistered(...)"))
    scenario.then_sends()  # what it should record or send


def test_cargo_routing_on_handling_lost() -> None:
    # HandlingLost(...): the event under test (given the events before it,
    # starting with CargoBooked); then the commands CargoRouting sends, and
    # .then_compensates(...) for a failure
    scenario = SagaScenario(CargoRouting).given()  # what happened before
    scenario.when(todo("HandlingLost(...)"))
    scenario.then_sends()  # what it should record or send
