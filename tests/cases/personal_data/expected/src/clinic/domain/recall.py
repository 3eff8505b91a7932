"""The Recall saga: how the workflow reacts to each event, and how it undoes its
steps.

Yours to edit: esgen created this file once and never touches it again.
"""

from __future__ import annotations

from typing_extensions import override

from ..events.patient import PatientRegistered
from ..sagas.recall import RecallBase


class Recall(RecallBase):
    """Only the commands it sends hold personal data; its state names their
    subject.
    """

    @override
    def on_patient_registered(self, event: PatientRegistered) -> None:
        # TODO: Recall.on_patient_registered: react to PatientRegistered
        raise NotImplementedError("Recall.on_patient_registered")
