"""Scenarios of the Recall saga: one per event it handles.

Yours to edit: esgen created this file once. Each test fails until its scenario
is written.
"""

from __future__ import annotations

from clinic.domain.recall import Recall

from esgen.runtime.testing import SagaScenario, todo


def test_recall_on_patient_registered() -> None:
    # PatientRegistered(...): the event under test (given the events before
    # it, starting with PatientRegistered); then the commands Recall sends,
    # and .then_compensates(...) for a failure; .when(...,
    # failing=(RecordVisit,)) refuses that command and runs
    # on_record_visit_refused, then .then_state(...) and .then_status(...)
    scenario = SagaScenario(Recall).given()  # what happened before
    scenario.when(todo("PatientRegistered(...)"))
    scenario.then_sends()  # what it should record or send
