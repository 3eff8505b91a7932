"""Parse the type expressions of the language: `decimal`, `list[Money]`, `dict[str, int] | None`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from esgen.schema._model import (
    DictType,
    ListType,
    NamedType,
    NullableType,
    ScalarKind,
    ScalarType,
    TypeExpr,
)

__all__ = ["MAX_NESTING", "SCALAR_NAMES", "TypeSyntaxError", "parse_type"]

SCALAR_NAMES: tuple[str, ...] = tuple(k.value for k in ScalarKind)

# Real schemas nest a few levels (`dict[str, list[Money]] | None`); 32 is far past any of
# them and keeps the parser's recursion, and black's on the generated annotation, bounded.
MAX_NESTING = 32

_TOKEN = re.compile(r"\s*(?:([A-Za-z_][A-Za-z0-9_.]*)|(\[|\]|,|\|))")


@dataclass
class TypeSyntaxError(Exception):
    message: str
    offset: int  # 0-based position in the expression text


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, int]] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            match = _TOKEN.match(text, pos)
            if match is None:
                start = len(text) - len(text[pos:].lstrip())
                raise TypeSyntaxError(f"unexpected character {text[start]!r}", start)
            token = match.group(1) or match.group(2)
            self.tokens.append((token, match.start(1) if match.group(1) else match.start(2)))
            pos = match.end()
        self.index = 0
        self.depth = 0  # the generics open around the token being read

    def peek(self) -> tuple[str, int] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, int]:
        token = self.peek()
        if token is None:
            want = f"{expected!r}" if expected else "a type"
            raise TypeSyntaxError(f"expected {want} at the end", len(self.text))
        if expected is not None and token[0] != expected:
            raise TypeSyntaxError(f"expected {expected!r}, found {token[0]!r}", token[1])
        self.index += 1
        return token

    def parse(self) -> TypeExpr:
        result = self.union()
        token = self.peek()
        if token is not None:
            raise TypeSyntaxError(f"unexpected {token[0]!r}", token[1])
        return result

    def union(self) -> TypeExpr:
        first = self.peek()
        if first is not None and first[0] == "None":
            raise TypeSyntaxError("write the nullable type as 'T | None'", first[1])
        inner = self.atom()
        token = self.peek()
        if token is not None and token[0] == "|":
            self.take("|")
            none = self.take()
            if none[0] != "None":
                msg = "only 'T | None' is supported; use an enum or a value type for a choice"
                raise TypeSyntaxError(msg, none[1])
            if isinstance(inner, NullableType):
                raise TypeSyntaxError("'| None' is written twice", none[1])
            return NullableType(inner)
        return inner

    def atom(self) -> TypeExpr:
        name, offset = self.take()
        if name in "[],|":
            raise TypeSyntaxError(f"expected a type, found {name!r}", offset)
        token = self.peek()
        if token is not None and token[0] == "[":
            return self.generic(name, offset)
        if name in ("list", "dict"):
            raise TypeSyntaxError(f"'{name}' needs its item type, e.g. {_EXAMPLES[name]}", offset)
        if name in SCALAR_NAMES:
            return ScalarType(ScalarKind(name))
        return NamedType(name)

    def generic(self, name: str, offset: int) -> TypeExpr:
        if name not in ("list", "dict"):
            hint = _GENERIC_ALIASES.get(name)
            msg = f"'{name}[...]' is not a type" + (
                f"; did you mean '{hint}[...]'?" if hint else ""
            )
            raise TypeSyntaxError(msg, offset)
        self.depth += 1
        if self.depth > MAX_NESTING:
            msg = f"types nest more than {MAX_NESTING} deep; declare a value type for a level"
            raise TypeSyntaxError(msg, offset)
        self.take("[")
        if name == "list":
            item = self.union()
            self.take("]")
            self.depth -= 1
            return ListType(item)
        key, key_offset = self.take()
        if key != "str":
            msg = "map keys must be str (they become JSON object keys), e.g. dict[str, int]"
            raise TypeSyntaxError(msg, key_offset)
        self.take(",")
        value = self.union()
        self.take("]")
        self.depth -= 1
        return DictType(value)


_EXAMPLES = {"list": "list[str]", "dict": "dict[str, int]"}
_GENERIC_ALIASES = {"List": "list", "Dict": "dict", "Sequence": "list", "Mapping": "dict"}


def parse_type(text: str) -> TypeExpr:
    """Parse a type expression; raises TypeSyntaxError with the offset of the problem."""
    if not text.strip():
        raise TypeSyntaxError("empty type", 0)
    return _Parser(text).parse()
