"""Scenarios of the Cargo aggregate: one per command.

Yours to edit: esgen created this file once. Each test fails until its scenario
is written.
"""

from __future__ import annotations

from freight.domain.cargo import Cargo

from esgen.runtime.testing import AggregateScenario, todo


def test_book_cargo() -> None:
    # BookCargo(...): the command under test; then the events Cargo should
    # record (CargoBooked) or .then_raises(...)
    scenario = AggregateScenario(Cargo).given()  # what happened before
    scenario.when(todo("BookCargo(...)"))
    scenario.then()  # what it should record or send


def test_assign_route() -> None:
    # AssignRoute(...): the command under test; then the events Cargo should
    # record (RouteAssigned) or .then_raises(...)
    scenario = AggregateScenario(Cargo).given()  # what happened before
    scenario.when(todo("AssignRoute(...)"))
    scenario.then()  # what it should record or send


def test_release_route() -> None:
    # ReleaseRoute(...): the command under test; then the events Cargo should
    # record (RouteReleased) or .then_raises(...)
    scenario = AggregateScenario(Cargo).given()  # what happened before
    scenario.when(todo("ReleaseRoute(...)"))
    scenario.then()  # what it should record or send


def test_mark_misdirected() -> None:
    # MarkMisdirected(...): the command under test; then the events Cargo
    # should record (CargoMisdirected) or .then_raises(...)
    scenario = AggregateScenario(Cargo).given()  # what happened before
    scenario.when(todo("MarkMisdirected(...)"))
    scenario.then()  # what it should record or send
