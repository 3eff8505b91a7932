"""Personal data end to end through generated code (examples/customers), on a SQLite file
and on PostgreSQL: a customer forgotten with `service.forget` reads as the schema's
placeholders when loaded (with a snapshot sealed before the forget), in an order's event
that names the customer as its subject, in the directory rebuilt afterwards, in `esgen
inspect events`, and in a version-1 event upcast; the other customer reads back; and no
byte of the database holds the forgotten customer's plain text or wrapped key. Also the
example's demo, run as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import pytest
from harness import EXAMPLES
from runtime.postgres_env import available_dsn, connect, drop_schema, new_schema

from esgen.runtime import (
    EventStore,
    ExpectedVersion,
    ForgottenSubject,
    MasterKey,
    NewEvent,
    SnapshotStore,
    SQLiteEventStore,
    command_context,
    sealed_text,
)

sys.path.insert(0, str(EXAMPLES / "customers" / "src"))

from customers.commands.customer import ChangeAddress, ChangeTier, RegisterCustomer
from customers.commands.order import PlaceOrder
from customers.events.customer import CustomerRegistered, CustomerRegisteredV1
from customers.events.order import OrderPlaced
from customers.projections.customer_directory import CustomerDirectoryQuery
from customers.service import CustomersService
from customers.types import Address, Tier

CUSTOMERS = EXAMPLES / "customers"
GRACE = UUID("c0000000-0000-4000-8000-000000000001")
ADA = UUID("c0000000-0000-4000-8000-000000000002")
GRACE_ORDER = UUID("d0000000-0000-4000-8000-000000000001")
GRACE_HOME = Address(street="1 Navy Yard Road", postcode="DC 20374", city="Arlington", country="US")
ADA_HOME = Address(street="12 St James Square", postcode="SW1Y 4JH", city="London", country="GB")
GRACE_PLAINTEXT = ["Grace Hopper", "grace@navy.example", "+1 202 555 0143", "1 Navy Yard Road", "DC 20374"]  # fmt: skip
ERASED_HOME = GRACE_HOME.evolve(street="<erased>", postcode="<erased>")


@dataclass
class Backend:
    """A store of one kind, as the application opens it, and what lies under it."""

    open: Callable[[MasterKey | None], EventStore]
    cli: list[str]  # how `esgen` names the store
    raw: Callable[[], str]  # every byte (SQLite) or every row (PostgreSQL) as text


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        path = tmp_path / "customers.sqlite"

        def raw_file() -> str:
            files = [path, path.with_name(path.name + "-wal")]
            return "".join(f.read_bytes().decode("latin-1") for f in files if f.exists())

        yield Backend(
            lambda key: SQLiteEventStore(path, master_key=key), ["--store", str(path)], raw_file
        )
        return
    dsn = available_dsn()
    if dsn is None:
        pytest.skip("PostgreSQL not tested: no server (see tests/runtime/postgres_env.py)")
    from esgen.runtime import PostgresEventStore

    schema = new_schema()

    def raw_rows() -> str:
        with connect(dsn) as conn:
            tables = [
                name
                for (name,) in conn.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                    (schema,),
                )
            ]
            assert "esgen_subject_keys" in tables, tables
            return "\n".join(
                str(row[0])
                for table in tables
                for row in conn.execute(f'SELECT t::text FROM "{schema}"."{table}" t')
            )

    try:
        yield Backend(
            lambda key: PostgresEventStore(dsn, schema=schema, master_key=key),
            ["--store", dsn, "--pg-schema", schema],
            raw_rows,
        )
    finally:
        drop_schema(dsn, schema)


def esgen_inspect(backend: Backend, stream: str, key: str | None) -> subprocess.CompletedProcess[str]:  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "ESGEN_MASTER_KEY"}
    if key is not None:
        env["ESGEN_MASTER_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "esgen.cli", "inspect", "events", stream, *backend.cli],
        cwd=CUSTOMERS,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_a_forgotten_customer_everywhere(backend: Backend) -> None:
    key_text = MasterKey.generate()
    key = MasterKey.from_text(key_text)
    store = backend.open(key)
    service = CustomersService(store)
    # Grace registered while CustomerRegistered was at version 1, sealed as every save is.
    old = CustomerRegisteredV1(name="Grace Hopper", email="grace@navy.example")
    store.append(
        f"Customer-{GRACE}",
        [NewEvent("CustomerRegistered", 1, sealed_text(old, store.keyring, str(GRACE)))],
        ExpectedVersion.NO_STREAM,
    )
    service.dispatch(ChangeAddress(customer_id=GRACE, address=GRACE_HOME))
    service.dispatch(ChangeTier(customer_id=GRACE, tier=Tier.GOLD))  # 3 events: a snapshot
    register = RegisterCustomer(customer_id=ADA, name="Ada Lovelace", email="ada@a.example", phone="+44 20 7946 0958")  # fmt: skip
    service.dispatch(register)
    service.dispatch(ChangeAddress(customer_id=ADA, address=ADA_HOME))
    service.dispatch(ChangeTier(customer_id=ADA, tier=Tier.GOLD))
    service.dispatch(PlaceOrder(order_id=GRACE_ORDER, customer_id=GRACE, total=Decimal("42.00"), ship_to=GRACE_HOME))  # fmt: skip
    projections = service.projections()
    projections.catch_up()

    assert isinstance(store, SnapshotStore)
    snapshot = store.load_snapshot(f"Customer-{GRACE}")
    assert snapshot is not None and snapshot.version == 3
    assert "$personal" in snapshot.state and "Grace Hopper" not in snapshot.state
    grace = service.customer_repository.load(GRACE).state
    assert (grace.name, grace.email, grace.address) == ("Grace Hopper", "grace@navy.example", GRACE_HOME)  # fmt: skip
    directory = CustomerDirectoryQuery(store)
    row = directory.get(GRACE)
    assert row is not None and (row.name, row.city, row.orders) == ("Grace Hopper", "Arlington", 1)
    (wrapped,) = store.subject_keys([str(GRACE)]).values()
    assert isinstance(wrapped, bytes)
    assert wrapped.hex() in backend.raw().replace("\\x", "") or wrapped.decode("latin-1") in backend.raw()  # fmt: skip

    with command_context(user="dpo@shop.example"):
        assert service.forget(GRACE, metadata={"reason": "erasure request"}) is True
    assert service.forget(GRACE) is False

    # Loaded (the snapshot of version 3 holds her data sealed): the placeholders.
    grace = service.customer_repository.load(GRACE).state
    assert (grace.name, grace.email, grace.phone) == ("<erased>", "erased@invalid", None)
    assert (grace.address, grace.tier) == (ERASED_HOME, Tier.GOLD)
    # The version-1 event, upcast from its placeholders.
    first = service.customer_repository.history(GRACE)[0]
    assert first.recorded.event_version == 1
    assert first.event == CustomerRegistered(name="<erased>", email="erased@invalid", phone=None)
    # The order's event, sealed with the customer's key (its `subject: customer_id`).
    (placed,) = [entry.event for entry in service.order_repository.history(GRACE_ORDER)]
    assert isinstance(placed, OrderPlaced) and placed.ship_to == ERASED_HOME
    # Commands without personal data still work on her; new personal data is refused.
    for tier in (Tier.STANDARD, Tier.GOLD, Tier.STANDARD):  # past the next snapshot
        service.dispatch(ChangeTier(customer_id=GRACE, tier=tier))
    assert service.customer_repository.load(GRACE).state.name == "<erased>"
    with pytest.raises(ForgottenSubject):
        service.dispatch(ChangeAddress(customer_id=GRACE, address=GRACE_HOME))
    # The directory rebuilt from every event.
    projections.rebuild("customer_directory")
    row = directory.get(GRACE)
    assert row is not None
    assert (row.name, row.email, row.phone) == ("<erased>", "erased@invalid", None)
    assert (row.city, row.tier, row.orders) == ("Arlington", "standard", 1)
    # Ada, through her snapshot and the rebuilt directory.
    ada = service.customer_repository.load(ADA).state
    assert (ada.name, ada.phone, ada.address) == ("Ada Lovelace", "+44 20 7946 0958", ADA_HOME)
    ada_row = directory.get(ADA)
    assert ada_row is not None and ada_row.name == "Ada Lovelace"
    store.close()

    # `esgen inspect events` with the master key: Grace's placeholders, Ada's data.
    shown = esgen_inspect(backend, f"Customer-{GRACE}", key_text)
    assert shown.returncode == 0, shown.stderr
    assert '"name": "<erased>"' in shown.stdout and '"street": "<erased>"' in shown.stdout
    assert "stored as v1" in shown.stdout
    shown = esgen_inspect(backend, f"Customer-{ADA}", key_text)
    assert shown.returncode == 0, shown.stderr
    assert '"name": "Ada Lovelace"' in shown.stdout
    # Without it: a forgotten subject still reads as placeholders, the others cannot be read.
    shown = esgen_inspect(backend, f"Order-{GRACE_ORDER}", None)
    assert shown.returncode == 0, shown.stderr
    assert '"street": "<erased>"' in shown.stdout
    shown = esgen_inspect(backend, f"Customer-{ADA}", None)
    assert shown.returncode == 1 and "ESGEN_MASTER_KEY" in shown.stderr, shown.stderr

    # Under the store: none of Grace's plain text, nor her wrapped key; what is not
    # personal is there in plain text (the scan sees the data).
    raw = backend.raw()
    assert [text for text in GRACE_PLAINTEXT if text in raw] == []
    assert wrapped.hex() not in raw.replace("\\x", "") and wrapped.decode("latin-1") not in raw
    assert "Arlington" in raw and "esgen.SubjectForgotten" in raw

    # Opened again with the same master key, nothing comes back.
    store = backend.open(key)
    again = CustomersService(store).customer_repository.load(GRACE).state
    assert again.name == "<erased>"
    store.close()


def test_customers_demo_tells_its_story(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "demo.py", str(tmp_path / "out")],
        cwd=CUSTOMERS,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "export ESGEN_MASTER_KEY=" in out
    assert "Grace: CustomerState(name='Grace Hopper', email='grace@navy.example'" in out
    assert "service.forget(GRACE) -> True" in out
    after = out.partition("service.forget(GRACE)")[2]
    assert "Grace Hopper" not in after.partition("looked for:")[0]
    assert (
        "CustomerState(name='<erased>', email='erased@invalid', phone=None, "
        "address=Address(street='<erased>', postcode='<erased>', city='Arlington'" in after
    )
    assert (
        "stored v1 CustomerRegistered -> read as "
        "CustomerRegistered(name='<erased>', email='erased@invalid', phone=None)" in after
    )
    assert "ship_to=Address(street='<erased>', postcode='<erased>', city='Arlington'" in after
    rows = after.partition("the directory, rebuilt from every event:")[2].splitlines()[1:3]
    assert [row.split()[:2] for row in rows] == [
        ["<erased>", "erased@invalid"],
        ["Ada", "Lovelace"],
    ]
    assert "a late ChangeAddress for Grace is refused: ForgottenSubject" in after
    assert "CustomerState(name='Ada Lovelace'" in after.partition("6. Ada is untouched:")[2]
    scans = [line for line in after.splitlines() if "bytes):" in line]
    assert len(scans) == 2 and all(line.endswith("none of them") for line in scans), scans
    assert f"esgen inspect events Customer-{GRACE} --store " in out
    assert f"esgen forget {ADA} --store " in out
