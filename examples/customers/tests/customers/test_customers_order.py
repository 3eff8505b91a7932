"""Scenarios of the Order aggregate: one per command."""

from __future__ import annotations

from decimal import Decimal
from uuid import UUID

from customers.commands.order import PlaceOrder, ShipOrder
from customers.domain.order import Order, OrderError
from customers.events.order import OrderPlaced, OrderShipped
from customers.types import Address

from esgen.runtime.testing import AggregateScenario

ORDER = UUID("00000000-0000-4000-8000-000000000001")
CUSTOMER = UUID("00000000-0000-4000-8000-000000000002")
HOME = Address(street="12 St James's Square", postcode="SW1Y 4JH", city="London", country="GB")
PLACED = OrderPlaced(customer_id=CUSTOMER, total=Decimal("17.50"), ship_to=HOME)


def test_place_order() -> None:
    (
        AggregateScenario(Order)
        .given()
        .when(
            PlaceOrder(order_id=ORDER, customer_id=CUSTOMER, total=Decimal("17.50"), ship_to=HOME)
        )
        .then(PLACED)
    )


def test_ship_order() -> None:
    AggregateScenario(Order).given(PLACED).when(ShipOrder(order_id=ORDER)).then(OrderShipped())


def test_ship_order_twice_is_refused() -> None:
    (
        AggregateScenario(Order)
        .given(PLACED, OrderShipped())
        .when(ShipOrder(order_id=ORDER))
        .then_raises(OrderError, "shipped already")
    )
