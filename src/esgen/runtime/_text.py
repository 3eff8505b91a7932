"""The one rule on text that reaches a store, the same for every backend.

Stream ids (and the keys that become them) must be non-empty text without NUL, because
PostgreSQL text cannot hold NUL and SQLite would take it: one store would accept an id the
other refuses. No text anywhere may hold a lone surrogate ('\\ud800'): it is not Unicode,
has no UTF-8 form, and the drivers fail on it with a bare UnicodeEncodeError. Both are
checked here, before anything touches a database, and refused with `UnstorableText`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NoReturn

from esgen.runtime._errors import UnstorableText

if TYPE_CHECKING:
    from pydantic import BaseModel

__all__ = [
    "check_json_text",
    "check_key",
    "check_stream_id",
    "check_text",
    "is_storable",
    "refuse_unencodable",
    "strings",
]

_SURROGATE = "a lone surrogate, which is not Unicode text and has no UTF-8 form"


def check_stream_id(stream_id: object) -> None:
    """Refuse a stream id no backend can store (the hot path: ASCII ids cost one test)."""
    if type(stream_id) is str and stream_id and stream_id.isascii() and "\x00" not in stream_id:
        return
    if not isinstance(stream_id, str) or not stream_id:
        raise UnstorableText(
            "stream id", str(stream_id), f"stream id must be a non-empty str (got {stream_id!r})"
        )
    check_key(stream_id, "stream id")


def check_key(value: str, what: str) -> None:
    """Refuse NUL and lone surrogates in an id or key stored as text."""
    index = value.find("\x00")
    if index >= 0:
        raise UnstorableText(
            what,
            value,
            f"{what} {value!r} holds NUL (U+0000) at index {index}: ids are stored as text, "
            "and PostgreSQL text cannot hold NUL",
        )
    check_text(value, what)


def is_storable(value: str, what: str) -> bool:
    """Whether text looked up in a store can be sent to it at all: one with a lone
    surrogate cannot, and no stored text holds one, so nothing equals it."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str (got {value!r})")
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_text(value: str, what: str) -> None:
    """Refuse a lone surrogate in text bound for a store."""
    if value.isascii():
        return
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise UnstorableText(
            what,
            value,
            f"{what} {_excerpt(value)} holds U+{ord(value[exc.start]):04X} at index "
            f"{exc.start}: {_SURROGATE}; it cannot be stored",
        ) from None


# A JSON escape of a surrogate (\ud800 to \udfff): a pair is one character, a lone one none.
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")


def check_json_text(text: str, what: str) -> None:
    """Refuse JSON text that is stored as valid but whose strings hold an escaped lone
    surrogate: pydantic's parser refuses it, so it would never decode. Only text with such
    an escape is parsed."""
    check_text(text, what)
    if "\\u" not in text or _ESCAPED_SURROGATE.search(text) is None:
        return
    try:
        data = json.loads(text)
    except ValueError:
        return  # not JSON at all: refused as such where JSON is checked
    for path, inner in strings(data, ""):
        check_text(inner, f"{what} field {path}" if path else what)


def refuse_unencodable(models: Iterable[BaseModel], exc: Exception, what: str = "") -> NoReturn:
    """After pydantic failed to serialise one of `models`: raise `UnstorableText` naming the
    model and the field that holds a lone surrogate (pydantic only says that some text did
    not encode), else `exc` as it was. Callers catch first and call this, so the usual path
    pays nothing."""
    for model in models:
        name = what or getattr(model, "event_type", None) or type(model).__name__
        for path, text in strings(model.model_dump(by_alias=True), ""):
            check_text(text, f"{name} field {path}")
    raise exc


def strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every string in plain data, keys included, with its path ("items[0].name")."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            inner = f"{path}.{key}" if path else str(key)
            if isinstance(key, str):
                yield f"{inner} (its key)", key
            yield from strings(item, inner)
    elif isinstance(value, list | tuple | set | frozenset):
        for index, item in enumerate(value):
            yield from strings(item, f"{path}[{index}]")


def _excerpt(value: str) -> str:
    # repr() shows a surrogate as an escape; long text is cut so the message stays a line.
    shown = repr(value)
    return shown if len(shown) <= 60 else f"{shown[:57]}..."
