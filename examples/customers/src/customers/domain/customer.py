"""The Customer aggregate: a person's details, sealed with a key of their own.

Nothing here knows about encryption: the generated types mark name, email, phone and the
address's street and postcode as personal, and the repository seals them on save and opens
them on load. Once the customer is forgotten, the same apply methods run on the
placeholders the schema declares ("<erased>", "erased@invalid", None).
"""

from __future__ import annotations

from collections.abc import Sequence

from typing_extensions import override

from ..aggregates.customer import CustomerBase, CustomerState
from ..commands.customer import ChangeAddress, ChangeTier, RegisterCustomer
from ..events.customer import AddressChanged, CustomerRegistered, TierChanged
from ..types import Tier


class CustomerError(ValueError):
    """A command that makes no sense for this customer; nothing is recorded."""


class Customer(CustomerBase):
    """A person who buys from the shop. Its id is the data subject of its fields."""

    # RegisterCustomer `creates` the customer (schemas/customers.yaml): the runtime refuses
    # it on a customer that exists, and every other command on one that does not.
    @override
    def handle_register_customer(self, command: RegisterCustomer) -> Sequence[CustomerRegistered]:
        return [CustomerRegistered(name=command.name, email=command.email, phone=command.phone)]

    @override
    def handle_change_address(self, command: ChangeAddress) -> Sequence[AddressChanged]:
        if command.address == self.state.address:
            return []
        return [AddressChanged(address=command.address)]

    @override
    def handle_change_tier(self, command: ChangeTier) -> Sequence[TierChanged]:
        if command.tier is self.state.tier:
            raise CustomerError(f"the customer's tier is {self.state.tier.value} already")
        return [TierChanged(tier=command.tier)]

    @override
    def apply_customer_registered(self, event: CustomerRegistered) -> CustomerState:
        return CustomerState(
            name=event.name, email=event.email, phone=event.phone, tier=Tier.STANDARD
        )

    @override
    def apply_address_changed(self, event: AddressChanged) -> CustomerState:
        return self.state.evolve(address=event.address)

    @override
    def apply_tier_changed(self, event: TierChanged) -> CustomerState:
        return self.state.evolve(tier=event.tier)
