"""Personal data at work (`make demo-personal-data`): customers, orders, and forgetting one.

Makes a master key (as an application gets it from ESGEN_MASTER_KEY), registers customers
on a SQLite event store (one of them long ago, by older code, in version 1 of the event),
places orders shipped to their addresses, and reads the customer directory. Then Grace asks
to be forgotten: `service.forget(...)` deletes her data key, and every copy of her personal
data reads as the schema's placeholders: her state (and the snapshot of it), the shipping
address of her order, the directory rebuilt from the events, her old version-1 event
upcast. Ada is untouched, and Grace's name, e-mail, phone, street and postcode are nowhere
in the database file's bytes. Ends with the `esgen` commands to look for yourself.

`python demo.py [FOLDER]` writes the store to FOLDER (default: demo-out next to it).
"""

from __future__ import annotations

import os
import shutil
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from uuid import UUID

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE / "src"))

from customers.commands.customer import ChangeAddress, ChangeTier, RegisterCustomer  # noqa: E402
from customers.commands.order import PlaceOrder, ShipOrder  # noqa: E402
from customers.events.customer import CustomerRegisteredV1  # noqa: E402
from customers.projections.customer_directory import (  # noqa: E402
    CustomerDirectoryFields as F,
)
from customers.projections.customer_directory import (  # noqa: E402
    CustomerDirectoryQuery,
    CustomerDirectoryRow,
)
from customers.service import CustomersService  # noqa: E402
from customers.types import Address, Tier  # noqa: E402

from esgen.runtime import (  # noqa: E402
    ExpectedVersion,
    ForgottenSubject,
    MasterKey,
    NewEvent,
    SQLiteEventStore,
    command_context,
    sealed_text,  # only to store an event as version 1 of the code stored it
)

GRACE = UUID("c0000000-0000-4000-8000-000000000001")
ADA = UUID("c0000000-0000-4000-8000-000000000002")
GRACE_ORDER = UUID("d0000000-0000-4000-8000-000000000001")
ADA_ORDER = UUID("d0000000-0000-4000-8000-000000000002")

GRACE_HOME = Address(street="1 Navy Yard Road", postcode="DC 20374", city="Arlington", country="US")
ADA_HOME = Address(street="12 St James's Square", postcode="SW1Y 4JH", city="London", country="GB")
# What Grace told the shop, to look for after she is forgotten.
GRACE_PLAINTEXT = [
    "Grace Hopper",
    "grace@navy.example",
    GRACE_HOME.street,
    GRACE_HOME.postcode,
]


class StepClock:
    """A clock that moves one minute per call, so times in the story are readable."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(minutes=1)
        return self.now


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "demo-out"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    path = folder / "customers.sqlite"

    print("1. A master key, made once and kept apart from the database:")
    key_text = MasterKey.generate()
    # An application is given it in its environment; the demo sets it for itself.
    os.environ["ESGEN_MASTER_KEY"] = key_text
    print(f"   export ESGEN_MASTER_KEY={key_text}   # what `esgen master-key` prints")
    clock = StepClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    store = SQLiteEventStore(path, clock=clock, master_key=MasterKey.from_env())
    service = CustomersService(store, clock=clock)
    print(f"   event store: {shown(path)} (SQLite, WAL), opened with MasterKey.from_env()")

    print("\n2. Grace registered in 2024, when CustomerRegistered was at version 1 (no phone):")
    old = CustomerRegisteredV1(name="Grace Hopper", email="grace@navy.example")
    store.append(
        f"Customer-{GRACE}",
        [NewEvent("CustomerRegistered", 1, sealed_text(old, store.keyring, str(GRACE)))],
        ExpectedVersion.NO_STREAM,
    )
    print(f"   stored CustomerRegistered v1 {old!r}, sealed with Grace's key")

    print("\n3. Commands: addresses, a tier, orders; the directory read model:")
    with command_context(user="shop-web"):
        for command in (
            ChangeAddress(customer_id=GRACE, address=GRACE_HOME),
            ChangeTier(customer_id=GRACE, tier=Tier.GOLD),  # 3 events: a snapshot is sealed
            RegisterCustomer(
                customer_id=ADA,
                name="Ada Lovelace",
                email="ada@analytical.example",
                phone="+44 20 7946 0958",
            ),
            ChangeAddress(customer_id=ADA, address=ADA_HOME),
        ):
            service.dispatch(command)
        for order, customer, total, address in (
            (GRACE_ORDER, GRACE, "42.00", GRACE_HOME),
            (ADA_ORDER, ADA, "17.50", ADA_HOME),
        ):
            service.dispatch(
                PlaceOrder(
                    order_id=order, customer_id=customer, total=Decimal(total), ship_to=address
                )
            )
        service.dispatch(ShipOrder(order_id=GRACE_ORDER))
    print(f"   Grace: {service.customer_repository.load(GRACE).state!r}")
    print(f"   her order ships to {service.order_repository.history(GRACE_ORDER)[0].event!r}")
    projections = service.projections()
    projections.catch_up()
    directory = CustomerDirectoryQuery(store)
    print("   directory.list(order_by=F.city.asc()):")
    for row in directory.list(order_by=F.city.asc()):
        print(f"      {describe(row)}")
    # Grace's plain text is nowhere in the file even now (every personal value is sealed),
    # but her data key is: until the forget, the master key opens it.

    print("\n4. Grace asks to be forgotten; the data protection officer does it:")
    with command_context(user="dpo@shop.example"):
        forgotten = service.forget(GRACE, metadata={"reason": "erasure request 4711"})
    print(f"   service.forget(GRACE) -> {forgotten} (a second call would return False)")

    print("\n5. Every copy of Grace's personal data reads as the schema's placeholders:")
    grace = service.customer_repository.load(GRACE)
    print(f"   her state (its snapshot ignored, rebuilt from the events): {grace.state!r}")
    for entry in service.customer_repository.history(GRACE)[:1]:
        stored = entry.recorded
        print(f"   stored v{stored.event_version} {stored.event_type} -> read as {entry.event!r}")
    placed = service.order_repository.history(GRACE_ORDER)[0].event
    print(f"   her order: {placed!r}")
    projections.rebuild("customer_directory")
    print("   the directory, rebuilt from every event:")
    for row in directory.list(order_by=F.city.asc()):
        print(f"      {describe(row)}")
    gold = directory.count(F.tier.eq("gold"))
    print(f"   what is not personal is kept: {gold} gold customer; cities and order counts")
    try:
        service.dispatch(ChangeAddress(customer_id=GRACE, address=GRACE_HOME))
    except ForgottenSubject as exc:
        print(f"   a late ChangeAddress for Grace is refused: {type(exc).__name__}")

    print("\n6. Ada is untouched:")
    print(f"   {service.customer_repository.load(ADA).state!r}")

    print("\n7. The database's bytes, searched for what Grace told the shop:")
    for file in (path, path.with_name(path.name + "-wal")):
        data = file.read_bytes() if file.exists() else b""
        found = [text for text in GRACE_PLAINTEXT if text.encode() in data]
        print(f"   {shown(file)} ({len(data)} bytes): {', '.join(found) or 'none of them'}")
    print(f"   looked for: {', '.join(GRACE_PLAINTEXT)}")
    # Ada's name is not there either: personal values are only ever stored sealed. What the
    # forget removed is Grace's data key, so her sealed values open for no one, ever.
    ada = b"Ada Lovelace" in path.read_bytes()
    print(f"   (nor Ada's name: {'FOUND' if ada else 'sealed'}; Grace's data key is what is gone)")
    store.close()
    print_commands(path)


def describe(row: CustomerDirectoryRow) -> str:
    return (
        f"{row.name:14} {row.email:24} {row.phone or '-':16} "
        f"{row.city or '-':10} {row.tier:8} {row.orders} order(s)"
    )


def print_commands(path: Path) -> None:
    store = shown(path)
    print(
        "\nLook for yourself (in examples/customers; esgen is in the virtual environment:"
        " ../../.venv/bin/esgen), with the master key above in ESGEN_MASTER_KEY:"
    )
    print(f"   esgen inspect events Customer-{GRACE} --store {store}   # placeholders")
    print(f"   esgen inspect events Customer-{ADA} --store {store}   # Ada, readable")
    print(f"   esgen inspect audit --actor dpo@shop.example --store {store}")
    print(f"   esgen forget {ADA} --store {store} --actor you --reason test --yes")


def shown(path: Path) -> str:
    """A path as the reader types it from this folder (absolute when outside it)."""
    try:
        return str(path.resolve().relative_to(HERE.resolve())) or "."
    except ValueError:
        return str(path.resolve())


if __name__ == "__main__":
    main()
