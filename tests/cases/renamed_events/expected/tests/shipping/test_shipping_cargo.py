"""Scenarios of the Cargo aggregate: one per command.

Yours to edit: esgen created this file once. Each test fails until its scenario
is written.
"""

from __future__ import annotations

from shipping.domain.cargo import Cargo

from esgen.runtime.testing import AggregateScenario, todo


def test_book_cargo() -> None:
    # BookCargo(...): the command under test; then the events Cargo should
    # record (CargoBooked) or .then_raises(...)
    scenario = AggregateScenario(Cargo).given()  # what happened before
    scenario.when(todo("BookCargo(...)"))
    scenario.then()  # what it should record or send


def test_load_cargo() -> None:
    # LoadCargo(...): the command under test; then the events Cargo should
    # record (CargoLoaded) or .then_raises(...)
    scenario = AggregateScenario(Cargo).given()  # what happened before
    scenario.when(todo("LoadCargo(...)"))
    scenario.then()  # what it should record or send
