"""AddedWithoutDefault: reading version 1 as version 2, written by hand.

esgen cannot derive this step: field 'b' (int) added without a default.

`upcast` gets a stored event of version 1, validated, and returns it as version
2.

Yours to edit: esgen created this file once and never touches it again.
"""

from __future__ import annotations

from ...events.thing import AddedWithoutDefault, AddedWithoutDefaultV1


def upcast(event: AddedWithoutDefaultV1) -> AddedWithoutDefault:
    # TODO: upcast AddedWithoutDefault version 1 to 2 in
    # evolution.domain.upcasting.added_without_default_v1
    raise NotImplementedError("upcast AddedWithoutDefaultV1")
