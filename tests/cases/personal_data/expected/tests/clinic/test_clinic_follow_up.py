"""Scenarios of the FollowUp saga: one per event it handles.

Yours to edit: esgen created this file once. Each test fails until its scenario
is written.
"""

from __future__ import annotations

from clinic.domain.follow_up import FollowUp

from esgen.runtime.testing import SagaScenario, todo


def test_follow_up_on_visit_recorded() -> None:
    # VisitRecorded(...): the event under test (given the events before it,
    # starting with VisitRecorded); then the commands FollowUp sends, and
    # .then_compensates(...) for a failure; .when(..., failing=(RecordVisit,))
    # refuses that command and runs on_record_visit_refused, then
    # .then_state(...) and .then_status(...)
    scenario = SagaScenario(FollowUp).given()  # what happened before
    scenario.when(todo("VisitRecorded(...)"))
    scenario.then_sends()  # what it should record or send
