"""Forgetting a customer through the service: what the application sees afterwards.

On the memory store (which makes its own master key) and a SQLite file opened with one;
the repository's own tests (tests/test_customers_personal_data.py) also run this on
PostgreSQL and search the stored bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import pytest
from customers.commands.customer import ChangeAddress, RegisterCustomer
from customers.commands.order import PlaceOrder
from customers.events.order import OrderPlaced
from customers.projections.customer_directory import CustomerDirectoryQuery
from customers.service import CustomersService
from customers.types import Address

from esgen.runtime import (
    EventStore,
    ForgottenSubject,
    MasterKey,
    MemoryEventStore,
    SQLiteEventStore,
    command_context,
)

GRACE = UUID("00000000-0000-4000-8000-000000000001")
ADA = UUID("00000000-0000-4000-8000-000000000002")
ORDER = UUID("00000000-0000-4000-8000-000000000003")
HOME = Address(street="1 Navy Yard Road", postcode="DC 20374", city="Arlington", country="US")


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    if request.param == "memory":
        yield MemoryEventStore()
        return
    key = MasterKey.from_text(MasterKey.generate())
    sqlite = SQLiteEventStore(tmp_path / "customers.sqlite", master_key=key)
    yield sqlite
    sqlite.close()


@pytest.fixture
def service(store: EventStore) -> CustomersService:
    service = CustomersService(store)
    for customer, name in ((GRACE, "Grace Hopper"), (ADA, "Ada Lovelace")):
        service.dispatch(
            RegisterCustomer(
                customer_id=customer, name=name, email=f"{name[:3]}@example.org", phone="+1 5"
            )
        )
        service.dispatch(ChangeAddress(customer_id=customer, address=HOME))
    service.dispatch(PlaceOrder(order_id=ORDER, customer_id=GRACE, total=Decimal(9), ship_to=HOME))
    return service


def test_a_forgotten_customer_reads_as_placeholders(service: CustomersService) -> None:
    with command_context(user="dpo"):
        assert service.forget(GRACE) is True
    assert service.forget(GRACE) is False  # once is enough

    grace = service.customer_repository.load(GRACE).state
    assert (grace.name, grace.email, grace.phone) == ("<erased>", "erased@invalid", None)
    assert grace.address == HOME.evolve(street="<erased>", postcode="<erased>")
    (placed,) = [entry.event for entry in service.order_repository.history(ORDER)]
    assert isinstance(placed, OrderPlaced)
    assert placed.ship_to.street == "<erased>"
    assert placed.ship_to.city == "Arlington"  # not personal: kept

    ada = service.customer_repository.load(ADA).state
    assert (ada.name, ada.address) == ("Ada Lovelace", HOME)


def test_the_directory_rebuilt_after_a_forget(service: CustomersService) -> None:
    projections = service.projections()
    projections.catch_up()
    service.forget(GRACE)
    projections.rebuild("customer_directory")
    directory = CustomerDirectoryQuery(service.store)
    grace, ada = directory.get(GRACE), directory.get(ADA)
    assert grace is not None and ada is not None
    assert (grace.name, grace.email, grace.phone, grace.city) == (
        "<erased>",
        "erased@invalid",
        None,
        "Arlington",
    )
    assert ada.name == "Ada Lovelace"


def test_a_forgotten_customer_takes_no_new_personal_data(service: CustomersService) -> None:
    service.forget(GRACE)
    with pytest.raises(ForgottenSubject):
        service.dispatch(ChangeAddress(customer_id=GRACE, address=HOME.evolve(street="2 Road")))
