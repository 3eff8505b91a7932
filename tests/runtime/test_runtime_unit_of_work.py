"""Units of work beyond the contract suite (which runs them on every backend): commands
through `UnitOfWork.execute`, what a unit of work refuses, and `StreamAppend` itself."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import pytest

from esgen.runtime import (
    AggregateNotFound,
    Command,
    EventRegistry,
    ExpectedVersion,
    MemoryEventStore,
    NewEvent,
    Repository,
    StreamAppend,
    UnitOfWork,
    run_in_unit_of_work,
)
from esgen.runtime.testing._domain import (
    Account,
    AccountOpened,
    MoneyDeposited,
    MoneyWithdrawn,
    make_registry,
)


class OpenAccount(Command):
    command_type = "OpenAccount"
    owner: str


class Transfer(Command):
    command_type = "Transfer"
    amount: int


class CommandedAccount(Account):
    """The contract's account, with command handlers for `execute`."""

    command_methods: ClassVar[Mapping[type[Command], str]] = {
        OpenAccount: "_open",
        Transfer: "_transfer_out",
    }

    def _open(self, command: OpenAccount) -> list[AccountOpened]:
        return [AccountOpened(owner=command.owner, currency="EUR")]

    def _transfer_out(self, command: Transfer) -> list[MoneyWithdrawn]:
        if command.amount > self.state.balance:
            raise ValueError(f"balance {self.state.balance} < {command.amount}")
        return [MoneyWithdrawn(amount=command.amount)]


@pytest.fixture
def store() -> MemoryEventStore:
    return MemoryEventStore()


@pytest.fixture
def registry() -> EventRegistry:
    return make_registry()


@pytest.fixture
def repo(store: MemoryEventStore, registry: EventRegistry) -> Repository[CommandedAccount]:
    return Repository(CommandedAccount, store, registry)


def test_execute_runs_commands_on_the_tracked_aggregates(
    repo: Repository[CommandedAccount], store: MemoryEventStore
) -> None:
    unit = UnitOfWork(store)
    assert unit.execute(repo, "a1", OpenAccount(owner="ann")) == (
        AccountOpened(owner="ann", currency="EUR"),
    )
    account = unit.load(repo, "a1")
    account.deposit(10)
    assert unit.execute(repo, "a1", Transfer(amount=4), must_exist=True) == (
        MoneyWithdrawn(amount=4),
    )
    assert account.state.balance == 6  # the same object: the identity map
    with pytest.raises(AggregateNotFound, match="'a2'"):
        unit.execute(repo, "a2", Transfer(amount=1), must_exist=True)
    with pytest.raises(ValueError, match="balance 6 < 7"):
        unit.execute(repo, "a1", Transfer(amount=7))
    unit.commit()
    assert [r.event_type for r in store.read_stream("Account-a1")] == [
        "AccountOpened",
        "MoneyDeposited",
        "MoneyWithdrawn",
    ]


def test_a_transfer_by_commands_in_the_runner(
    repo: Repository[CommandedAccount], store: MemoryEventStore
) -> None:
    for account_id, balance in (("a1", 10), ("a2", 0)):
        account = CommandedAccount(account_id)
        account.open("ann")
        account.deposit(balance)
        repo.save(account)

    def transfer(unit: UnitOfWork) -> None:
        unit.execute(repo, "a1", Transfer(amount=10), must_exist=True)
        unit.load(repo, "a2").deposit(10)

    result = run_in_unit_of_work(store, transfer)
    assert result.events == (MoneyWithdrawn(amount=10), MoneyDeposited(amount=10))
    assert (repo.load("a1").state.balance, repo.load("a2").state.balance) == (0, 10)


def test_what_a_unit_of_work_refuses(
    repo: Repository[CommandedAccount], store: MemoryEventStore, registry: EventRegistry
) -> None:
    with pytest.raises(TypeError, match="needs an EventStore"):
        UnitOfWork(repo)  # type: ignore[arg-type]
    unit = UnitOfWork(store)
    with pytest.raises(TypeError, match="expected a Repository"):
        unit.load(store, "a1")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="cannot save Account 'a1'"):
        unit.add(repo, Account("a1"))  # type: ignore[misc]

    class Twin(Account):  # another class on the same streams ("Account-<id>")
        pass

    unit.load_or_new(Repository(Account, store, registry), "a1")
    with pytest.raises(TypeError, match="tracked by this unit of work as Account, so it cannot"):
        unit.load_or_new(Repository(Twin, store, registry), "a1")


def test_repr_names_the_store_and_the_tracked_streams(
    repo: Repository[CommandedAccount], store: MemoryEventStore
) -> None:
    unit = UnitOfWork(store)
    unit.load_or_new(repo, "a1")
    assert repr(unit).endswith("tracked=[Account-a1])")


def test_a_stream_append_is_a_frozen_record() -> None:
    append = StreamAppend("s", [NewEvent("Thing", 1, "{}")], ExpectedVersion.NO_STREAM)
    assert append.snapshot is None
    with pytest.raises(AttributeError):
        append.stream_id = "t"  # type: ignore[misc]
    assert append._replace(expected_version=3).expected_version == 3
