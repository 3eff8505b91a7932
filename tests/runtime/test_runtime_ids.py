"""Ids typed as declared: the one text form per id type, typed aggregates, repositories,
projections and sagas, and what a type checker makes of them."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from contextlib import closing
from pathlib import Path
from typing import Any, ClassVar, NewType
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict

from esgen.runtime import (
    Aggregate,
    AggregateDefinitionError,
    AggregateNotFound,
    Command,
    DecodeError,
    Event,
    EventRegistry,
    EventStore,
    MemoryEventStore,
    NewEvent,
    Projection,
    Repository,
    Saga,
    SagaRunner,
    SQLiteEventStore,
    decode_id,
    encode_id,
    handle_command,
)
from esgen.runtime.testing import AggregateScenario, ManualClock, SagaScenario
from esgen.runtime.testing._domain import (
    Account,
    Deposit,
    Deposited,
    DepositRefused,
    OpenWallet,
    Wallet,
    WalletClosed,
    WalletOpened,
    make_wallet_registry,
)

WALLET = UUID("0b5f8e3c-1d2a-4f6b-9c8d-7e6f5a4b3c2d")

# -- the encoding ------------------------------------------------------------------------


@given(st.uuids())
def test_uuids_round_trip_in_their_canonical_form(value: UUID) -> None:
    text = encode_id(value)
    assert text == str(value)  # what esgen stored before ids were typed
    assert decode_id(UUID, text) == value


@given(st.integers(min_value=-(10**30), max_value=10**30))
def test_ints_round_trip_in_base_ten(value: int) -> None:
    text = encode_id(value)
    assert text == str(value)
    assert decode_id(int, text) == value


@given(st.text(min_size=1))
def test_texts_round_trip_as_they_are(value: str) -> None:
    assert encode_id(value) == value
    assert decode_id(str, value) == value


@given(st.uuids())
def test_only_the_canonical_uuid_text_decodes(value: UUID) -> None:
    text = str(value)
    for other in (text.upper(), "{" + text + "}", f"urn:uuid:{text}", text.replace("-", "")):
        if other != text:
            with pytest.raises(DecodeError, match="is not an id of type UUID"):
                decode_id(UUID, other)


@pytest.mark.parametrize("text", ["+5", "05", " 5", "5 ", "5_000", "-0", "\u0665", "", "5.0", "x"])
def test_only_the_canonical_int_text_decodes(text: str) -> None:
    with pytest.raises(DecodeError, match="is not an id of type int") as caught:
        decode_id(int, text)
    assert isinstance(caught.value, ValueError)


def test_an_empty_text_is_no_id() -> None:
    with pytest.raises(DecodeError, match="non-empty"):
        decode_id(str, "")
    with pytest.raises(ValueError, match="must not be empty"):
        encode_id("")


@pytest.mark.parametrize("value", [True, 1.5, None, b"x", ("a",)])
def test_other_values_are_not_ids(value: object) -> None:
    with pytest.raises(TypeError, match="an id"):
        encode_id(value)  # type: ignore[arg-type]


def test_enum_members_encode_as_their_value() -> None:
    from enum import IntEnum, StrEnum

    class Slot(IntEnum):
        FIRST = 1

    class Kind(StrEnum):
        A = "a"

    assert encode_id(Slot.FIRST) == "1"
    assert encode_id(Kind.A) == "a"


def test_decoding_refuses_other_id_types() -> None:
    with pytest.raises(TypeError, match="id types are UUID, int and str"):
        decode_id(float, "1.5")  # type: ignore[type-var]


# -- aggregates --------------------------------------------------------------------------


class Named(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str


class Renamed(Event):
    event_type = "Renamed"
    event_version = 1
    name: str


class _Thing(Aggregate[Named, int]):
    aggregate_type = "Thing"
    apply_methods: ClassVar[Mapping[type[Event], str]] = {Renamed: "on_renamed"}

    def on_renamed(self, event: Renamed) -> Named:
        return Named(name=event.name)


class Thing(_Thing):  # inherits the id type of its generated base
    pass


TicketId = NewType("TicketId", UUID)


class Ticket(Aggregate[Named, TicketId]):
    aggregate_type = "Ticket"


class PlainThing(Aggregate[Named]):
    aggregate_type = "PlainThing"


def test_the_id_type_comes_from_the_type_argument() -> None:
    assert Wallet.id_type is UUID
    assert _Thing.id_type is int and Thing.id_type is int
    assert Ticket.id_type is UUID  # a NewType is its underlying type at run time
    assert PlainThing.id_type is str and Account.id_type is str


def test_an_unsupported_id_type_is_refused_at_class_creation() -> None:
    with pytest.raises(AggregateDefinitionError, match="ids must be UUID, int or str"):

        class Priced(Aggregate[Named, float]):  # type: ignore[type-var]
            aggregate_type = "Priced"

    with pytest.raises(AggregateDefinitionError, match="ids must be UUID, int or str"):

        class Dated(Aggregate[Named]):
            aggregate_type = "Dated"
            id_type = bytes


def test_an_id_of_another_type_is_refused_naming_the_aggregate() -> None:
    with pytest.raises(TypeError) as caught:
        Wallet(str(WALLET).upper())  # type: ignore[arg-type]
    message = str(caught.value)
    assert "Wallet ids are UUID values" in message
    assert repr(str(WALLET).upper()) in message and "a str" in message
    with pytest.raises(TypeError, match=r"Thing ids are int values .*True, a bool"):
        Thing(True)
    with pytest.raises(TypeError, match=r"PlainThing ids are str values .*declare UUID ids"):
        PlainThing(WALLET)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="PlainThing ids must not be empty"):
        PlainThing("")
    with pytest.raises(TypeError, match="Wallet ids are UUID values"):
        Wallet.stream_id_for(str(WALLET))  # type: ignore[arg-type]


def test_stream_ids_keep_the_form_stored_so_far() -> None:
    assert Wallet.stream_id_for(WALLET) == f"Wallet-{WALLET}"
    assert Thing.stream_id_for(-12) == "Thing--12"
    assert Account.stream_id_for("a-1") == "Account-a-1"
    assert Wallet.id_from_stream_id(f"Wallet-{WALLET}") == WALLET
    assert Thing.id_from_stream_id("Thing--12") == -12
    assert Account.id_from_stream_id("Account-a-1") == "a-1"


def test_a_malformed_stream_id_is_reported_with_where_it_came_from() -> None:
    with pytest.raises(DecodeError, match=r"stream 'Wallet-1234' of Wallet: '1234' is not an id"):
        Wallet.id_from_stream_id("Wallet-1234")
    with pytest.raises(DecodeError, match="not a stream of Wallet: expected 'Wallet-'"):
        Wallet.id_from_stream_id(f"Account-{WALLET}")


# -- repositories, on every local backend ------------------------------------------------


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> EventStore:
    if request.param == "memory":
        return MemoryEventStore()
    return SQLiteEventStore(tmp_path / "events.db")


def test_a_repository_loads_and_saves_by_typed_id(store: EventStore) -> None:
    repo = Repository(Wallet, store, make_wallet_registry(), clock=ManualClock())
    result = handle_command(
        repo, WALLET, lambda w: w.execute(OpenWallet(wallet_id=WALLET, owner="ann"))
    )
    assert result.aggregate.id == WALLET and store.stream_version(f"Wallet-{WALLET}") == 1
    wallet = repo.load(WALLET)
    assert wallet.id == WALLET and wallet.state.owner == "ann"
    assert repo.stream_id(WALLET) == f"Wallet-{WALLET}"
    assert [entry.event for entry in repo.history(WALLET)] == [WalletOpened(owner="ann")]
    assert repo.load_at(WALLET, version=1).version == 1
    with pytest.raises(TypeError, match="Wallet ids are UUID values"):
        repo.load(str(WALLET))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Wallet ids are UUID values"):
        handle_command(repo, str(WALLET), lambda w: w.execute(Deposit(wallet_id=WALLET, amount=1)))  # type: ignore[misc]


def test_not_found_keeps_the_typed_id(store: EventStore) -> None:
    repo = Repository(Wallet, store, make_wallet_registry())
    with pytest.raises(AggregateNotFound) as caught:
        repo.load(WALLET)
    error = caught.value
    assert error.aggregate_id == WALLET and error.stream_id == f"Wallet-{WALLET}"
    assert str(error) == f"Wallet {WALLET} does not exist (stream 'Wallet-{WALLET}')"
    thing_repo = Repository(Thing, store, EventRegistry([Renamed]))
    with pytest.raises(AggregateNotFound, match=r"^Thing 7 does not exist \(stream 'Thing-7'\)"):
        thing_repo.load(7)


def test_streams_written_with_text_ids_load_with_typed_ones(store: EventStore) -> None:
    # Before ids were typed, generated code wrote str(uuid) into the stream id.
    store.append(f"Wallet-{WALLET}", [NewEvent("WalletOpened", 1, '{"owner":"ann"}')], 0)
    wallet = Repository(Wallet, store, make_wallet_registry()).load(WALLET)
    assert wallet.state.owner == "ann" and wallet.id == WALLET


def test_int_ids_in_a_repository(store: EventStore) -> None:
    repo = Repository(Thing, store, EventRegistry([Renamed]))
    thing = repo.load_or_new(42)
    thing.record(Renamed(name="x"))
    repo.save(thing)
    assert store.stream_version("Thing-42") == 1
    assert repo.load(42).state == Named(name="x")


def test_projections_read_typed_aggregate_ids(store: EventStore) -> None:
    repo = Repository(Wallet, store, make_wallet_registry())
    handle_command(repo, WALLET, lambda w: w.execute(OpenWallet(wallet_id=WALLET, owner="ann")))
    (recorded,) = store.read_all()

    # Without aggregate_id_types, the text of the stream id; with them, the declared type.
    class Untyped(Projection[BaseModel]):
        pass

    class Typed(Projection[BaseModel, UUID]):
        aggregate_id_types: ClassVar[Mapping[str, type[Any]]] = {"Wallet": UUID}

    assert Untyped().aggregate_id(recorded) == str(WALLET)
    typed_id: UUID = Typed().aggregate_id(recorded)
    assert typed_id == WALLET
    assert Projection.aggregate_id_as(recorded, UUID) == WALLET
    assert Projection.aggregate_id_as(recorded, str) == str(WALLET)
    with pytest.raises(DecodeError, match=rf"stream 'Wallet-{WALLET}' \(position 1\)"):
        Projection.aggregate_id_as(recorded, int)


def test_the_scenario_fixture_takes_typed_ids() -> None:
    scenario = AggregateScenario(Wallet, WALLET)
    assert scenario.aggregate.id == WALLET
    scenario.given(WalletOpened(owner="ann")).when(Deposit(wallet_id=WALLET, amount=5))
    (event,) = scenario.aggregate.pending_events
    assert isinstance(event, Deposited) and event.amount == 5
    # Without an id, a fixed one of the declared type.
    assert isinstance(AggregateScenario(Wallet).aggregate.id, UUID)
    assert AggregateScenario(Thing).aggregate.id == 1
    assert AggregateScenario(Account).aggregate.id == "test"


# -- sagas -------------------------------------------------------------------------------


class TransferStarted(Event):
    event_type = "TransferStarted"
    event_version = 1
    transfer_id: UUID
    wallet_id: UUID
    amount: int


class TransferDone(Event):
    event_type = "TransferDone"
    event_version = 1
    transfer_id: UUID


class TransferState(BaseModel):
    wallet_id: UUID


class Transfer(Saga[TransferState, UUID]):
    name = "Transfer"
    starts_with = TransferStarted
    correlation = "transfer_id"
    state_type = TransferState
    handlers: ClassVar[Mapping[type[Event], str]] = {
        TransferStarted: "on_started",
        TransferDone: "on_done",
    }
    sends: ClassVar[frozenset[type[Command]]] = frozenset({Deposit})

    def on_started(self, event: TransferStarted) -> None:
        self.state = TransferState(wallet_id=event.wallet_id)
        self.send(Deposit(wallet_id=event.wallet_id, amount=event.amount))

    def on_done(self, event: TransferDone) -> None:
        assert self.correlation_value == event.transfer_id  # typed: no UUID(...) needed
        self.complete()


class TextTransfer(Saga[TransferState]):
    """The same workflow with the correlation as text, as generated sagas had it so far."""

    name = "TextTransfer"
    starts_with = TransferStarted
    correlation = "transfer_id"
    state_type = TransferState
    handlers: ClassVar[Mapping[type[Event], str]] = {TransferStarted: "on_started"}
    sends: ClassVar[frozenset[type[Command]]] = frozenset({Deposit})

    def on_started(self, event: TransferStarted) -> None:
        assert self.correlation_value == str(event.transfer_id)
        self.send(Deposit(wallet_id=event.wallet_id, amount=event.amount))


def test_the_correlation_type_comes_from_the_type_argument() -> None:
    assert Transfer.correlation_type is UUID
    assert TextTransfer.correlation_type is str
    with pytest.raises(AggregateDefinitionError, match="correlation values must be UUID"):

        class Bad(Saga[TransferState, float]):  # type: ignore[type-var]
            pass


def test_a_saga_runner_keeps_correlations_as_text_and_restores_them_typed(
    tmp_path: Path,
) -> None:
    store = SQLiteEventStore(tmp_path / "events.db")
    registry = EventRegistry(
        [WalletOpened, Deposited, DepositRefused, WalletClosed, TransferStarted, TransferDone]
    )
    wallets = Repository(Wallet, store, registry)
    handle_command(wallets, WALLET, lambda w: w.execute(OpenWallet(wallet_id=WALLET, owner="a")))
    sent: list[Command] = []

    def dispatch(command: object) -> object:
        assert isinstance(command, Deposit)
        sent.append(command)
        return handle_command(wallets, command.wallet_id, lambda w: w.execute(command))

    typed = SagaRunner(Transfer, store, registry, dispatch, start="beginning")
    text = SagaRunner(TextTransfer, store, registry, dispatch, start="beginning")
    transfer_id = UUID("11111111-2222-4333-8444-555555555555")
    store.append(
        "Transfers",
        [NewEvent.from_event(TransferStarted(transfer_id=transfer_id, wallet_id=WALLET, amount=3))],
        0,
    )
    typed.catch_up()
    text.catch_up()
    instance = typed.instance(transfer_id)
    assert instance is not None and instance.correlation_value == transfer_id
    assert instance.state.wallet_id == WALLET and len(sent) == 2
    with pytest.raises(TypeError, match="Transfer correlations are UUID values"):
        typed.instance(str(transfer_id))  # type: ignore[arg-type]
    # Stored the same way by both: the canonical text.
    old = text.instance(str(transfer_id))
    assert old is not None and old.correlation_value == str(transfer_id)
    store.append("Transfers", [NewEvent.from_event(TransferDone(transfer_id=transfer_id))], 1)
    typed.catch_up()
    done = typed.instance(transfer_id)
    assert done is not None and done.status == "completed"
    with closing(sqlite3.connect(tmp_path / "events.db")) as db:
        rows = db.execute("SELECT saga, correlation FROM esgen_sagas ORDER BY saga").fetchall()
    assert rows == [("TextTransfer", str(transfer_id)), ("Transfer", str(transfer_id))]


class LooseStarted(Event):
    event_type = "LooseStarted"
    event_version = 1
    transfer_id: str  # declared as text, while the saga's correlation is a UUID


class LooseTransfer(Saga[TransferState, UUID]):
    name = "LooseTransfer"
    starts_with = LooseStarted
    correlation = "transfer_id"
    state_type = TransferState
    handlers: ClassVar[Mapping[type[Event], str]] = {LooseStarted: "on_started"}

    def on_started(self, event: LooseStarted) -> None:
        pass


def test_a_correlation_that_is_not_of_the_saga_type_stops_the_runner(tmp_path: Path) -> None:
    store = SQLiteEventStore(tmp_path / "events.db")
    registry = EventRegistry([LooseStarted])
    runner = SagaRunner(LooseTransfer, store, registry, print, start="beginning")
    text = str(WALLET).upper()
    store.append("Loose", [NewEvent.from_event(LooseStarted(transfer_id=text))], 0)
    for _ in range(2):  # the event stays unhandled: nothing was committed
        with pytest.raises(DecodeError, match="is not an id of type UUID") as caught:
            runner.catch_up()
        assert "'transfer_id' of LooseStarted at position 1" in "".join(caught.value.__notes__)


def test_the_saga_fixture_takes_typed_correlations() -> None:
    transfer_id = UUID("11111111-2222-4333-8444-555555555555")
    scenario = SagaScenario(Transfer, transfer_id)
    scenario.given().when(TransferStarted(transfer_id=transfer_id, wallet_id=WALLET, amount=2))
    scenario.then_sends(Deposit(wallet_id=WALLET, amount=2))
    scenario.when(TransferDone(transfer_id=transfer_id)).then_status("completed")
    assert isinstance(SagaScenario(Transfer).saga.correlation_value, UUID)
    assert SagaScenario(TextTransfer).saga.correlation_value == "test"
    with pytest.raises(TypeError, match="Transfer correlations are UUID values"):
        SagaScenario(Transfer, "t-1")  # type: ignore[misc]


# -- what mypy --strict makes of it --------------------------------------------------------

TYPED_MODULE = """
from __future__ import annotations

from uuid import UUID

from typing_extensions import assert_never

from esgen.runtime import CommandResult, MemoryEventStore, Repository, handle_command
from esgen.runtime.testing import AggregateScenario, ManualClock
from esgen.runtime.testing._domain import (
    Deposit,
    DepositRefused,
    Deposited,
    OpenWallet,
    Wallet,
    WalletOpened,
    make_wallet_registry,
)

declared: Repository[Wallet, UUID] = Repository(
    Wallet, MemoryEventStore(), make_wallet_registry()
)
inferred = Repository(Wallet, MemoryEventStore(), make_wallet_registry(), clock=ManualClock())
wallet_id = UUID(int=1)


def deposit(
    repo: Repository[Wallet, UUID], command: Deposit
) -> CommandResult[Wallet, tuple[Deposited | DepositRefused, ...], Deposited | DepositRefused]:
    return handle_command(repo, command.wallet_id, lambda wallet: wallet.execute(command))


def describe(repo: Repository[Wallet, UUID]) -> list[str]:
    opened = handle_command(
        repo, wallet_id, lambda w: w.execute(OpenWallet(wallet_id=wallet_id, owner="a"))
    )
    first: WalletOpened = opened.events[0]
    lines: list[str] = [first.owner]
    result = deposit(repo, Deposit(wallet_id=wallet_id, amount=5))
    for event in result.events:
        match event:
            case Deposited():
                lines.append(f"+{event.amount} at {event.decided_at.isoformat()}")
            case DepositRefused():
                lines.append(f"refused: {event.reason}")
            case _:
                assert_never(event)
    same_id: UUID = result.aggregate.id
    loaded: Wallet = repo.load(same_id)
    lines.append(str(loaded.version))
    return lines


describe(declared)
describe(inferred)
any_result: CommandResult[Wallet, object] = deposit(declared, Deposit(wallet_id=wallet_id, amount=1))
scenario_id: UUID = AggregateScenario(Wallet, wallet_id).aggregate.id
"""

# Every line must be reported: ids of the wrong type, and events outside the command's union.
WRONG_MODULE = """
from __future__ import annotations

from uuid import UUID

from typing_extensions import assert_never

from esgen.runtime import MemoryEventStore, Repository, handle_command
from esgen.runtime.testing import AggregateScenario
from esgen.runtime.testing._domain import Deposit, Deposited, Wallet, make_wallet_registry

repo = Repository(Wallet, MemoryEventStore(), make_wallet_registry())
declared: Repository[Wallet, UUID] = Repository(Wallet, MemoryEventStore(), make_wallet_registry())
repo.load("x")  # WRONG
text_ids: Repository[Wallet, str] = Repository(Wallet, MemoryEventStore(), make_wallet_registry())  # WRONG
declared.load_or_new(7)  # WRONG
repo.stream_id(str(UUID(int=1)))  # WRONG
text_id: str = repo.load(UUID(int=1)).id  # WRONG
AggregateScenario(Wallet, "test")  # WRONG
result = handle_command(repo, UUID(int=1), lambda w: w.execute(Deposit(wallet_id=UUID(int=1), amount=1)))
for event in result.events:
    match event:
        case Deposited():
            pass
        case _:
            assert_never(event)  # WRONG
"""


def test_mypy_strict_types_ids_and_events(tmp_path: Path) -> None:
    (tmp_path / "typed_ok.py").write_text(textwrap.dedent(TYPED_MODULE))
    (tmp_path / "typed_wrong.py").write_text(textwrap.dedent(WRONG_MODULE))
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-error-summary",
            "--hide-error-context",
            "--cache-dir",
            str(tmp_path / ".mypy_cache"),
            "typed_ok.py",
            "typed_wrong.py",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    errors = [line for line in run.stdout.splitlines() if ": error:" in line]
    assert run.returncode == 1, run.stdout + run.stderr
    assert [e for e in errors if e.startswith("typed_ok.py")] == []
    wrong_lines = {
        number
        for number, line in enumerate(textwrap.dedent(WRONG_MODULE).splitlines(), 1)
        if line.endswith("# WRONG")
    }
    reported = {int(e.split(":")[1]) for e in errors if e.startswith("typed_wrong.py")}
    assert reported == wrong_lines, run.stdout
    # And the module that is right also runs.
    subprocess.run([sys.executable, "typed_ok.py"], cwd=tmp_path, check=True)
