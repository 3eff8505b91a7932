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
from ..commands.cargo import (
    AssignRoute,
    BookCargo,
    MarkMisdirected,
    ReleaseRoute,
)
from ..events.cargo import (
    CargoBooked,
    CargoMisdirected,
    RouteAssigned,
    RouteReleased,
)


class Cargo(CargoBase):
    """The Cargo."""

    @override
    def handle_book_cargo(self, command: BookCargo) -> Sequence[CargoBooked]:
        # TODO: Cargo.handle_book_cargo: decide which events BookCargo causes
        # (CargoBooked)
        raise NotImplementedError("Cargo.handle_book_cargo")

    @override
    def handle_assign_route(self, command: AssignRoute) -> Sequence[RouteAssigned]:
        # TODO: Cargo.handle_assign_route: decide which events AssignRoute
        # causes (RouteAssigned)
        raise NotImplementedError("Cargo.handle_assign_route")

    @override
    def handle_release_route(self, command: ReleaseRoute) -> Sequence[RouteReleased]:
        # TODO: Cargo.handle_release_route: decide which events ReleaseRoute
        # causes (RouteReleased)
        raise NotImplementedError("Cargo.handle_release_route")

    @override
    def handle_mark_misdirected(
        self, command: MarkMisdirected
    ) -> Sequence[CargoMisdirected]:
        # TODO: Cargo.handle_mark_misdirected: decide which events
        # MarkMisdirected causes (CargoMisdirected)
        raise NotImplementedError("Cargo.handle_mark_misdirected")

    @override
    def apply_cargo_booked(self, event: CargoBooked) -> CargoState:
        # TODO: Cargo.apply_cargo_booked: return the CargoState after
        # CargoBooked
        raise NotImplementedError("Cargo.apply_cargo_booked")

    @override
    def apply_route_assigned(self, event: RouteAssigned) -> CargoState:
        # TODO: Cargo.apply_route_assigned: return the CargoState after
        # RouteAssigned
        raise NotImplementedError("Cargo.apply_route_assigned")

    @override
    def apply_route_released(self, event: RouteReleased) -> CargoState:
        # TODO: Cargo.apply_route_released: return the CargoState after
        # RouteReleased
        raise NotImplementedError("Cargo.apply_route_released")

    @override
    def apply_cargo_misdirected(self, event: CargoMisdirected) -> CargoState:
        # TODO: Cargo.apply_cargo_misdirected: return the CargoState after
        # CargoMisdirected
        raise NotImplementedError("Cargo.apply_cargo_misdirected")
