"""The Cargo aggregate: what its commands decide, and how its events change its
state.

Yours to edit: esgen created this file once and never touches it again. When
the schema gains an event or a command, the generated base gains an abstract
method, and mypy and the tests name what to add here.
"""

from __future__ import annotations

from collections.abc import Sequence

from typing_extensions import override

from ..aggregates.cargo import CargoBase, CargoState
from ..commands.cargo import BookCargo, LoadCargo
from ..events.cargo import CargoBooked, CargoLoaded


class Cargo(CargoBase):
    """The Cargo."""

    @override
    def handle_book_cargo(self, command: BookCargo) -> Sequence[CargoBooked]:
        # TODO: Cargo.handle_book_cargo: decide which events BookCargo causes
        # (CargoBooked)
        raise NotImplementedError("Cargo.handle_book_cargo")

    @override
    def handle_load_cargo(self, command: LoadCargo) -> Sequence[CargoLoaded]:
        # TODO: Cargo.handle_load_cargo: decide which events LoadCargo causes
        # (CargoLoaded)
        raise NotImplementedError("Cargo.handle_load_cargo")

    @override
    def apply_cargo_booked(self, event: CargoBooked) -> CargoState:
        # TODO: Cargo.apply_cargo_booked: return the CargoState after
        # CargoBooked
        raise NotImplementedError("Cargo.apply_cargo_booked")

    @override
    def apply_cargo_loaded(self, event: CargoLoaded) -> CargoState:
        # TODO: Cargo.apply_cargo_loaded: return the CargoState after
        # CargoLoaded
        raise NotImplementedError("Cargo.apply_cargo_loaded")
