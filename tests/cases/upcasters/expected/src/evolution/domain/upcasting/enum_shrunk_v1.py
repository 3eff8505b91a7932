"""EnumShrunk: reading version 1 as version 2, written by hand.

esgen cannot derive this step: field 'level': type Level -> Tier (not every old
value fits: Tier lacks 'mid').

`upcast` gets a stored event of version 1, validated, and returns it as version
2.

Yours to edit: esgen created this file once and never touches it again.
"""

from __future__ import annotations

from ...events.thing import EnumShrunk, EnumShrunkV1


def upcast(event: EnumShrunkV1) -> EnumShrunk:
    # TODO: upcast EnumShrunk version 1 to 2 in
    # evolution.domain.upcasting.enum_shrunk_v1
    raise NotImplementedError("upcast EnumShrunkV1")
