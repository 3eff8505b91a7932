"""Scenarios of the Patient aggregate: one per command.

Yours to edit: esgen created this file once. Each test fails until its scenario
is written.
"""

from __future__ import annotations

from clinic.domain.patient import Patient

from esgen.runtime.testing import AggregateScenario, todo


def test_register_patient() -> None:
    # RegisterPatient(...): the command under test; then the events Patient
    # should record (PatientRegistered) or .then_raises(...)
    scenario = AggregateScenario(Patient).given()  # what happened before
    scenario.when(todo("RegisterPatient(...)"))
    scenario.then()  # what it should record or send


def test_record_visit() -> None:
    # RecordVisit(...): the command under test; then the events Patient should
    # record (VisitRecorded) or .then_raises(...)
    scenario = AggregateScenario(Patient).given()  # what happened before
    scenario.when(todo("RecordVisit(...)"))
    scenario.then()  # what it should record or send
