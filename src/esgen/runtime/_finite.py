"""Values a store cannot give back: NaN and ±Infinity in float fields that do not allow them.

JSON has no NaN. pydantic writes one as `null` by default, and the stored event would
then never decode again, so the runtime refuses it before anything is written. The
runtime's messages write non-finite floats as bare `NaN` / `Infinity` tokens
(`ser_json_inf_nan="constants"`), which no valid JSON holds: one substring test per
serialised value finds them, and only then is the text parsed to name the field.

A field declared `allow_nan: true` is a `NanFloat`: it writes them as the JSON strings
"NaN", "Infinity" and "-Infinity", which every backend stores (PostgreSQL's jsonb refuses
the bare tokens) and pydantic reads back as the same floats.

A Decimal NaN, sNaN or ±Infinity is written as a JSON string ("NaN", "-sNaN", "Infinity")
and no decimal field reads it back. Those strings are rare, so only text holding one is
looked at again, in Python values, where a Decimal is told from a str that reads "NaN".
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from collections.abc import Set as AbstractSet
from decimal import Decimal
from typing import Annotated, Any, cast

from pydantic import BaseModel, Field, PlainSerializer
from pydantic_core import PydanticSerializationError

from esgen.runtime._errors import UnstorableValue
from esgen.runtime._text import refuse_unencodable

__all__ = [
    "NanFloat",
    "dump_json",
    "dump_json_apart",
    "may_hold_decimal",
    "refuse_non_finite",
    "refuse_non_finite_decimals",
    "to_json_text",
]


def _nan_float_json(value: float) -> float | str:
    if value - value == 0.0:  # finite (inf - inf and NaN - NaN are NaN)
        return value
    if value != value:
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


NanFloat = Annotated[
    float, Field(allow_inf_nan=True), PlainSerializer(_nan_float_json, when_used="json")
]
"""A float that may be NaN, +Infinity or -Infinity (`allow_nan: true` in the schema)."""


def dump_json(
    model: BaseModel,
    what: str = "",
    *,
    include: AbstractSet[str] | None = None,
    exclude: AbstractSet[str] | None = None,
) -> str:
    """The model's JSON text as stores keep it. UnstorableValue if a float in it is NaN or
    infinite where its field does not allow that; UnstorableText if a str holds a lone
    surrogate. `what` names the model in the latter (default: its class); the former names
    its class, as the field's schema does. `include`/`exclude` (attribute names) write
    some fields only, as personal data is sealed apart."""
    try:
        # The serializer model_dump_json calls, without its Python wrapper: this runs once
        # per event saved (twice for one with personal fields).
        text = (
            type(model)
            .__pydantic_serializer__.to_json(
                model,
                by_alias=True,
                # Typed as set[str] there; any set reads alike.
                include=cast("set[str] | None", include),
                exclude=cast("set[str] | None", exclude),
            )
            .decode()
        )
    except PydanticSerializationError as exc:
        refuse_unencodable([model], exc, what)  # a lone surrogate: name the field
    owner = type(model).__name__
    suspect = "NaN" in text or "Infinity" in text  # usually neither: one scan each
    if not _shows_constants(type(model)):
        # A model written by hand with pydantic's default, which writes NaN as null: its
        # values are looked at instead.
        refuse_non_finite(owner, "", model.model_dump(mode="json", by_alias=True))
    elif suspect:
        _check_text(owner, text)
    if suspect and _DECIMAL_JSON.search(text):
        refuse_non_finite_decimals(owner, "", model.model_dump(by_alias=True))
    return text


def dump_json_apart(model: BaseModel, what: str, names: AbstractSet[str]) -> tuple[str, str]:
    """`dump_json` of the fields not in `names`, and of those in `names` (personal fields,
    sealed apart): the two serializer calls side by side, checked as `dump_json` checks.
    Once per event with personal fields saved."""
    cls = type(model)
    fields = cast("set[str]", names)  # typed as set[str] there; any set reads alike
    try:
        serializer = cls.__pydantic_serializer__
        rest = serializer.to_json(model, by_alias=True, exclude=fields).decode()
        values = serializer.to_json(model, by_alias=True, include=fields).decode()
    except PydanticSerializationError as exc:
        refuse_unencodable([model], exc, what)  # a lone surrogate: name the field
    if (
        not _shows_constants(cls)
        or "NaN" in rest
        or "Infinity" in rest
        or "NaN" in values
        or "Infinity" in values
    ):
        dump_json(model, what)  # rarely: the whole model, checked as it always is
    return rest, values


def refuse_non_finite(owner: str, where: str, value: Any) -> None:
    """UnstorableValue if `value` (a JSON-mode value: floats, lists, dicts) holds a
    non-finite float."""
    for path, bad in _non_finite(value, where):
        raise UnstorableValue(owner, path, bad)


# str() of a non-finite Decimal (a NaN may carry digits), as a JSON string and as text.
_DECIMAL_JSON = re.compile(r'"-?(?:s?NaN[0-9]*|Infinity)"')
_DECIMAL_TEXT = re.compile(r"-?(?:s?NaN[0-9]*|Infinity)")


def may_hold_decimal(text: str, *, json_text: bool) -> bool:
    """Whether stored text may be a non-finite Decimal's (JSON text, or one text value):
    the cheap test before `refuse_non_finite_decimals` looks at the Python values."""
    if "NaN" not in text and "Infinity" not in text:
        return False
    if json_text:
        return _DECIMAL_JSON.search(text) is not None
    return _DECIMAL_TEXT.fullmatch(text) is not None


def refuse_non_finite_decimals(owner: str, where: str, value: Any) -> None:
    """UnstorableValue if `value` (Python values, as `model_dump()` gives) holds a NaN, sNaN
    or infinite Decimal. Floats are left alone: a NanFloat may be NaN."""
    for path, leaf in _walk(value, where):
        if isinstance(leaf, Decimal) and not leaf.is_finite():
            raise UnstorableValue(owner, path, leaf)


def to_json_text(owner: str, where: str, value: Any) -> str:
    """Compact JSON of a JSON-mode value, non-finite floats refused by name."""
    try:
        return json.dumps(value, separators=(",", ":"), sort_keys=True, allow_nan=False)
    except ValueError:
        refuse_non_finite(owner, where, value)
        raise


_SHOWS: dict[type[BaseModel], bool] = {}


def _shows_constants(cls: type[BaseModel]) -> bool:
    shows = _SHOWS.get(cls)
    if shows is None:
        mode = cls.model_config.get("ser_json_inf_nan", "null")
        # "strings" reads back as itself; only "null" hides a value the text test misses.
        shows = _SHOWS[cls] = mode != "null"
    return shows


class _Constant:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


_CONSTANTS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _check_text(owner: str, text: str) -> None:
    data = json.loads(text, parse_constant=_Constant)
    for path, bad in _walk(data, ""):
        if isinstance(bad, _Constant):
            raise UnstorableValue(owner, path, _CONSTANTS[bad.name])


def _non_finite(value: Any, where: str) -> Iterator[tuple[str, float]]:
    for path, leaf in _walk(value, where):
        if type(leaf) is float and leaf - leaf != 0.0:
            yield path, leaf


def _walk(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    """Every leaf of a JSON value with its path (`readings[2].value`)."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _walk(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple | set | frozenset):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]")
    else:
        yield path, value
