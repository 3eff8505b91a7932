"""Scenarios of the Echo saga: one per event it handles.

Yours to edit: esgen created this file once. Each test fails until its scenario
is written.
"""

from __future__ import annotations

from names.domain.echo import Echo

from esgen.runtime.testing import SagaScenario, todo


def test_echo_on_gadget_made() -> None:
    # GadgetMade(...): the event under test (given the events before it,
    # starting with GadgetMade); then the commands Echo sends, and
    # .then_compensates(...) for a failure; .when(..., failing=(MakeGadget,))
    # refuses that command and runs on_make_gadget_refused, then
    # .then_state(...) and .then_status(...)
    scenario = SagaScenario(Echo).given()  # what happened before
    scenario.when(todo("GadgetMade(...)"))
    scenario.then_sends()  # what it should record or send
