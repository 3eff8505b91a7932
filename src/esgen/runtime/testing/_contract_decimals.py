"""Decimal NaN, sNaN and ±Infinity on every backend: refused by name before anything is
written, as no decimal field reads them back. JSON holds them as the strings "NaN" or
"Infinity", so a str that reads "NaN" must still be stored: only a Decimal is refused.

Validation never lets one in; `model_copy(update=...)` and `model_construct` skip it, and a
stream, snapshot, saga or read model holding one would stop its readers for good.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import ClassVar

import pytest
from pydantic import BaseModel

from esgen.runtime import (
    Aggregate,
    Column,
    Event,
    EventRegistry,
    EventStore,
    NewEvent,
    Projection,
    ProjectionRunner,
    RecordedEvent,
    Repository,
    Saga,
    SagaRunner,
    SnapshotStore,
    TableSpec,
    UnstorableValue,
    ValueObject,
)
from esgen.runtime.testing._fixtures import StoreFixtures, active_rows

__all__ = ["DecimalValuesContract"]

# Each form str() gives a non-finite Decimal (a NaN may carry a payload).
NON_FINITE = ["NaN", "-NaN", "sNaN", "-sNaN", "NaN12", "Infinity", "-Infinity"]


class Money(ValueObject):
    amount: Decimal
    currency: str


class Paid(Event):
    event_type = "Paid"
    event_version = 1
    payer: str
    price: Money


class TillState(ValueObject):
    total: Decimal = Decimal(0)
    note: str = ""


class Till(Aggregate[TillState]):
    aggregate_type = "Till"
    apply_methods: ClassVar[Mapping[type[Event], str]] = {Paid: "_paid"}

    def pay(self, price: Money, payer: str = "a") -> None:
        self.record(Paid(payer=payer, price=price))

    def _paid(self, event: Paid) -> TillState:
        # Unchecked, as an apply method trusting its input may build it.
        return TillState.model_construct(total=event.price.amount, note=event.payer)


def _registry() -> EventRegistry:
    registry = EventRegistry([Paid])
    registry.check()
    return registry


def _money(amount: str, currency: str = "EUR") -> Money:
    # model_copy(update=...) skips validation: the way a non-finite amount gets in.
    return Money(amount=Decimal(1), currency=currency).model_copy(
        update={"amount": Decimal(amount)}
    )


class PriceRow(ValueObject):
    payer: str
    amount: Decimal = Decimal(0)
    note: str = ""
    history: tuple[Decimal, ...] = ()


class Prices(Projection[PriceRow]):
    name: ClassVar[str] = "prices"
    table: ClassVar[TableSpec] = TableSpec(
        "prices",
        key="payer",
        columns=(
            Column("payer", "text"),
            Column("amount", "text"),
            Column("note", "text"),
            Column("history", "json"),
        ),
    )
    row_type: ClassVar[type[BaseModel]] = PriceRow
    handlers: ClassVar[Mapping[type[Event], str]] = {Paid: "on_paid"}

    def on_paid(self, event: Paid, recorded: RecordedEvent) -> None:
        # A stored event cannot hold a non-finite Decimal (events refuse it): the handler
        # makes one from a marker, as its arithmetic might ("history=" puts it in JSON).
        where, _, marker = event.price.currency.partition("=")
        amount = Decimal(marker) if marker else event.price.amount
        if where == "history":
            row = PriceRow.model_construct(payer=event.payer, history=(Decimal(1), amount))
        else:
            note = event.price.currency
            row = PriceRow.model_construct(payer=event.payer, amount=amount, note=note)
        self.rows.put(row)


class BudgetState(BaseModel):
    limit: Decimal
    label: str = ""


class Budget(Saga[BudgetState]):
    name = "Budget"
    starts_with = Paid
    correlation = "payer"
    state_type = BudgetState
    handlers: ClassVar[Mapping[type[Event], str]] = {Paid: "on_paid"}

    def on_paid(self, event: Paid) -> None:
        # A marker ("=NaN") stands for what the saga's arithmetic might make.
        _, _, marker = event.price.currency.partition("=")
        limit = Decimal(marker) if marker else event.price.amount
        self.state = BudgetState.model_construct(limit=limit, label=event.price.currency)


def _no_commands(command: object) -> object:
    raise AssertionError(f"no saga here sends commands (got {command!r})")


def _paid(payer: str, amount: str, currency: str = "EUR") -> NewEvent:
    return NewEvent.from_event(
        Paid(payer=payer, price=Money(amount=Decimal(amount), currency=currency))
    )


class DecimalValuesContract(StoreFixtures):
    """What every backend does with NaN, sNaN and infinite Decimals."""

    # -- events ---------------------------------------------------------------------------

    @pytest.mark.parametrize("amount", NON_FINITE)
    def test_a_non_finite_decimal_in_an_event_is_never_stored(
        self, store: EventStore, amount: str
    ) -> None:
        tills = Repository(Till, store, _registry())
        till = Till("t1")
        till.pay(_money("1.5"))
        tills.save(till)
        till.pay(_money(amount))
        with pytest.raises(UnstorableValue, match=r"^Paid\.price\.amount is Decimal") as caught:
            tills.save(till)
        assert (caught.value.model, caught.value.field) == ("Paid", "price.amount")
        assert store.stream_version("Till-t1") == 1
        with pytest.raises(UnstorableValue, match=r"Paid\.price\.amount"):
            NewEvent.from_event(Paid(payer="a", price=_money(amount)))

    def test_text_that_reads_nan_is_stored_and_reads_back(self, store: EventStore) -> None:
        store.append("s", [_paid("NaN", "2.5", "Infinity"), _paid("-sNaN", "0")], 0)
        registry = _registry()
        events = [registry.decode_recorded(r) for r in store.read_stream("s")]
        assert events == [
            Paid(payer="NaN", price=Money(amount=Decimal("2.5"), currency="Infinity")),
            Paid(payer="-sNaN", price=Money(amount=Decimal(0), currency="EUR")),
        ]

    # -- snapshots ------------------------------------------------------------------------

    @pytest.mark.parametrize("amount", ["NaN", "-Infinity"])
    def test_a_state_with_a_non_finite_decimal_is_never_snapshotted(
        self, store: EventStore, snapshots: SnapshotStore, amount: str
    ) -> None:
        tills = Repository(Till, store, _registry(), snapshot_every=1)
        till = Till("t1")
        till.pay(_money("1"), payer="NaN")
        tills.save(till)
        till.pay(_money("1"))
        till._state = TillState.model_construct(total=Decimal(amount), note="NaN")
        with pytest.raises(UnstorableValue, match=r"TillState\.total"):
            tills.save(till)
        assert store.stream_version("Till-t1") == 1
        snapshot = snapshots.load_snapshot("Till-t1")
        assert snapshot is not None and snapshot.version == 1
        assert tills.load("t1").state == TillState(total=Decimal(1), note="NaN")

    # -- saga state and read-model rows (stores that keep progress) ------------------------

    @pytest.mark.parametrize(
        ("currency", "field"),
        [("=NaN", "amount"), ("=-Infinity", "amount"), ("history=sNaN", "history[1]")],
    )
    def test_a_row_with_a_non_finite_decimal_is_never_stored(
        self, progress: EventStore, currency: str, field: str
    ) -> None:
        store = progress
        runner = ProjectionRunner(store, _registry(), [Prices()])
        store.append("s1", [_paid("a", "1.5", "NaN")], 0)
        assert runner.catch_up() == 1
        store.append("s2", [_paid("b", "1", currency)], 0)
        with pytest.raises(UnstorableValue, match=rf"PriceRow\.{re.escape(field)} is Decimal"):
            runner.catch_up()
        (status,) = runner.status()
        assert status.position == 1
        assert _rows(store) == [PriceRow(payer="a", amount=Decimal("1.5"), note="NaN")]

    @pytest.mark.parametrize("amount", ["NaN", "Infinity"])
    def test_a_saga_state_with_a_non_finite_decimal_is_never_stored(
        self, progress: EventStore, amount: str
    ) -> None:
        store = progress
        runner = SagaRunner(Budget, store, _registry(), _no_commands, start="beginning")
        store.append("w1", [_paid("a", "2", "NaN")], 0)
        runner.catch_up()
        store.append("w2", [_paid("b", "1", f"={amount}")], 0)
        runner.catch_up()  # a state no store keeps stalls its own instance, and only it
        (stalled,) = runner.instances("stalled")
        assert stalled.problem is not None and stalled.problem.error.endswith("UnstorableValue")
        assert "BudgetState.limit is Decimal" in stalled.problem.message
        unstored = runner.instance("b")
        assert unstored is not None and unstored.state_or_none is None
        stored = runner.instance("a")
        assert stored is not None and stored.state == BudgetState(limit=Decimal(2), label="NaN")


def _rows(store: EventStore) -> list[PriceRow]:
    return active_rows(store, Prices)
