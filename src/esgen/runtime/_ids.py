"""Ids as the schema declares them (uuid, int or str), and their one text form in stream ids.

Stream ids and saga correlations are text, so each id type has exactly one encoding:

- UUID: the canonical lowercase hyphenated form, `str(uuid)` (what esgen always stored);
- int: base 10, with a minus sign when negative, no leading zeros (bool is refused);
- str: the text as it is, which must not be empty.

Decoding accepts only that form: `decode_id(UUID, "0B5F...")` fails instead of returning
a UUID whose stream is another one, since `str()` of it would not give the text back.
"""

from __future__ import annotations

from typing import Any, Final
from uuid import UUID

from typing_extensions import TypeVar

from esgen.runtime._errors import DecodeError

__all__ = ["ID_TYPES", "AnyId", "IdT", "check_id", "decode_id", "encode_id", "id_type_name"]

AnyId = UUID | int | str
"""What an aggregate id or a saga correlation value may be."""

ID_TYPES: Final = (UUID, int, str)

IdT = TypeVar("IdT", bound=AnyId, default=str)
"""The id type of an aggregate (or correlation type of a saga); str unless declared."""

_T = TypeVar("_T", UUID, int, str)


def encode_id(value: AnyId) -> str:
    """The text form of an id, as it appears in stream ids and stored saga correlations."""
    # Checked by class first: bool is an int, IntEnum's str() is its name, and a str
    # subclass may override __str__; the base classes' own conversions avoid all three.
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, bool):
        raise TypeError(f"an id may be a UUID, an int or a str, not a bool (got {value!r})")
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, str):
        if not value:
            raise ValueError("an id must not be empty (got '')")
        return str.__str__(value)
    raise TypeError(
        f"an id must be a UUID, an int or a str (got {value!r}, a {type(value).__name__})"
    )


def decode_id(id_type: type[_T], text: str) -> _T:
    """The id whose text form is `text`; `DecodeError` unless `text` is exactly that form."""
    value: Any
    try:
        if id_type is UUID:
            value = UUID(text)
        elif id_type is int:
            value = int(text)  # Python bounds the digits it converts (4300 by default)
        elif id_type is str:
            value = text
        else:
            raise TypeError(f"id types are UUID, int and str (got {id_type!r})")
    except ValueError:
        value = None
    if value is None or not text or encode_id(value) != text:
        raise DecodeError(
            f"{text!r} is not an id of type {id_type_name(id_type)}: expected {_EXPECTED[id_type]}"
        )
    return value  # type: ignore[no-any-return]  # one of the three, matched to id_type above


_EXPECTED: Final[dict[type, str]] = {
    UUID: "the canonical form, lowercase and hyphenated (as str(UUID) writes it)",
    int: "a base-10 integer without sign '+', leading zeros, spaces or underscores",
    str: "a non-empty text",
}


def id_type_name(id_type: type) -> str:
    return "UUID" if id_type is UUID else id_type.__name__


def check_id(id_type: type, value: object, owner: str, what: str = "ids") -> None:
    """Raise TypeError unless `value` is an id of `id_type`; `owner` names who expects it.

    A str where a UUID is expected is refused rather than parsed: `UUID("0B5F...")` and the
    uppercase text would otherwise name two different streams.
    """
    if isinstance(value, id_type) and value.__class__ is not bool:
        if value == "":
            raise ValueError(f"{owner} {what} must not be empty (got '')")
        return
    hint = ""
    if id_type is UUID and isinstance(value, str):
        hint = "; convert it with UUID(text) where it enters the system"
    elif id_type is int and isinstance(value, str):
        hint = "; convert it with int(text) where it enters the system"
    elif id_type is str and isinstance(value, UUID | int):
        name = type(value).__name__
        hint = f"; declare {name} {what} in the class's type arguments, or pass str(value)"
    raise TypeError(
        f"{owner} {what} are {id_type_name(id_type)} values (got {value!r}, a "
        f"{type(value).__name__}){hint}"
    )
