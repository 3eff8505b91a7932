"""The FollowUp saga: how the workflow reacts to each event, and how it undoes its
steps.

Yours to edit: esgen created this file once and never touches it again.
"""

from __future__ import annotations

from typing_extensions import override

from ..events.patient import VisitRecorded
from ..sagas.follow_up import FollowUpBase


class FollowUp(FollowUpBase):
    """The FollowUp."""

    @override
    def on_visit_recorded(self, event: VisitRecorded) -> None:
        # TODO: FollowUp.on_visit_recorded: react to VisitRecorded
        raise NotImplementedError("FollowUp.on_visit_recorded")
