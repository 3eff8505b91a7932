"""`service.inspect()` on every backend (memory, a SQLite file, PostgreSQL): the bank
example's own types, a saga's conversation, events no code can decode, and bad questions."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from harness import EXAMPLES
from runtime.postgres_env import available_dsn, drop_schema, new_schema

from esgen.runtime import (
    EventStore,
    InspectError,
    MemoryEventStore,
    NewEvent,
    SQLiteEventStore,
    command_context,
)
from esgen.runtime.testing import ManualClock

sys.path.insert(0, str(EXAMPLES / "bank" / "src"))

from bank.commands.account import CloseAccount, DepositMoney, OpenAccount, WithdrawMoney
from bank.commands.transfer import RequestTransfer
from bank.service import BankService
from bank.types import Money

ADA, GRACE = UUID(int=1), UUID(int=2)
TRANSFER = UUID(int=10)
REQUEST = "req-7f3a"
START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ADA_STREAM = f"Account-{ADA}"


def eur(amount: str) -> Money:
    return Money(amount=Decimal(amount), currency="EUR")


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """Makes the store (with the clock), and later a read-only view of the same data."""
    made: list[EventStore] = []
    schema = new_schema()
    dsn = available_dsn() if request.param == "postgres" else None
    if request.param == "postgres" and dsn is None:
        pytest.skip("no PostgreSQL server")

    def make(clock: ManualClock, read_only: bool = False) -> EventStore:
        store: EventStore
        if request.param == "memory":
            store = made[0] if read_only else MemoryEventStore(clock=clock)
            if read_only:
                return store
        elif request.param == "sqlite":
            store = SQLiteEventStore(tmp_path / "bank.sqlite", clock=clock, read_only=read_only)
        else:
            from esgen.runtime import PostgresEventStore

            assert dsn is not None
            extra = {"read_only": True} if read_only else {}
            store = PostgresEventStore(dsn, schema=schema, clock=clock, **extra)
        made.append(store)
        return store

    yield make
    for store in reversed(made):
        store.close()
    if dsn is not None:
        drop_schema(dsn, schema)


class Stepping(ManualClock):
    """One minute later at each reading, so every event has its own time."""

    def __call__(self) -> datetime:
        self.advance(timedelta(minutes=1))
        return super().__call__()


@pytest.fixture
def bank(store_factory: Any) -> BankService:
    clock = Stepping(START)
    service = BankService(store_factory(clock), clock=clock)
    (saga,) = service.sagas()
    with command_context(actor="teller-1"):
        service.dispatch(OpenAccount(account_id=ADA, owner="Ada", currency="EUR"))
        service.dispatch(DepositMoney(account_id=ADA, amount=eur("100")))
        service.dispatch(WithdrawMoney(account_id=ADA, amount=eur("30")))
    with command_context(actor="teller-2"):
        service.dispatch(OpenAccount(account_id=GRACE, owner="Grace", currency="EUR"))
        service.dispatch(CloseAccount(account_id=GRACE, reason="moved abroad"))
    with command_context(correlation_id=REQUEST, actor="ada"):
        service.dispatch(
            RequestTransfer(
                transfer_id=TRANSFER, source_account=ADA, target_account=GRACE, amount=eur("10")
            )
        )
    saga.catch_up()
    return service


def test_streams_with_counts_and_times(bank: BankService) -> None:
    inspector = bank.inspect()
    listed = [s.to_json() for s in inspector.streams()]
    assert [(s["stream_id"], s["aggregate"], s["events"]) for s in listed] == [
        (ADA_STREAM, "Account", 5),
        (f"Account-{GRACE}", "Account", 3),
        (f"Transfer-{TRANSFER}", "Transfer", 2),
    ]
    assert listed[0]["first_recorded_at"] == "2026-03-01T12:01:00.000000+00:00"
    assert [s.stream_id for s in inspector.streams(aggregate="Transfer")] == [
        f"Transfer-{TRANSFER}"
    ]
    with pytest.raises(InspectError, match=r"no aggregate type 'Acount'.*Account, Transfer"):
        list(inspector.streams(aggregate="Acount"))
    # Filters: a stream id prefix (alone, or within an aggregate type) and a time range.
    assert [s.stream_id for s in inspector.streams(prefix=f"Account-{GRACE}")] == [
        f"Account-{GRACE}"
    ]
    assert [s.stream_id for s in inspector.streams(aggregate="Account", prefix="Acc")] == [
        ADA_STREAM,
        f"Account-{GRACE}",
    ]
    assert list(inspector.streams(aggregate="Transfer", prefix="Account-")) == []
    transfer = next(inspector.streams(aggregate="Transfer"))
    after = [s.stream_id for s in inspector.streams(since=transfer.first_recorded_at)]
    assert after == [ADA_STREAM, f"Account-{GRACE}", f"Transfer-{TRANSFER}"]  # all touched since
    before = [
        s.stream_id
        for s in inspector.streams(until=transfer.first_recorded_at - timedelta(microseconds=1))
    ]
    assert before == [ADA_STREAM, f"Account-{GRACE}"]
    grace = next(s for s in inspector.streams() if s.stream_id == f"Account-{GRACE}")
    assert [
        s.stream_id
        for s in inspector.streams(since=grace.last_recorded_at + timedelta(microseconds=1))
    ] == [
        ADA_STREAM,
        f"Transfer-{TRANSFER}",
    ]


def test_events_page_through_a_stream_and_filter(bank: BankService) -> None:
    from esgen.runtime import Inspector

    inspector = bank.inspect()
    small = Inspector(bank.store, inspector.registry,
                      [bank.account_repository, bank.transfer_repository], page_size=2)  # fmt: skip
    every = [v.to_json() for v in inspector.events(ADA_STREAM)]
    assert [v.to_json() for v in small.events(ADA_STREAM)] == every
    assert [v["event_type"] for v in every] == [
        "AccountOpened",
        "MoneyDeposited",
        "MoneyWithdrawn",
        "MoneyWithdrawn",
        "MoneyRefunded",
    ]
    first = every[0]
    assert first["actor"] == "teller-1" and first["command"] == "OpenAccount"
    assert first["data"] == {"owner": "Ada", "currency": "EUR"}
    assert every[3]["saga"] == "MoneyTransfer" and every[3]["correlation_id"] == REQUEST
    positions = [v["position"] for v in every]
    middle = [v.position for v in small.events(ADA_STREAM, since=positions[1], until=positions[3])]
    assert middle == positions[1:4]
    second = datetime.fromisoformat(every[1]["recorded_at"])
    timed = [v.position for v in small.events(ADA_STREAM, since=second, until=second)]
    assert timed == [positions[1]]
    with pytest.raises(InspectError, match="no stream 'Account-nobody'"):
        list(inspector.events("Account-nobody"))
    with pytest.raises(InspectError, match="stream ids look like <Aggregate>-<id>"):
        list(inspector.events("nobody"))


def test_state_now_at_a_version_and_as_of_a_time(bank: BankService) -> None:
    inspector = bank.inspect()
    assert inspector.state(ADA_STREAM).state.balance.amount == Decimal("70")  # type: ignore[attr-defined]
    at_two = inspector.state(ADA_STREAM, version=2)
    assert at_two.version == 2 and at_two.to_json()["state"]["balance"]["amount"] == "100"
    moment = START + timedelta(minutes=2, seconds=30)  # after the deposit, before the withdrawal
    as_of = inspector.state(ADA_STREAM, at=moment)
    assert as_of.version == 2 and as_of.at == moment
    with pytest.raises(InspectError, match="did not exist yet at 2026-03-01T12:00:00"):
        inspector.state(ADA_STREAM, at=START)
    with pytest.raises(InspectError, match="not the stream of an aggregate"):
        bank.store.append("Ledger-1", [NewEvent("Noted", 1, "{}")], 0)
        inspector.state("Ledger-1")


def test_history_diffs_field_by_field(bank: BankService) -> None:
    steps = [step.to_json() for step in bank.inspect().history(ADA_STREAM)]
    assert [c["field"] for c in steps[0]["changes"]] == [
        "owner",
        "balance.amount",
        "balance.currency",
        "status",
        "transfer_withdrawals",
    ]
    assert all(c["change"] == "added" for c in steps[0]["changes"])
    assert steps[1]["changes"] == [
        {"field": "balance.amount", "change": "changed", "before": "0", "after": "100"}
    ]


def test_replay_calls_the_debugger_on_the_chosen_event_only(bank: BankService) -> None:
    calls: list[tuple[int, str]] = []

    def debugger(apply: Any, aggregate: Any, event: Any) -> Any:
        calls.append((aggregate.version, type(event).__name__))
        return apply(aggregate, event)

    seen: list[int] = []
    state = bank.inspect().replay(
        ADA_STREAM,
        until=3,
        debugger=debugger,
        on_step=lambda s: seen.append(s.event.stream_version),
    )
    assert calls == [(2, "MoneyWithdrawn")]  # called with the state of version 2 at hand
    assert seen == [1, 2, 3] and state.version == 3
    with pytest.raises(InspectError, match="has no version 9 \\(it ends at 5\\)"):
        bank.inspect().replay(ADA_STREAM, until=9)


def test_trace_by_correlation_event_and_command_id(bank: BankService) -> None:
    inspector = bank.inspect()
    trace = inspector.trace(REQUEST)
    document = trace.to_json()
    assert document["matched"] == "correlation" and document["event_count"] == 5
    (root,) = document["roots"]
    assert root["commands"] == ["RequestTransfer"] and root["actor"] == "ada"
    names: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        names.append(node["event_type"] if node["kind"] == "event" else "+".join(node["commands"]))
        for child in node["children"]:
            walk(child)

    walk(root)
    assert names == [
        "RequestTransfer", "TransferRequested",
        "WithdrawMoney", "MoneyWithdrawn",
        "DepositMoney", "DepositRejected",
        "FailTransfer+RefundMoney", "TransferFailed", "MoneyRefunded",
    ]  # fmt: skip
    some_event = trace.events[2]
    assert inspector.trace(some_event.event_id.upper()).to_json()["roots"] == document["roots"]
    by_command = inspector.trace(root["causation_id"])
    assert by_command.matched == "causation" and by_command.correlation_id == REQUEST
    with pytest.raises(InspectError, match="no event has 'nothing' as its correlation id"):
        inspector.trace("nothing")
    with pytest.raises(InspectError, match="needs a correlation id"):
        inspector.trace("  ")


def test_audit_by_actor_correlation_and_time(bank: BankService) -> None:
    inspector = bank.inspect()
    teller = list(inspector.audit(actor="teller-1"))
    assert [v.event_type for v in teller] == ["AccountOpened", "MoneyDeposited", "MoneyWithdrawn"]
    times = [v.recorded_at for v in teller]
    assert times == sorted(set(times))
    window = inspector.audit(actor="teller-1", since=times[1], until=times[2])
    assert [v.event_type for v in window] == ["MoneyDeposited", "MoneyWithdrawn"]
    conversation = [v.event_type for v in inspector.audit(correlation_id=REQUEST)]
    assert conversation[0] == "TransferRequested" and len(conversation) == 5
    assert list(inspector.audit(actor="teller-1", since=START + timedelta(days=1))) == []
    with pytest.raises(ValueError, match="is before since"):
        list(inspector.audit(since=START + timedelta(minutes=2), until=START))


def test_an_event_no_code_can_decode_is_shown_not_fatal(bank: BankService) -> None:
    version = bank.store.stream_version(ADA_STREAM)
    bank.store.append(
        ADA_STREAM,
        [NewEvent("MoneyDeposited", 1, '{"amount": "lots"}'), NewEvent("Mystery", 1, '{"x": 1}')],
        version,
    )
    inspector = bank.inspect()
    views = list(inspector.events(ADA_STREAM))
    broken, unknown = views[-2], views[-1]
    assert not broken.decoded and broken.data == {"amount": "lots"} and broken.error
    assert "does not validate" in broken.error and "; amount" in broken.error  # the field
    assert not unknown.decoded and unknown.event_type == "Mystery" and unknown.data == {"x": 1}
    assert unknown.to_json()["current_version"] is None
    steps = list(inspector.history(ADA_STREAM))
    assert steps[-1].state is None and steps[-1].event.position == broken.position
    with pytest.raises(InspectError, match=r"cannot be decoded|MoneyDeposited"):
        inspector.state(ADA_STREAM)
    assert inspector.state(ADA_STREAM, version=version).version == version


def test_a_read_only_store_answers_the_same(bank: BankService, store_factory: Any) -> None:
    clock = Stepping(START)
    expected = bank.inspect().trace(REQUEST).to_json()
    reader = BankService(store_factory(clock, read_only=True), clock=clock)
    assert reader.inspect().trace(REQUEST).to_json() == expected
    assert [s.stream_id for s in reader.inspect().streams()] == [
        s.stream_id for s in bank.inspect().streams()
    ]
