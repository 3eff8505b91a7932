"""Scenarios of the Customer aggregate: one per command, and what it does with placeholders."""

from __future__ import annotations

from uuid import UUID

from customers.commands.customer import ChangeAddress, ChangeTier, RegisterCustomer
from customers.domain.customer import Customer, CustomerError
from customers.events.customer import AddressChanged, CustomerRegistered, TierChanged
from customers.types import Address, Tier

from esgen.runtime import AggregateAlreadyExists
from esgen.runtime.testing import AggregateScenario

CUSTOMER = UUID("00000000-0000-4000-8000-000000000001")
REGISTERED = CustomerRegistered(name="Ada Lovelace", email="ada@example.org", phone=None)
HOME = Address(street="12 St James's Square", postcode="SW1Y 4JH", city="London", country="GB")


def test_register_customer() -> None:
    (
        AggregateScenario(Customer)
        .given()
        .when(
            RegisterCustomer(
                customer_id=CUSTOMER, name="Ada Lovelace", email="ada@example.org", phone="+44 1"
            )
        )
        .then(CustomerRegistered(name="Ada Lovelace", email="ada@example.org", phone="+44 1"))
    )


def test_register_customer_twice_is_refused() -> None:
    (
        AggregateScenario(Customer)
        .given(REGISTERED)
        .when(RegisterCustomer(customer_id=CUSTOMER, name="Ada", email="ada@example.org"))
        .then_raises(AggregateAlreadyExists, "RegisterCustomer creates it")
    )


def test_change_address() -> None:
    (
        AggregateScenario(Customer)
        .given(REGISTERED)
        .when(ChangeAddress(customer_id=CUSTOMER, address=HOME))
        .then(AddressChanged(address=HOME))
    )


def test_the_same_address_again_changes_nothing() -> None:
    (
        AggregateScenario(Customer)
        .given(REGISTERED, AddressChanged(address=HOME))
        .when(ChangeAddress(customer_id=CUSTOMER, address=HOME))
        .then()
    )


def test_change_tier() -> None:
    (
        AggregateScenario(Customer)
        .given(REGISTERED)
        .when(ChangeTier(customer_id=CUSTOMER, tier=Tier.GOLD))
        .then(TierChanged(tier=Tier.GOLD))
    )


def test_the_same_tier_again_is_refused() -> None:
    (
        AggregateScenario(Customer)
        .given(REGISTERED)
        .when(ChangeTier(customer_id=CUSTOMER, tier=Tier.STANDARD))
        .then_raises(CustomerError, "standard already")
    )


def test_a_forgotten_customer_is_its_placeholders() -> None:
    """What a forgotten customer's events read as: the apply methods run on them as usual."""
    erased = CustomerRegistered(name="<erased>", email="erased@invalid", phone=None)
    moved = AddressChanged(address=HOME.evolve(street="<erased>", postcode="<erased>"))
    scenario = AggregateScenario(Customer).given(erased, moved)
    scenario.when(ChangeTier(customer_id=CUSTOMER, tier=Tier.GOLD)).then(
        TierChanged(tier=Tier.GOLD)
    )
