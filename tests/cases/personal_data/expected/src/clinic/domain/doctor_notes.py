"""The DoctorNotes projection: how each event changes its rows.

Handlers read and change rows through `self.rows`: get, put, update, delete,
and `list(...)`/`count(...)` with conditions and orders built from
DoctorNotesFields (`DoctorNotesFields.<field>.eq(value)`, `.desc()`). Code
outside handlers queries the read model with DoctorNotesQuery(store).

Yours to edit: esgen created this file once and never touches it again.
"""

from __future__ import annotations

from typing_extensions import override

from esgen.runtime import RecordedEvent

from ..events.patient import VisitRecorded
from ..projections.doctor_notes import DoctorNotesBase


class DoctorNotes(DoctorNotesBase):
    """The DoctorNotes."""

    @override
    def on_visit_recorded(self, event: VisitRecorded, recorded: RecordedEvent) -> None:
        # TODO: DoctorNotes.on_visit_recorded: change the rows for
        # VisitRecorded
        raise NotImplementedError("DoctorNotes.on_visit_recorded")
