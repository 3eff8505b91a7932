"""`_Message._evolve`, behind every generated `evolve(**changes)`: the next value of a
frozen model, with only the changed values validated, and never an invalid one."""

from __future__ import annotations

import copy
import pickle
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

import pytest
from pydantic import AwareDatetime, Field, PrivateAttr, ValidationError, field_validator

from esgen.runtime import FrozenDict, FrozenMap, ValueObject


class Money(ValueObject):
    amount: Decimal = Field(ge=0)
    currency: str = Field(pattern="^[A-Z]{3}$")


class Status(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class Account(ValueObject):
    owner: str
    balance: Money
    status: Status
    rate: float = 0.0
    opened: AwareDatetime | None = None
    limit: Annotated[Decimal, Field(ge=0)] | None = None
    tags: tuple[str, ...] = ()
    holds: FrozenMap[str, Money] = FrozenDict()
    from_: str = Field(default="", validation_alias="from", serialization_alias="from")


def account() -> Account:
    return Account(
        owner="Ada", balance=Money(amount=Decimal(10), currency="EUR"), status=Status.OPEN
    )


def test_values_of_the_exact_field_type_are_taken_as_they_are() -> None:
    before = account()
    balance = Money(amount=Decimal(3), currency="EUR")
    after = before._evolve({"balance": balance, "status": Status.CLOSED, "owner": "Bo"})
    assert after.balance is balance  # not copied, not validated again
    assert (after.status, after.owner) == (Status.CLOSED, "Bo")
    assert after.rate == 0.0 and after.tags == ()
    assert before.status is Status.OPEN  # the old value is untouched
    assert after == Account.model_validate(after.model_dump())


def test_an_invalid_value_raises_a_validation_error_naming_model_and_field() -> None:
    with pytest.raises(ValidationError) as caught:
        account()._evolve({"status": "bogus"})
    assert caught.value.title == "Account"
    (error,) = caught.value.errors()
    assert (error["loc"], error["type"], error["input"]) == (("status",), "enum", "bogus")


@pytest.mark.parametrize(
    ("changes", "loc", "kind"),
    [
        ({"balance": {"amount": "-1", "currency": "EUR"}}, ("balance", "amount"), "greater_than_equal"),
        ({"balance": {"amount": "1", "currency": "eur"}}, ("balance", "currency"), "string_pattern_mismatch"),
        ({"limit": Decimal(-1)}, ("limit",), "greater_than_equal"),
        ({"opened": datetime(2026, 1, 1)}, ("opened",), "timezone_aware"),
        ({"tags": ("a", 1)}, ("tags", 1), "string_type"),
        ({"holds": {"x": 1}}, ("holds", "x"), "model_type"),
        ({"owner": None}, ("owner",), "string_type"),
        ({"balanse": Money(amount=Decimal(1), currency="EUR")}, ("balanse",), "extra_forbidden"),
    ],
)  # fmt: skip
def test_constrained_nested_and_unknown_fields_are_refused(
    changes: dict[str, Any], loc: tuple[Any, ...], kind: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        account()._evolve(changes)
    assert caught.value.title == "Account"
    assert [(e["loc"], e["type"]) for e in caught.value.errors()] == [(loc, kind)]


def test_a_decimal_that_is_not_a_number_is_refused_though_it_is_a_decimal() -> None:
    class Price(ValueObject):
        value: Decimal

    with pytest.raises(ValidationError, match="value"):
        Price(value=Decimal(1))._evolve({"value": Decimal("NaN")})


def test_values_that_need_converting_are_converted_as_construction_would() -> None:
    after = account()._evolve(
        {
            "rate": 2,
            "tags": ["a", "b"],
            "holds": {"t1": {"amount": "5", "currency": "EUR"}},
            "balance": {"amount": "7.5", "currency": "EUR"},
            "status": "closed",
            "opened": "2026-01-02T03:04:05+00:00",
            "limit": None,
        }
    )
    assert type(after.rate) is float and after.rate == 2.0
    assert after.tags == ("a", "b")
    assert type(after.holds) is FrozenDict
    assert after.holds == {"t1": Money(amount=Decimal(5), currency="EUR")}
    assert after.balance == Money(amount=Decimal("7.5"), currency="EUR")
    assert after.status is Status.CLOSED
    assert after.opened == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert after == Account.model_validate_json(after.model_dump_json())


def test_fields_with_an_alias_are_changed_by_attribute_name() -> None:
    after = account()._evolve({"from_": "branch"})
    assert after.from_ == "branch"
    assert after.model_dump(by_alias=True)["from"] == "branch"


def test_the_evolved_value_is_a_complete_model() -> None:
    before = account()
    after = before._evolve({"tags": ("x",), "holds": {"a": before.balance}})
    assert after.model_fields_set == before.model_fields_set | {"tags", "holds"}
    assert hash(after) == hash(Account.model_validate(after.model_dump()))
    assert pickle.loads(pickle.dumps(after)) == after
    assert copy.deepcopy(after) == after
    with pytest.raises(ValidationError, match="frozen"):
        after.owner = "x"  # type: ignore[misc]


def test_models_with_validators_of_their_own_are_validated_whole() -> None:
    class Period(ValueObject):
        start: date
        end: date

        @field_validator("end")
        @classmethod
        def _after_start(cls, end: date, info: Any) -> date:
            if end < info.data["start"]:
                raise ValueError("ends before it starts")
            return end

    period = Period(start=date(2026, 1, 1), end=date(2026, 1, 31))
    assert period._evolve({"end": date(2026, 2, 1)}).end == date(2026, 2, 1)
    with pytest.raises(ValidationError, match="ends before it starts"):
        period._evolve({"start": date(2026, 3, 1)})  # the validator of `end` still runs


def test_private_attributes_are_carried_over_as_model_copy_does() -> None:
    class Cached(ValueObject):
        value: int
        _memo: int = PrivateAttr(default=0)

    first = Cached(value=1)
    first._memo = 1
    second = first._evolve({"value": 2})
    assert second._memo == 1
    second._memo = 2  # each instance has its own private attributes
    assert first._memo == 1


def test_a_subclass_instance_is_validated_not_taken_as_it_is() -> None:
    class Id(ValueObject):
        value: UUID

    class Strange(UUID):
        pass

    raw = Strange(int=1)
    after = Id(value=UUID(int=0))._evolve({"value": raw})
    assert after.value == raw


def test_collections_of_values_taken_as_they_are_are_frozen_without_pydantic() -> None:
    before = account()
    money = before.balance
    frozen = FrozenDict({"a": money})
    assert before._evolve({"holds": frozen}).holds is frozen
    after = before._evolve({"holds": {"a": money, "b": money}, "tags": ["x", "y"]})
    assert type(after.holds) is FrozenDict and after.holds["b"] is money
    assert after.tags == ("x", "y")
    # A value of another type in the collection: the validator decides, and says where.
    with pytest.raises(ValidationError) as caught:
        before._evolve({"holds": {"a": money, "b": "ten euros"}})
    assert [e["loc"] for e in caught.value.errors()] == [("holds", "b")]
