"""Scenarios of the Probe aggregate: one per command.

Yours to edit: esgen created this file once. Each test fails until its scenario
is written.
"""

from __future__ import annotations

from lab.domain.probe import Probe

from esgen.runtime.testing import AggregateScenario, todo


def test_measure() -> None:
    # Measure(...): the command under test; then the events Probe should
    # record (Measured) or .then_raises(...)
    scenario = AggregateScenario(Probe).given()  # what happened before
    scenario.when(todo("Measure(...)"))
    scenario.then()  # what it should record or send
