"""The PatientCards projection: how each event changes its rows.

Handlers read and change rows through `self.rows`: get, put, update, delete,
and `list(...)`/`count(...)` with conditions and orders built from
PatientCardsFields (`PatientCardsFields.<field>.eq(value)`, `.desc()`). Code
outside handlers queries the read model with PatientCardsQuery(store).

Yours to edit: esgen created this file once and never touches it again.
"""

from __future__ import annotations

from typing_extensions import override

from esgen.runtime import RecordedEvent

from ..events.patient import PatientMoved, PatientRegistered
from ..projections.patient_cards import PatientCardsBase


class PatientCards(PatientCardsBase):
    """The PatientCards."""

    @override
    def on_patient_registered(
        self, event: PatientRegistered, recorded: RecordedEvent
    ) -> None:
        # TODO: PatientCards.on_patient_registered: change the rows for
        # PatientRegistered
        raise NotImplementedError("PatientCards.on_patient_registered")

    @override
    def on_patient_moved(self, event: PatientMoved, recorded: RecordedEvent) -> None:
        # TODO: PatientCards.on_patient_moved: change the rows for
        # PatientMoved
        raise NotImplementedError("PatientCards.on_patient_moved")
