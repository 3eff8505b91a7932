"""The aggregate base: class declarations, the dispatch table, recording, fingerprints."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel, ConfigDict

from esgen.runtime import (
    Aggregate,
    AggregateDefinitionError,
    AggregateNotCreated,
    Event,
    EventRegistry,
    MemoryEventStore,
    RegistryError,
    Repository,
    UnhandledEvent,
    state_fingerprint,
)
from esgen.runtime.testing import AggregateScenario
from esgen.runtime.testing._domain import (
    Account,
    AccountOpened,
    AccountOpenedV1,
    AccountState,
    InsufficientFunds,
    MoneyDeposited,
    MoneyWithdrawn,
    make_registry,
)


class Renamed(Event):
    event_type = "Renamed"
    event_version = 1
    name: str


class Named(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str


# A generated base names the apply methods; the hand-written subclass defines them
# (the generation gap pattern).
class _GeneratedThing(Aggregate[Named]):
    aggregate_type = "Thing"
    apply_methods: ClassVar[Mapping[type[Event], str]] = {Renamed: "on_renamed"}


class Thing(_GeneratedThing):
    def rename(self, name: str) -> None:
        self.record(Renamed(name=name))

    def on_renamed(self, event: Renamed) -> Named:
        return Named(name=event.name)


def test_state_class_comes_from_the_type_argument() -> None:
    assert Account.state_type is AccountState
    assert Thing.state_type is Named


def test_apply_methods_are_resolved_on_the_concrete_class() -> None:
    thing = Thing("t1")
    thing.rename("x")
    assert thing.state == Named(name="x")
    assert Thing._dispatch == {Renamed: Thing.on_renamed}


def test_a_base_naming_missing_methods_cannot_be_used() -> None:
    with pytest.raises(AggregateDefinitionError, match="no method 'on_renamed' to apply Renamed"):
        _GeneratedThing("t1")
    with pytest.raises(AggregateDefinitionError, match="on_renamed"):
        Repository(_GeneratedThing, MemoryEventStore(), EventRegistry([Renamed]))


def test_subclasses_may_extend_apply_methods() -> None:
    class Closed(Event):
        event_type = "Closed"
        event_version = 1

    class ClosableThing(Thing):
        apply_methods: ClassVar[Mapping[type[Event], str]] = {Closed: "on_closed"}

        def on_closed(self, event: Closed) -> Named:
            return self.state.model_copy(update={"name": self.state.name + " (closed)"})

    thing = ClosableThing("t1")
    thing.rename("x")
    thing.record(Closed())
    assert thing.state.name == "x (closed)"
    assert set(ClosableThing._dispatch) == {Renamed, Closed}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"apply_methods": {int: "x"}}, "keys must be Event classes"),
        ({"apply_methods": {Renamed: 3}}, "must be the name of a method"),
        ({"apply_methods": {Renamed: "x"}, "x": staticmethod(lambda e: e)}, "plain method"),
        ({"apply_methods": {Renamed: "x"}, "x": 5}, "plain method"),
    ],
)
def test_bad_declarations_fail_at_class_creation(body: dict[str, Any], message: str) -> None:
    with pytest.raises(AggregateDefinitionError, match=message):
        type("Bad", (Aggregate,), body)


def test_repository_needs_an_explicit_aggregate_type() -> None:
    class Nameless(Aggregate[Named]):
        pass

    with pytest.raises(AggregateDefinitionError, match="must set aggregate_type"):
        Repository(Nameless, MemoryEventStore(), EventRegistry())


def test_repository_needs_a_state_class() -> None:
    class Stateless(Aggregate):  # type: ignore[type-arg]
        aggregate_type = "Stateless"

    with pytest.raises(AggregateDefinitionError, match="pydantic state class"):
        Repository(Stateless, MemoryEventStore(), EventRegistry())


def test_repository_refuses_unregistered_or_old_event_classes() -> None:
    with pytest.raises(RegistryError, match="not registered"):
        Repository(Account, MemoryEventStore(), EventRegistry([AccountOpened]))

    class OldAccount(Account):
        apply_methods: ClassVar[Mapping[type[Event], str]] = {AccountOpenedV1: "_opened"}

    with pytest.raises(RegistryError, match="only the latest version"):
        Repository(OldAccount, MemoryEventStore(), make_registry())


def test_saving_an_unregistered_event_is_refused() -> None:
    class Stray(Event):
        event_type = "Stray"
        event_version = 1

    class StrayAccount(Account):
        pass

    # Slipped past the class check, as if the table had been patched at run time.
    StrayAccount._dispatch = {**Account._dispatch, Stray: lambda self, event: self.state}
    store = MemoryEventStore()
    repo = Repository(Account, store, make_registry())
    account = StrayAccount("a1")
    account.open("ann")
    account.record(Stray())
    with pytest.raises(RegistryError, match="Stray"):
        repo.save(account)
    assert store.head_position() == 0


def test_state_before_the_first_event() -> None:
    account = Account("a1")
    assert not account.exists and account.state_or_none is None and account.version == 0
    with pytest.raises(AggregateNotCreated, match="Account 'a1' has no state yet") as caught:
        account.deposit(5)
    assert isinstance(caught.value, LookupError)


def test_recording_applies_then_keeps_the_event() -> None:
    account = Account("a1")
    account.open("ann")
    account.deposit(5)
    assert account.version == 2 and account.committed_version == 0
    assert account.pending_events == (
        AccountOpened(owner="ann", currency="EUR"),
        MoneyDeposited(amount=5),
    )
    assert account.state.balance == 5
    assert "pending=2" in repr(account)


def test_an_event_without_apply_method_is_refused_and_changes_nothing() -> None:
    account = Account("a1")
    account.open("ann")
    with pytest.raises(UnhandledEvent, match="Account has no apply method for Renamed"):
        account.record(Renamed(name="x"))
    assert account.version == 1 and len(account.pending_events) == 1


def test_fingerprint_follows_the_state_shape() -> None:
    class SameShape(BaseModel):
        """Another name and a docstring: prose, not shape."""

        model_config = ConfigDict(frozen=True, extra="forbid")
        owner: str
        currency: str
        balance: int = 0

    class Retyped(BaseModel):
        model_config = ConfigDict(frozen=True, extra="forbid")
        owner: str
        currency: str
        balance: float = 0

    class FieldNamedTitle(BaseModel):
        title: str

    class FieldNamedName(BaseModel):
        name: str

    class Wider(AccountState):
        overdraft: int = 0

    fingerprint = state_fingerprint(AccountState)
    assert fingerprint == state_fingerprint(AccountState) and len(fingerprint) == 16
    assert state_fingerprint(SameShape) == fingerprint
    assert state_fingerprint(Wider) != fingerprint
    assert state_fingerprint(Retyped) != fingerprint
    assert state_fingerprint(FieldNamedTitle) != state_fingerprint(FieldNamedName)


def test_explicit_fingerprint_wins() -> None:
    class Pinned(Account):
        state_fingerprint = "v7"

    store = MemoryEventStore()
    repo = Repository(Pinned, store, make_registry(), snapshot_every=1)
    account = Pinned("a1")
    account.open("ann")
    repo.save(account)
    snapshot = store.load_snapshot("Account-a1")
    assert snapshot is not None and snapshot.fingerprint == "v7"


def test_snapshot_every_must_be_positive() -> None:
    with pytest.raises(ValueError, match="snapshot_every"):
        Repository(Account, MemoryEventStore(), make_registry(), snapshot_every=0)


def test_given_when_then() -> None:
    opened = AccountOpened(owner="ann", currency="EUR")
    scenario = AggregateScenario(Account).given(opened, MoneyDeposited(amount=10))
    account = scenario.when(lambda a: a.withdraw(4)).then(MoneyWithdrawn(amount=4))
    assert account.state.balance == 6 and account.committed_version == 2

    error = AggregateScenario(Account).given(opened).when(lambda a: a.withdraw(1))
    assert isinstance(
        error.then_raises(InsufficientFunds, match="balance 0 < 1"), InsufficientFunds
    )

    with pytest.raises(AssertionError, match="recorded events differ"):
        AggregateScenario(Account).given(opened).when(lambda a: a.deposit(1)).then(
            MoneyDeposited(amount=2)
        )
    with pytest.raises(AssertionError, match="raised"):
        AggregateScenario(Account).when(lambda a: a.deposit(1)).then(MoneyDeposited(amount=1))
    with pytest.raises(AssertionError, match="expected InsufficientFunds"):
        AggregateScenario(Account).given(opened).when(lambda a: a.deposit(1)).then_raises(
            InsufficientFunds
        )
