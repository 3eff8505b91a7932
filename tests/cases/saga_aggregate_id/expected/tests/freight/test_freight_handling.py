"""Scenarios of the Handling aggregate: one per command.

Yours to edit: esgen created this file once. Each test fails until its scenario
is written.
"""

from __future__ import annotations

from freight.domain.handling import Handling

from esgen.runtime.testing import AggregateScenario, todo


def test_register_handling() -> None:
    # RegisterHandling(...): the command under test; then the events Handling
    # should record (HandlingRegistered) or .then_raises(...)
    scenario = AggregateScenario(Handling).given()  # what happened before
    scenario.when(todo("RegisterHandling(...)"))
    scenario.then()  # what it should record or send
