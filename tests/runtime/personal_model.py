"""A small domain with personal data, written by hand as generated code writes it: customers
(their own subject, by aggregate id) and orders (holding a customer's data, the customer's
id naming the subject). Used by the personal-data tests on every backend."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, ClassVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from esgen.runtime import (
    Aggregate,
    Event,
    EventRegistry,
    Personal,
    ValueObject,
)


class Address(ValueObject):
    street: Annotated[str, Personal(erased="<erased>")]
    city: str


class CustomerRegisteredV1(Event):
    name: Annotated[str, Personal(erased="<erased>")]

    event_type: ClassVar[str] = "CustomerRegistered"
    event_version: ClassVar[int] = 1


class CustomerRegistered(Event):
    name: Annotated[str, Personal(erased="<erased>")]
    email: Annotated[str, Personal(erased="<erased>")]
    phone: Annotated[str | None, Personal(erased=None)] = None
    tier: str = "basic"

    event_type: ClassVar[str] = "CustomerRegistered"
    event_version: ClassVar[int] = 2


class AddressChanged(Event):
    address: Address
    previous: tuple[Address, ...] = ()

    event_type: ClassVar[str] = "AddressChanged"
    event_version: ClassVar[int] = 1


class TierChanged(Event):
    tier: str

    event_type: ClassVar[str] = "TierChanged"
    event_version: ClassVar[int] = 1


class OrderPlaced(Event):
    customer_id: UUID
    ship_to: Annotated[str, Personal(erased="<erased>")]
    total: int

    event_type: ClassVar[str] = "OrderPlaced"
    event_version: ClassVar[int] = 1
    data_subject: ClassVar[str] = "customer_id"


def upcast_registered(old: Mapping[str, Any]) -> dict[str, Any]:
    # Version 1 knew no e-mail: the upcaster derives one from the name, so a forgotten
    # name (the placeholder) must flow through it as any other value does.
    name = str(old["name"])
    return {"name": name, "email": f"{name.lower().replace(' ', '.')}@unknown"}


class CustomerState(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: Annotated[str, Personal(erased="<erased>")]
    email: Annotated[str, Personal(erased="<erased>")]
    address: Address | None = None
    tier: str = "basic"
    changes: int = 0


class Customer(Aggregate[CustomerState, UUID]):
    aggregate_type = "Customer"
    snapshot_every = 3
    apply_methods: ClassVar[Mapping[type[Event], str]] = {
        CustomerRegistered: "_registered",
        AddressChanged: "_moved",
        TierChanged: "_tiered",
    }

    def _registered(self, event: CustomerRegistered) -> CustomerState:
        return CustomerState(name=event.name, email=event.email, tier=event.tier)

    def _moved(self, event: AddressChanged) -> CustomerState:
        return self.state.model_copy(
            update={"address": event.address, "changes": self.state.changes + 1}
        )

    def _tiered(self, event: TierChanged) -> CustomerState:
        return self.state.model_copy(update={"tier": event.tier, "changes": self.state.changes + 1})


class OrderState(BaseModel):
    model_config = ConfigDict(frozen=True)

    customer_id: UUID
    ship_to: str
    total: int


class Order(Aggregate[OrderState, UUID]):
    aggregate_type = "Order"
    apply_methods: ClassVar[Mapping[type[Event], str]] = {OrderPlaced: "_placed"}

    def _placed(self, event: OrderPlaced) -> OrderState:
        return OrderState(customer_id=event.customer_id, ship_to=event.ship_to, total=event.total)


def registry() -> EventRegistry:
    reg = EventRegistry(
        [CustomerRegisteredV1, CustomerRegistered, AddressChanged, TierChanged, OrderPlaced]
    )
    reg.register_upcaster("CustomerRegistered", 1, upcast_registered)
    reg.check()
    return reg
