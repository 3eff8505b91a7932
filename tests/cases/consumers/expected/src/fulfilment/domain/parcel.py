"""The Parcel aggregate: what its commands decide, and how its events change its
state.

Yours to edit: esgen created this file once and never touches it again. When
the schema gains an event or a command, the generated base gains an abstract
method, and mypy and the tests name what to add here.
"""

from __future__ import annotations

from collections.abc import Sequence

from typing_extensions import override

from ..aggregates.parcel import ParcelBase, ParcelState
from ..commands.parcel import PackParcel
from ..events.parcel import ParcelPacked


class Parcel(ParcelBase):
    """The Parcel."""

    @override
    def handle_pack_parcel(self, command: PackParcel) -> Sequence[ParcelPacked]:
        # TODO: Parcel.handle_pack_parcel: decide which events PackParcel
        # causes (ParcelPacked)
        raise NotImplementedError("Parcel.handle_pack_parcel")

    @override
    def apply_parcel_packed(self, event: ParcelPacked) -> ParcelState:
        # TODO: Parcel.apply_parcel_packed: return the ParcelState after
        # ParcelPacked
        raise NotImplementedError("Parcel.apply_parcel_packed")
