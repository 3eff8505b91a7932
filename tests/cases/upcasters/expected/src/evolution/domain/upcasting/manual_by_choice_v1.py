"""ManualByChoice: reading version 1 as version 2, written by hand.

esgen cannot derive this step: the schema asks for `upcast: manual`.

`upcast` gets a stored event of version 1, validated, and returns it as version
2.

Yours to edit: esgen created this file once and never touches it again.
"""

from __future__ import annotations

from ...events.thing import ManualByChoice, ManualByChoiceV1


def upcast(event: ManualByChoiceV1) -> ManualByChoice:
    # TODO: upcast ManualByChoice version 1 to 2 in
    # evolution.domain.upcasting.manual_by_choice_v1
    raise NotImplementedError("upcast ManualByChoiceV1")
