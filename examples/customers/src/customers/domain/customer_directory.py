"""The CustomerDirectory projection: one row per customer, for the customer service screen.

Its name, email and phone are sealed with the key of the row's customer (its key), so a
rebuild after a forget writes the placeholders the events read as, and rows written
before it read as placeholders too. City, tier and the order count are not personal: the
shop keeps counting by them.
"""

from __future__ import annotations

from typing_extensions import override

from esgen.runtime import RecordedEvent

from ..events.customer import AddressChanged, CustomerRegistered, TierChanged
from ..events.order import OrderPlaced
from ..projections.customer_directory import CustomerDirectoryBase, CustomerDirectoryRow
from ..types import Tier


class CustomerDirectory(CustomerDirectoryBase):
    """Every customer with how to reach them, for the customer service screen."""

    @override
    def on_customer_registered(self, event: CustomerRegistered, recorded: RecordedEvent) -> None:
        self.rows.put(
            CustomerDirectoryRow(
                customer_id=self.aggregate_id(recorded),
                name=event.name,
                email=event.email,
                phone=event.phone,
                tier=Tier.STANDARD.value,
            )
        )

    @override
    def on_address_changed(self, event: AddressChanged, recorded: RecordedEvent) -> None:
        self.rows.update(self.aggregate_id(recorded), city=event.address.city)

    @override
    def on_tier_changed(self, event: TierChanged, recorded: RecordedEvent) -> None:
        self.rows.update(self.aggregate_id(recorded), tier=event.tier.value)

    @override
    def on_order_placed(self, event: OrderPlaced, recorded: RecordedEvent) -> None:
        row = self.rows.get(event.customer_id)
        if row is not None:
            self.rows.put(row.evolve(orders=row.orders + 1))
