"""Base classes for the messages generated code defines: events, commands, value types.

All are frozen pydantic models that reject unknown keys: an event is an immutable fact,
and a typo in a payload must fail loudly rather than vanish. Bytes travel as base64 in
JSON, so any bytes survive a round trip through the store. A field whose schema name
cannot be an attribute (`from`, `json`) is the attribute `from_`, `json_`, keyed in JSON by
its schema name: models read either, and write the schema name.

Generated states, rows and value types also get a typed `evolve(**changes)`, built on
`_Message._evolve`: the next value, with only the changed fields validated.
"""

from __future__ import annotations

import enum
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, PydanticUserError, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from esgen.runtime._frozen import FrozenDict

__all__ = ["Command", "Event", "ValueObject"]

_new = object.__new__
_set_dict = BaseModel.__dict__["__dict__"].__set__
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__


class _Message(BaseModel):
    """What every generated model shares."""

    # A literal ConfigDict on a class, not a shared variable: pydantic's mypy plugin reads
    # `validate_by_name` only from one, and without it would ask for `from=` where code
    # writes `from_=`.
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        ser_json_bytes="base64",
        val_json_bytes="base64",
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        # JSON has no NaN (pydantic would write null, which never reads back): floats are
        # finite unless a field is a NanFloat, and one that got in anyway (model_construct)
        # is written as a bare token the runtime refuses by name before storing it.
        allow_inf_nan=False,
        ser_json_inf_nan="constants",
    )

    def _evolve(self, changes: Mapping[str, Any]) -> Self:
        """A copy of this model with `changes` (attribute name -> value) applied.

        Cheaper than `model_copy(update=...)` and, unlike it, safe: a value already of its
        field's exact type, where the field has no constraints (a Money for a Money field,
        an enum member, a str), is taken as it is; any other goes through its field's
        validator (cached), so `status="bogus"` raises a ValidationError naming `status`.
        The fields not changed are not validated again. Generated models wrap this in a
        keyword-typed `evolve`; a hand-written model may do the same.
        """
        cls = type(self)
        plan = _PLANS.get(cls) or _plan(cls)
        fields = plan.fields
        if fields is None:  # validators of its own: only a whole validation runs them
            return cls.model_validate({**self.__dict__, **changes})
        data = {**self.__dict__, **changes}
        for name, value in changes.items():
            entry = fields.get(name)
            if entry is None:
                raise _error(cls, name, {"type": "extra_forbidden", "loc": (), "input": value})
            if type(value) not in entry[0]:  # unpacked only here: most values are exact
                _, collection, field = entry
                if collection is None or (checked := collection(value)) is _NOT_SURE:
                    checked = field.validate(value)
                data[name] = checked
        # What model_copy does, through the slots' own descriptors (half the cost of
        # object.__setattr__); a frozen model's fields-set is never changed, so shared.
        new = _new(cls)
        _set_dict(new, data)
        fields_set = self.__pydantic_fields_set__
        if not (plan.frozen and fields_set.issuperset(changes)):
            fields_set = fields_set | changes.keys()
        _set_fields_set(new, fields_set)
        _set_extra(new, None)
        private = self.__pydantic_private__
        _set_private(new, None if private is None else dict(private))
        return new


class ValueObject(_Message):
    """A value type: compared by value, never changed after creation."""


class Event(_Message):
    """One version of one event type.

    Generated subclasses set `event_type` (the stable name stored with every event) and
    `event_version` (1..n). Older versions are separate classes with the same type name.
    """

    event_type: ClassVar[str]
    event_version: ClassVar[int]


class Command(_Message):
    """A request to change one aggregate; handled once, may be rejected."""

    command_type: ClassVar[str]


# -- how `_evolve` checks one field ---------------------------------------------------

# Values of these exact types are valid for a field of that type without constraints, as
# they are. Not Decimal (NaN and infinities are refused), not datetime (AwareDatetime); a
# float only when finite (`_finite_or_unsure`), as fields without allow_nan refuse the rest.
_TAKEN_AS_IS = frozenset({str, int, float, bool, bytes, UUID})


class _Field:
    """One field as `_evolve` sees it: the types taken as they are, a check that takes
    collections of such values as they are, and the field's validator for the rest."""

    __slots__ = ("_owner", "_validator", "annotation", "collection", "exact", "name")

    def __init__(self, owner: type[BaseModel], name: str, info: FieldInfo) -> None:
        self._owner = owner
        self.name = name
        annotation: Any = info.annotation
        self.exact: frozenset[type] = frozenset()
        self.collection = _collection_check(info.annotation, info.metadata)
        if info.metadata:
            annotation = typing.Annotated[(annotation, *info.metadata)]
        else:
            self.exact = _exact_types(info.annotation)
            if float in self.exact:
                self.exact -= {float}
                self.collection = _finite_or_unsure
        self.annotation = annotation
        self._validator: Callable[[Any], Any] | None = None

    def validate(self, value: Any) -> Any:
        validator = self._validator
        if validator is None:
            # Built on first use; pydantic-core's own validator, without TypeAdapter's
            # Python wrapper around each call. With the model's allow_inf_nan, which a
            # TypeAdapter of the bare annotation would not know (a model's own fields
            # keep theirs: pydantic refuses a config for a type that has one).
            config = ConfigDict(allow_inf_nan=self._owner.model_config.get("allow_inf_nan", True))
            try:
                core = TypeAdapter(self.annotation, config=config).validator
            except PydanticUserError:
                core = TypeAdapter(self.annotation).validator
            validator = self._validator = core.validate_python
        try:
            return validator(value)
        except ValidationError as error:
            raise _error(self._owner, self.name, *error.errors(include_url=False)) from None


_NOT_SURE = object()


def _finite_or_unsure(value: Any) -> Any:
    # x - x is 0.0 for a finite float, NaN for NaN and the infinities.
    if type(value) is float and value - value == 0.0:
        return value
    return _NOT_SURE


def _collection_check(annotation: Any, metadata: list[Any]) -> Callable[[Any], Any] | None:
    """For `tuple[T, ...]` and `FrozenMap[K, V]` of types taken as they are: a check that
    takes a list, tuple or dict holding only such values without calling pydantic (the
    common `(*state.items, item)` or `{**state.by_id, key: item}`), and says _NOT_SURE
    of anything else, which the validator then decides."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if not metadata and origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        items = _exact_types(args[0])
        if not items:
            return None

        def check_tuple(value: Any) -> Any:
            kind = type(value)
            if kind is not tuple and kind is not list:
                return _NOT_SURE
            for item in value:  # a loop, not all(...): no generator to set up
                item_kind = type(item)
                if item_kind not in items or (item_kind is float and item - item != 0.0):
                    return _NOT_SURE
            return value if kind is tuple else tuple(value)

        return check_tuple
    if metadata == [FrozenDict] and origin is Mapping and len(args) == 2:
        keys, values = _exact_types(args[0]), _exact_types(args[1])
        if not (keys and values):
            return None

        def check_map(value: Any) -> Any:
            kind = type(value)
            if kind is not dict and kind is not FrozenDict:
                return _NOT_SURE
            for key, item in value.items():
                item_kind = type(item)
                if (
                    type(key) not in keys
                    or item_kind not in values
                    or (item_kind is float and item - item != 0.0)
                ):
                    return _NOT_SURE
            return value if kind is FrozenDict else FrozenDict(value)

        return check_map
    return None


_Fields = dict[str, tuple[frozenset[type], Callable[[Any], Any] | None, _Field]]


class _Plan:
    """How `_evolve` changes one model class: per attribute, the types taken as they are
    and the field's validator; None where the class has validators of its own."""

    __slots__ = ("fields", "frozen")

    def __init__(self, cls: type[BaseModel]) -> None:
        self.frozen = bool(cls.model_config.get("frozen"))
        decorators = cls.__pydantic_decorators__
        self.fields: _Fields | None = None
        if not (
            decorators.validators
            or decorators.field_validators
            or decorators.root_validators
            or decorators.model_validators
        ):
            self.fields = {}
            for name, info in cls.model_fields.items():
                field = _Field(cls, name, info)
                self.fields[name] = (field.exact, field.collection, field)


_PLANS: dict[type[BaseModel], _Plan] = {}


def _plan(cls: type[BaseModel]) -> _Plan:
    plan = _PLANS[cls] = _Plan(cls)
    return plan


def _exact_types(annotation: Any) -> frozenset[type]:
    """The types whose values an unconstrained field of `annotation` takes as they are."""
    if annotation is None or annotation is type(None):
        return frozenset({type(None)})
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        exact: frozenset[type] = frozenset()
        for arg in typing.get_args(annotation):
            exact |= _exact_types(arg)
        return exact
    if not isinstance(annotation, type) or origin is not None:
        return frozenset()
    if annotation in _TAKEN_AS_IS or issubclass(annotation, enum.Enum):
        return frozenset({annotation})
    if (
        issubclass(annotation, BaseModel)
        and annotation.model_config.get("revalidate_instances", "never") == "never"
        and annotation.__pydantic_complete__
    ):
        # pydantic itself takes a model instance as it is (a frozen one cannot have
        # changed since it was validated).
        return frozenset({annotation})
    return frozenset()


def _error(owner: type[BaseModel], name: str, *errors: Any) -> ValidationError:
    """A ValidationError titled by the model, located at the field."""
    line_errors: list[Any] = []
    for error in errors:
        line: dict[str, Any] = {
            "type": error["type"],
            "loc": (name, *error["loc"]),
            "input": error["input"],
        }
        if "ctx" in error:
            line["ctx"] = error["ctx"]
        line_errors.append(line)
    try:
        return ValidationError.from_exception_data(owner.__name__, line_errors)
    except (KeyError, TypeError, ValueError):
        # An error type of a custom validator pydantic does not know by name: keep its
        # message under a custom type of the same name.
        from pydantic_core import PydanticCustomError

        for line, error in zip(line_errors, errors, strict=True):
            line["type"] = PydanticCustomError(error["type"], error["msg"])
            line.pop("ctx", None)
        return ValidationError.from_exception_data(owner.__name__, line_errors)
