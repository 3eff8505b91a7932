"""The CargoList projection: how each event changes its rows.

Handlers read and change rows through `self.rows`: get, put, update, delete,
and `list(...)`/`count(...)` with conditions and orders built from
CargoListFields (`CargoListFields.<field>.eq(value)`, `.desc()`). Code outside
handlers queries the read model with CargoListQuery(store).

Yours to edit: esgen created this file once and never touches it again.
"""

from __future__ import annotations

from typing_extensions import override

from esgen.runtime import RecordedEvent

from ..events.cargo import CargoBooked, CargoLoaded
from ..projections.cargo_list import CargoListBase


class CargoList(CargoListBase):
    """The CargoList."""

    @override
    def on_cargo_booked(self, event: CargoBooked, recorded: RecordedEvent) -> None:
        # TODO: CargoList.on_cargo_booked: change the rows for CargoBooked
        raise NotImplementedError("CargoList.on_cargo_booked")

    @override
    def on_cargo_loaded(self, event: CargoLoaded, recorded: RecordedEvent) -> None:
        # TODO: CargoList.on_cargo_loaded: change the rows for CargoLoaded
        raise NotImplementedError("CargoList.on_cargo_loaded")
