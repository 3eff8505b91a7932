"""Python source fragments built from schema values: literals, docstrings, annotations.

Schema text reaches generated code only through these functions, and only as data:
string literals come from `repr`, numbers and ids are re-printed from parsed values,
and names were validated as identifiers before they got here.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from esgen.schema import (
    QUALIFIABLE_NAMES,
    SCALAR_ANNOTATIONS,
    Constraints,
    DictType,
    EnumType,
    ListType,
    NamedType,
    NullableType,
    ScalarKind,
    ScalarType,
    TypeExpr,
    UserType,
    ValueType,
    enum_member_name,
    python_name,
)

__all__ = [
    "Imports",
    "annotation",
    "comment_text",
    "constraint_args",
    "docstring",
    "enum_member_names",
    "float_literal",
    "json_literal",
    "literal",
    "personal_annotation",
    "string",
]

# Where the scalar annotations that are not builtins come from.
_SCALAR_IMPORTS: dict[str, tuple[str, str]] = {
    "Decimal": ("decimal", "Decimal"),
    "UUID": ("uuid", "UUID"),
    "AwareDatetime": ("pydantic", "AwareDatetime"),
    "date": ("datetime", "date"),
}

_CONSTRAINT_ARGS = {
    "min": "ge",
    "max": "le",
    "exclusive_min": "gt",
    "exclusive_max": "lt",
    "min_length": "min_length",
    "max_length": "max_length",
    "pattern": "pattern",
    "max_digits": "max_digits",
    "decimal_places": "decimal_places",
}


# The narrowest line length esgen's own layout assumes; formatters only widen from here.
_IMPORT_WIDTH = 79


class Imports:
    """The `from x import y` lines a module needs, grouped and sorted like isort does.

    With `order` (the schema order of the context's names), the lines are laid out for
    generated modules, whose diffs must merge: the schema's names come in that order and
    one a line, as does any import of several names. Two branches that add unrelated
    events then add lines where they added them in the YAML, never to one shared line
    nor side by side because their names sort together.
    """

    _STDLIB = frozenset(
        {
            "__future__",
            "abc",
            "collections.abc",
            "datetime",
            "decimal",
            "enum",
            "types",
            "typing",
            "uuid",
        }
    )

    def __init__(self, order: Mapping[str, int] | None = None) -> None:
        self._names: dict[str, set[str]] = {}
        self._modules: set[str] = set()  # imported whole, as `_module`
        self._hidden: frozenset[str] = frozenset()
        self._order = order

    def add(self, module: str, name: str) -> None:
        self._names.setdefault(module, set()).add(name)

    def name(self, module: str, name: str) -> str:
        """Import `name` from `module` and return how code here spells it: through the
        module (`_datetime.date`) where a field of the class being written hides it."""
        if name in self._hidden:
            self._modules.add(module)
            return f"_{module}.{name}"
        self.add(module, name)
        return name

    def hidden_by(self, attributes: Iterable[str]) -> Imports:
        """The same imports, for a class whose fields have these attribute names."""
        view = Imports(self._order)
        view._names, view._modules = self._names, self._modules
        view._hidden = frozenset(attributes) & QUALIFIABLE_NAMES
        return view

    def update(self, other: Imports) -> None:
        for module, names in other._names.items():
            self._names.setdefault(module, set()).update(names)
        self._modules |= other._modules

    def lines(self) -> tuple[str, ...]:
        def group(module: str) -> int:
            if module == "__future__":
                return 0
            if module in self._STDLIB:
                return 1
            if module.startswith("."):
                return 4
            return 3 if module.startswith("esgen") else 2

        out: list[str] = []
        last = -1
        # `import x as _x` before `from x import y` in each group, as isort does.
        entries = [(group(m), 0, m) for m in self._modules]
        entries += [(group(m), 1, m) for m in self._names]
        for kind, whole, module in sorted(entries):
            if out and kind != last:
                out.append("")
            last = kind
            if not whole:
                out.append(f"import {module} as _{module}")
                continue
            names = sorted(self._names[module])
            if (order := self._order) is not None:
                if module.startswith("."):
                    names.sort(key=lambda n: order.get(n, len(order)))
                # A list of the schema's names may grow: one a line from its first name.
                if len(names) > 1 or (module.startswith(".") and names[0] in order):
                    out.append(
                        f"from {module} import (\n" + "".join(f"    {n},\n" for n in names) + ")"
                    )
                    continue
            line = f"from {module} import {', '.join(names)}"
            if len(line) > _IMPORT_WIDTH:
                # One name a line, with a trailing comma: black keeps it that way, and
                # adding a name to the schema adds one line to the diff.
                line = f"from {module} import (\n" + "".join(f"    {n},\n" for n in names) + ")"
            out.append(line)
        return tuple(out)


def string(text: str) -> str:
    """A string literal for any text, quoted the way black would quote it.

    `repr` does the escaping (quotes, backslashes, newlines, control characters); we only
    switch to double quotes where that adds no escapes, as black does, so that files
    already come out formatted and black can be skipped for them.
    """
    return _black_quotes(repr(text), text.count('"'), text.count("'"))


def _bytes(value: bytes) -> str:
    return _black_quotes(repr(value), value.count(b'"'), value.count(b"'"))


def _black_quotes(literal: str, doubles: int, singles: int) -> str:
    prefix, body = literal[:-1].split(literal[-1], 1)
    if literal[-1] == '"' or doubles > singles:
        return literal
    body = body.replace("\\'", "'").replace('"', '\\"')
    return f'{prefix}"{body}"'


def comment_text(text: str) -> str:
    """Text that may follow `# ` on one line: schema names only, never a newline."""
    return " ".join(text.split())


def docstring(text: str, indent: str, width: int = 79) -> str:
    """A docstring literal. Triple quotes when the text allows it, else an escaped repr.

    Long lines are wrapped (formatters leave docstrings alone); line breaks the author
    wrote are kept.
    """
    limit = width - len(indent)
    first, *rest = "\n".join(
        textwrap.fill(line, limit, break_long_words=False) if len(line) > limit else line
        for line in text.strip().split("\n")
    ).split("\n")
    # black drops trailing spaces and re-indents the lines after the first by their common
    # margin; doing the same here keeps the literal black-stable, so black can be skipped.
    rest = [line.rstrip(" ") for line in rest]
    margin = min((len(line) - len(line.lstrip(" ")) for line in rest if line), default=0)
    text = "\n".join([first.rstrip(" "), *(line[margin:] for line in rest)])
    plain = (
        '"""' not in text
        and "\\" not in text
        and not text.startswith('"')  # black would put a space before it
        and not text.endswith('"')
        and all(ch == "\n" or ch.isprintable() for ch in text)
    )
    if not plain:
        return _unpadded(string(text))
    lines = text.split("\n")
    if len(lines) == 1:
        return f'"""{text}"""'
    body = "\n".join(indent + line if line else "" for line in lines[1:])
    return f'"""{lines[0]}\n{body}\n{indent}"""'


def _unpadded(literal: str) -> str:
    """A one-line docstring literal black leaves as it is.

    black puts a space after a docstring's text when the text ends with the quote
    character, even an escaped one; a hex escape of that character keeps the text exact.
    """
    quote = literal[-1]
    if literal.endswith(f"\\{quote}{quote}"):
        return f"{literal[:-3]}\\x{ord(quote):02x}{quote}"
    return literal


def constraint_args(constraints: Constraints) -> list[str]:
    """`Field(...)` keyword arguments for a field's constraints."""
    return _constraint_args(constraints)


def annotation(type_: TypeExpr, imports: Imports, constraints: Constraints | None = None) -> str:
    """A field's annotation; constraints passed here go on the non-null part of the type."""
    if isinstance(type_, NullableType):
        return f"{annotation(type_.inner, imports, constraints)} | None"
    text = _plain(type_, imports, nan=constraints is not None and bool(constraints.allow_nan))
    args = _constraint_args(constraints)
    if args:
        imports.add("typing", "Annotated")
        imports.add("pydantic", "Field")
        return f"Annotated[{text}, Field({', '.join(args)})]"
    return text


def _plain(type_: TypeExpr, imports: Imports, nan: bool = False) -> str:
    """The annotation without constraints; with `nan` (allow_nan), its floats are NanFloats."""
    if isinstance(type_, ScalarType):
        if nan and type_.kind is ScalarKind.FLOAT:
            imports.add("esgen.runtime", "NanFloat")
            return "NanFloat"
        name = SCALAR_ANNOTATIONS[type_.kind]
        if name in _SCALAR_IMPORTS:
            return imports.name(*_SCALAR_IMPORTS[name])
        return name
    # Collections are immutable, so frozen models are immutable (and hashable) all the way
    # down: lists are tuples; maps are read-only Mappings to type checkers (a dict literal
    # still sets one) and FrozenDicts at run time. Their JSON is a list's and a dict's.
    if isinstance(type_, ListType):
        return f"tuple[{_plain(type_.item, imports, nan)}, ...]"
    if isinstance(type_, DictType):
        imports.add("esgen.runtime", "FrozenMap")
        return f"FrozenMap[str, {_plain(type_.value, imports, nan)}]"
    if isinstance(type_, NullableType):
        return f"{_plain(type_.inner, imports, nan)} | None"
    return type_.name


def _constraint_args(constraints: Constraints | None) -> list[str]:
    if constraints is None:
        return []
    parts = []
    for name, value in constraints.items():
        if name == "allow_nan":  # not an argument: the annotation's floats are NanFloats
            continue
        arg = _CONSTRAINT_ARGS[name]
        shown = string(value) if isinstance(value, str) else _number(value)
        parts.append(f"{arg}={shown}")
    return parts


def _number(value: int | float | Decimal) -> str:
    if isinstance(value, bool):  # pragma: no cover - the language never allows it
        raise TypeError(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        # An integral Decimal prints as an int so `ge=0` reads naturally.
        return str(int(value)) if value == value.to_integral_value() else str(value)
    return repr(value)


def literal(
    type_: TypeExpr, value: Any, lookup: Callable[[str], UserType | None], imports: Imports
) -> str:
    """A Python expression for a checked default value of `type_`."""
    if value is None:
        return "None"
    if isinstance(type_, NullableType):
        return literal(type_.inner, value, lookup, imports)
    if isinstance(type_, ListType):
        items = [literal(type_.item, v, lookup, imports) for v in value]
        return f"({items[0]},)" if len(items) == 1 else "(" + ", ".join(items) + ")"
    if isinstance(type_, DictType):
        imports.add("esgen.runtime", "FrozenDict")
        if not value:
            return "FrozenDict()"
        items = [
            f"{string(k)}: {literal(type_.value, v, lookup, imports)}" for k, v in value.items()
        ]
        return "FrozenDict({" + ", ".join(items) + "})"
    if isinstance(type_, NamedType):
        target = lookup(type_.name)
        if isinstance(target, EnumType):
            member = enum_member_names(target.values)[target.values.index(value)]
            return f"{target.name}.{member}"
        assert isinstance(target, ValueType)
        args = [
            f"{python_name(f.name)}={literal(f.type, value[f.name], lookup, imports)}"
            for f in target.fields
            if f.name in value
        ]
        return f"{target.name}({', '.join(args)})"
    return _scalar_literal(value, imports)


def _scalar_literal(value: Any, imports: Imports) -> str:
    if isinstance(value, str):
        return string(value)
    if isinstance(value, bytes):
        return _bytes(value)
    if isinstance(value, bool | int):
        return repr(value)
    if isinstance(value, float):
        return float_literal(value)
    if isinstance(value, Decimal):
        return f"{imports.name('decimal', 'Decimal')}({string(str(value))})"
    if isinstance(value, UUID):
        return f"{imports.name('uuid', 'UUID')}({string(str(value))})"
    if isinstance(value, datetime):
        spelled = imports.name("datetime", "datetime")
        return f"{spelled}.fromisoformat({string(value.isoformat())})"
    if isinstance(value, date):
        return f"{imports.name('datetime', 'date')}.fromisoformat({string(value.isoformat())})"
    raise TypeError(f"no literal for {value!r}")  # pragma: no cover


def float_literal(value: float) -> str:
    """A float as Python source; NaN and the infinities (defaults of allow_nan fields) as
    one of three fixed expressions, since no literal spells them."""
    if math.isnan(value):
        return 'float("nan")'
    if math.isinf(value):
        return 'float("inf")' if value > 0 else 'float("-inf")'
    return repr(value)


def json_literal(value: Any) -> str:
    """A Python expression for a JSON value (a personal field's placeholder)."""
    if value is None:
        return "None"
    if isinstance(value, list):
        return "[" + ", ".join(json_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{string(k)}: {json_literal(v)}" for k, v in value.items()) + "}"
    if isinstance(value, str):
        return string(value)
    if isinstance(value, bool | int):
        return repr(value)
    if isinstance(value, float):
        return float_literal(value)
    raise TypeError(f"not a JSON value: {value!r}")  # pragma: no cover


def personal_annotation(annotation: str, erased: Any, imports: Imports) -> str:
    """`annotation` marked as personal data. A field's own annotation never ends in
    `Annotated[...]` (constraints go in `Field(...)`, or inside `X | None`), so the mark
    is the one metadata of its own `Annotated`."""
    imports.add("typing", "Annotated")
    imports.add("esgen.runtime", "Personal")
    return f"Annotated[{annotation}, Personal(erased={json_literal(erased)})]"


def enum_member_names(values: tuple[str, ...]) -> list[str]:
    """Member names for an enum's values (the validator made sure they are distinct)."""
    return [enum_member_name(value) for value in values]
