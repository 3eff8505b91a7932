"""Scenarios of the Gadget aggregate: one per command.

Yours to edit: esgen created this file once. Each test fails until its scenario
is written.
"""

from __future__ import annotations

from names.domain.gadget import Gadget

from esgen.runtime.testing import AggregateScenario, todo


def test_make_gadget() -> None:
    # MakeGadget(...): the command under test; then the events Gadget should
    # record (GadgetMade) or .then_raises(...)
    scenario = AggregateScenario(Gadget).given()  # what happened before
    scenario.when(todo("MakeGadget(...)"))
    scenario.then()  # what it should record or send
