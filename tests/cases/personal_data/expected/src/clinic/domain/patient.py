"""The Patient aggregate: what its commands decide, and how its events change its
state.

Yours to edit: esgen created this file once and never touches it again. When
the schema gains an event or a command, the generated base gains an abstract
method, and mypy and the tests name what to add here.
"""

from __future__ import annotations

from collections.abc import Sequence

from typing_extensions import override

from ..aggregates.patient import PatientBase, PatientState
from ..commands.patient import RecordVisit, RegisterPatient
from ..events.patient import PatientMoved, PatientRegistered, VisitRecorded


class Patient(PatientBase):
    """The Patient."""

    @override
    def handle_register_patient(
        self, command: RegisterPatient
    ) -> Sequence[PatientRegistered]:
        # TODO: Patient.handle_register_patient: decide which events
        # RegisterPatient causes (PatientRegistered)
        raise NotImplementedError("Patient.handle_register_patient")

    @override
    def handle_record_visit(self, command: RecordVisit) -> Sequence[VisitRecorded]:
        # TODO: Patient.handle_record_visit: decide which events RecordVisit
        # causes (VisitRecorded)
        raise NotImplementedError("Patient.handle_record_visit")

    @override
    def apply_patient_registered(self, event: PatientRegistered) -> PatientState:
        # TODO: Patient.apply_patient_registered: return the PatientState
        # after PatientRegistered
        raise NotImplementedError("Patient.apply_patient_registered")

    @override
    def apply_visit_recorded(self, event: VisitRecorded) -> PatientState:
        # TODO: Patient.apply_visit_recorded: return the PatientState after
        # VisitRecorded
        raise NotImplementedError("Patient.apply_visit_recorded")

    @override
    def apply_patient_moved(self, event: PatientMoved) -> PatientState:
        # TODO: Patient.apply_patient_moved: return the PatientState after
        # PatientMoved
        raise NotImplementedError("Patient.apply_patient_moved")
