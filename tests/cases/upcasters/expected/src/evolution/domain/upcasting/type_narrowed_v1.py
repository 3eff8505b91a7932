"""TypeNarrowed: reading version 1 as version 2, written by hand.

esgen cannot derive this step: field 'amount': type decimal -> int (not every
old value fits).

`upcast` gets a stored event of version 1, validated, and returns it as version
2.

Yours to edit: esgen created this file once and never touches it again.
"""

from __future__ import annotations

from ...events.thing import TypeNarrowed, TypeNarrowedV1


def upcast(event: TypeNarrowedV1) -> TypeNarrowed:
    # TODO: upcast TypeNarrowed version 1 to 2 in
    # evolution.domain.upcasting.type_narrowed_v1
    raise NotImplementedError("upcast TypeNarrowedV1")
