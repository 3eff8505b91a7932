"""Hypothesis strategies for whole schema folders: mostly valid-shaped contexts, then mutated.

A drawn case is a few YAML files as text. Documents are built as a small tree (`Map`,
`Seq`, scalars, `Raw` YAML text) rather than Python dicts, so that mutations can express
what a dict cannot: duplicate keys, anchors and aliases, numbers no Python float holds,
and text-level damage (tabs, a BOM, a cut-off file) applied after the tree is written out.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

__all__ = ["Map", "Raw", "SchemaCase", "Seq", "emit", "schema_cases"]


@dataclass
class Raw:
    """YAML text written as it is: numbers and tags a Python value cannot say."""

    text: str


@dataclass
class Map:
    items: list[tuple[Any, Any]] = field(default_factory=list)
    flow: bool = False
    anchor: str | None = None


@dataclass
class Seq:
    items: list[Any] = field(default_factory=list)
    flow: bool = False
    anchor: str | None = None


@dataclass(frozen=True)
class SchemaCase:
    """One schema folder: file name -> bytes, and the mutations that made it (for reports)."""

    files: dict[str, bytes]
    mutations: tuple[str, ...]


# ---------------------------------------------------------------------------- writing YAML

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_ ./-]*")
_NOT_PLAIN = re.compile(
    r"^(?:~|null|Null|NULL|true|True|TRUE|false|False|FALSE|y|Y|n|N|yes|no|on|off|"
    r"[-+]?(?:\.[0-9]+|[0-9][0-9_]*(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|\.(?:nan|NaN|NAN|inf|Inf|INF))$"
)


def _quoted(text: str) -> str:
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif code < 0x20 or 0x7F <= code <= 0x9F or ch in "\u2028\u2029\ufeff":
            out.append(f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}")
        elif 0xD800 <= code <= 0xDFFF or code in (0xFFFE, 0xFFFF):
            out.append(f"\\u{code:04x}")  # not printable in YAML; the escape still loads
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def scalar(value: Any) -> str:
    if isinstance(value, Raw):
        return value.text
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return ".nan"
        if value in (float("inf"), float("-inf")):
            return ".inf" if value > 0 else "-.inf"
        return repr(value)
    if isinstance(value, Decimal):
        return str(value)
    text = str(value)
    if _PLAIN.fullmatch(text) and not _NOT_PLAIN.match(text) and not text.endswith(" "):
        return text
    return _quoted(text)


def _anchor(node: Map | Seq) -> str:
    return f"&{node.anchor} " if node.anchor else ""


def _inline(node: Any) -> str:
    if isinstance(node, Map):
        inner = ", ".join(f"{_inline(k)}: {_inline(v)}" for k, v in node.items)
        return f"{_anchor(node)}{{{inner}}}"
    if isinstance(node, Seq):
        return f"{_anchor(node)}[{', '.join(_inline(v) for v in node.items)}]"
    return scalar(node)


def _block(node: Any) -> bool:
    return isinstance(node, (Map, Seq)) and not node.flow and bool(node.items)


def _emit(node: Any, indent: int, lines: list[str]) -> None:
    pad = " " * indent
    if isinstance(node, Map):
        for key, value in node.items:
            head = f"{pad}{_inline(key)}:"
            if _block(value):
                lines.append(head + (f" &{value.anchor}" if value.anchor else ""))
                _emit(value, indent + 2, lines)
            else:
                lines.append(f"{head} {_inline(value)}")
    else:
        assert isinstance(node, Seq)
        for item in node.items:
            if _block(item):
                lines.append(f"{pad}-" + (f" &{item.anchor}" if item.anchor else ""))
                _emit(item, indent + 2, lines)
            else:
                lines.append(f"{pad}- {_inline(item)}")


def emit(node: Any) -> str:
    """A document as block-style YAML (flow style where a node asks for it)."""
    if not _block(node):
        return _inline(node) + "\n"
    lines: list[str] = []
    if node.anchor:
        lines.append(f"--- &{node.anchor}")
    _emit(node, 0, lines)
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------ valid-shaped parts

CLASS_POOL = ["Order", "Item", "Money", "Account", "Line", "Status", "Placed", "Shipped"]
FIELD_POOL = ["amount", "name", "count", "ref", "note", "total", "order_id", "when", "tags"]
SCALAR_TYPES = ["str", "int", "float", "bool", "decimal", "uuid", "datetime", "date", "bytes"]

texts = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30)
# Names a user may well pick that collide with something generated code says or imports.
EDGE_CLASSES = ["Event", "Command", "State", "Registry", "Decimal", "UUID", "List", "Optional",
                "Aggregate", "Projection", "Saga", "Field", "Literal", "Any", "Self", "Ünit", "XMLHttp"]  # fmt: skip
EDGE_FIELDS = ["id", "type", "event_type", "event_version", "model_dump", "self", "cls", "state",
               "version", "größe", "x_", "_x", "a__b", "list", "str", "aggregate_id", "metadata",
               "stream_id", "when_", "correlation_id", "causation_id", "dataclass"]  # fmt: skip
# Edge names in about one draw in ten: most are refused (E203), and a refused name ends
# the run before code generation, which is where the other names are tested.
_usual_classes = st.one_of(
    st.sampled_from(CLASS_POOL),
    st.from_regex(r"[A-Z][a-z]{1,7}(?:[A-Z][a-z]{1,5})?", fullmatch=True),
)
_usual_fields = st.one_of(
    st.sampled_from(FIELD_POOL),
    st.from_regex(r"[a-z][a-z0-9]{0,6}(?:_[a-z0-9]{1,5})?", fullmatch=True),
)
class_names = st.integers(0, 9).flatmap(
    lambda i: st.sampled_from(EDGE_CLASSES) if i == 9 else _usual_classes
)
snake_names = st.integers(0, 9).flatmap(
    lambda i: st.sampled_from(EDGE_FIELDS) if i == 9 else _usual_fields
)
enum_values = st.lists(
    st.one_of(
        snake_names, texts, st.sampled_from(["yes", "no", "None", "class", "1", "", "A", "a"])
    ),
    min_size=1,
    max_size=5,
    unique=True,
)


def _default_for(draw: st.DrawFn, type_name: str) -> Any:
    """A default that is usually valid for the type, sometimes not."""
    by_type: dict[str, st.SearchStrategy[Any]] = {
        "str": texts,
        "int": st.integers(-(10**6), 10**6),
        "float": st.floats(allow_nan=False, allow_infinity=False, width=32),
        "bool": st.booleans(),
        "decimal": st.decimals(-1000, 1000, places=2, allow_nan=False),
        "uuid": st.uuids().map(str),
        "datetime": st.datetimes().map(lambda d: d.isoformat() + "+00:00"),
        "date": st.dates().map(str),
        "bytes": st.text("abc", max_size=5),
    }
    if type_name.startswith("list["):
        return Seq(flow=True)
    if type_name.startswith("dict["):
        return Map(flow=True)
    if type_name in by_type and draw(st.integers(0, 9)) != 9:
        return draw(by_type[type_name])
    return draw(st.one_of(texts, st.integers(), st.booleans(), st.none()))


@st.composite
def type_exprs(draw: st.DrawFn, local: list[str]) -> str:
    base = (
        draw(st.sampled_from(SCALAR_TYPES + local))
        if local
        else draw(st.sampled_from(SCALAR_TYPES))
    )
    shape = draw(st.integers(0, 7))
    if shape == 5:
        return f"list[{base}]"
    if shape == 6:
        return f"dict[str, {base}]"
    if shape == 7:
        return f"{base} | None"
    return base


@st.composite
def field_specs(draw: st.DrawFn, local: list[str]) -> Any:
    type_name = draw(type_exprs(local))
    if draw(st.integers(0, 2)) == 0:
        return type_name
    spec = Map([("type", type_name)], flow=draw(st.booleans()))
    if type_name in ("int", "float", "decimal"):
        if draw(st.booleans()):
            spec.items.append(("min", draw(st.integers(-100, 0))))
        if draw(st.booleans()):
            spec.items.append(("max", draw(st.integers(1, 10**9))))
        if type_name == "decimal" and draw(st.booleans()):
            spec.items += [("max_digits", draw(st.integers(1, 30))), ("decimal_places", 2)]
    if type_name in ("str", "bytes") or type_name.startswith("list["):
        if draw(st.booleans()):
            spec.items.append(("min_length", draw(st.integers(0, 3))))
        if draw(st.booleans()):
            spec.items.append(("max_length", draw(st.integers(3, 50))))
    if type_name == "str" and draw(st.booleans()):
        spec.items.append(
            ("pattern", draw(st.sampled_from(["^[A-Z]{3}$", "^[a-z]+$", ".*", "^\\d+$"])))
        )
    if (
        len(spec.items) == 1
        and type_name.split("[")[0] in (*SCALAR_TYPES, "list", "dict")
        and draw(st.booleans())
    ):
        # Constraints and defaults drawn apart would rarely agree: defaults go to free fields.
        spec.items.append(("default", _default_for(draw, type_name)))
    if draw(st.integers(0, 4)) == 0:
        spec.items.append(("optional", True))
    if draw(st.integers(0, 4)) == 0:
        spec.items.append(("description", draw(texts)))
    return spec


@st.composite
def field_maps(draw: st.DrawFn, local: list[str], max_size: int = 4) -> Map:
    names = draw(st.lists(snake_names, max_size=max_size, unique=True))
    return Map([(n, draw(field_specs(local))) for n in names], flow=draw(st.integers(0, 3)) == 0)


def _current(spec: Any) -> Any:
    if isinstance(spec, Map) and any(k == "renamed_from" for k, _ in spec.items):
        return Map([(k, v) for k, v in spec.items if k != "renamed_from"], flow=spec.flow)
    return spec


@st.composite
def contexts(draw: st.DrawFn, context: str) -> list[Map]:
    """One context, as one or two documents."""
    names = draw(st.lists(class_names, min_size=2, max_size=12, unique=True))
    n_types = draw(st.integers(0, min(3, len(names) - 2)))
    type_names, rest = names[:n_types], names[n_types:]
    types = Map()
    for name in type_names:
        if draw(st.booleans()):
            types.items.append(
                (
                    name,
                    Map(
                        [
                            (
                                "enum",
                                Seq(
                                    draw(enum_values),
                                    flow=True,
                                ),
                            )
                        ]
                    ),
                )
            )
        else:
            types.items.append((name, Map([("fields", draw(field_maps(type_names)))])))
    aggregates = Map()
    all_events: list[str] = []
    all_commands: list[str] = []
    agg_count = draw(st.integers(1, 2))
    for a in range(agg_count):
        if not rest:
            break
        agg_name = rest.pop(0)
        events = Map()
        my_events: list[str] = []
        for _ in range(draw(st.integers(1, 3))):
            if not rest:
                break
            ev = rest.pop(0)
            my_events.append(ev)
            versions = Map()
            fields = draw(field_maps(type_names))
            if "ref" not in {k for k, _ in fields.items}:
                fields.items.append(("ref", "str"))  # what sagas correlate on
            versions.items.append((1, Map([("fields", fields)])))
            for v in range(2, draw(st.integers(1, 3)) + 1):
                # The previous version's fields, under their current names only.
                fields = Map([(k, _current(spec)) for k, spec in fields.items])
                step = draw(st.integers(0, 4))
                version = Map()
                if step == 0:
                    fields.items.append(
                        (
                            f"{draw(snake_names)}{v}",
                            Map([("type", "int"), ("default", draw(st.integers(0, 9)))]),
                        )
                    )
                elif step == 1 and fields.items[0][0] != "ref":
                    old, spec = fields.items.pop(0)
                    renamed = (
                        Map([("type", spec)]) if isinstance(spec, str) else Map(list(spec.items))
                    )
                    renamed.items.append(("renamed_from", old))
                    fields.items.append((f"{old}_v{v}", renamed))
                elif step == 2:
                    version.items.append(("upcast", "manual"))
                    fields.items.append((f"extra{v}", "str"))
                elif len(fields.items) > 1 and fields.items[0][0] != "ref":
                    # Dropped on purpose, with a field that could have been its rename.
                    gone, spec = fields.items.pop(0)
                    version.items.append(("dropped", Seq([gone], flow=True)))
                    kind = spec if isinstance(spec, str) else spec.items[0][1]
                    fields.items.append((f"{gone}_x{v}", Map([("type", kind), ("optional", True)])))
                version.items.insert(0, ("fields", fields))
                versions.items.append((v, version))
            event = Map([("versions", versions)])
            if draw(st.integers(0, 5)) == 0:
                event.items.insert(0, ("renamed_from", draw(class_names)))
            if draw(st.integers(0, 5)) == 0:
                event.items.insert(
                    0,
                    (
                        "compatibility",
                        draw(st.sampled_from(["backward", "forward", "full", "none"])),
                    ),
                )
            events.items.append((ev, event))
        commands = Map()
        for _ in range(draw(st.integers(0, 2))):
            if not rest or not my_events:
                break
            cmd = rest.pop(0)
            all_commands.append(cmd)
            body = Map(
                [
                    ("fields", draw(field_maps(type_names, 2))),
                    (
                        "emits",
                        Seq(
                            draw(
                                st.lists(
                                    st.sampled_from(my_events), min_size=1, max_size=2, unique=True
                                )
                            ),
                            flow=True,
                        ),
                    ),
                ]
            )
            if draw(st.booleans()):
                body.items.append(("creates", True))
            commands.items.append((cmd, body))
        agg = Map()
        if draw(st.booleans()):
            agg.items.append(
                (
                    "id",
                    Map(
                        [
                            ("name", f"id_{a}"),
                            ("type", draw(st.sampled_from(["uuid", "str", "int"]))),
                        ],
                        flow=True,
                    ),
                )
            )
        if draw(st.integers(0, 3)) == 0:
            agg.items.append(("snapshot_every", draw(st.integers(1, 100))))
        if draw(st.booleans()):
            agg.items.append(("state", draw(field_maps(type_names, 3))))
        agg.items += [("commands", commands), ("events", events)]
        aggregates.items.append((agg_name, agg))
        all_events += my_events
    doc = Map([("context", context)])
    if draw(st.booleans()):
        doc.items.append(("description", draw(texts)))
    if draw(st.integers(0, 3)) == 0:
        doc.items.append(
            ("compatibility", draw(st.sampled_from(["backward", "forward", "full", "none"])))
        )
    if types.items:
        doc.items.append(("types", types))
    doc.items.append(("aggregates", aggregates))
    if all_events and draw(st.integers(0, 2)) == 0:
        consumed = draw(st.lists(st.sampled_from(all_events), min_size=1, max_size=3, unique=True))
        view = Map(
            [
                ("consumes", Seq(consumed, flow=True)),
                ("key", "ref"),
                ("fields", Map([("ref", "str"), ("total", "int")])),
            ]
        )
        if draw(st.booleans()):
            # Fields of any type (JSON-stored ones among them) and indexes on them, on
            # the key, on no field, or twice.
            extra = draw(field_maps(type_names, 3))
            view.items[2][1].items.extend(extra.items)
            names = st.sampled_from(["ref", "total", "nope", *(n for n, _ in extra.items)])
            index = st.one_of(names, st.lists(names, max_size=3).map(lambda n: Seq(n, True)))
            view.items.append(("indexes", Seq(draw(st.lists(index, min_size=1, max_size=3)))))
        doc.items.append(("projections", Map([("View" + draw(class_names), view)])))
    if all_events and draw(st.integers(0, 2)) == 0:
        saga = Map([("starts_with", draw(st.sampled_from(all_events))), ("correlation", "ref")])
        saga.items.append(
            (
                "handles",
                Seq(
                    draw(st.lists(st.sampled_from(all_events), max_size=2, unique=True)), flow=True
                ),
            )
        )
        if all_commands:
            sends = draw(
                st.lists(st.sampled_from(all_commands), min_size=1, max_size=2, unique=True)
            )
            saga.items.append(("sends", Seq(sends, flow=True)))
            if len(sends) == 2 and draw(st.booleans()):
                saga.items.append(("compensations", Map([(sends[0], sends[1])])))
        if draw(st.booleans()):
            saga.items.append(
                (
                    "timeout",
                    Map(
                        [
                            ("after", draw(st.sampled_from(["30s", "15m", "2h", "1d"]))),
                            ("then", "compensate"),
                        ],
                        flow=True,
                    ),
                )
            )
        doc.items.append(("sagas", Map([("Flow" + draw(class_names), saga)])))
    if draw(st.integers(0, 3)) == 0 and len(doc.items) > 2:
        # Split the context over two files: the second takes the later sections.
        cut = draw(st.integers(2, len(doc.items) - 1))
        return [Map(doc.items[:cut]), Map([("context", context), *doc.items[cut:]])]
    return [doc]


# ------------------------------------------------------------------------------- mutations

# Numbers no float or int conversion should ever meet unbounded (see issue 14, item 3 and 6).
HUGE_NUMBERS = [
    "1e99999999", "-1e99999999", "1e4300", "1e23", "9" * 5000, "-" + "9" * 4301, "1e-99999999",
    "-0", "-0.0", ".nan", ".NaN", ".inf", "-.inf", "+.inf", "0x7fffffffffffffffffff", "0o777",
    "1_000", "0.1e1", "2e308", "5e-324", "123456789012345678901234567890",
]  # fmt: skip
ODD_STRINGS = [
    "", " ", "class", "None", "True", "def", "async", "match", "type", "print", "Event",
    "Command", "model_config", "model_fields", "registry", "BaseModel", "Field", "Annotated",
    "__init__", "_private", "x" * 300, "Ünïcödé", "名前", "a b", "a-b", "1abc", "\t", "a\x00b",
    "a\x1bb", "\ufeffbom", "\u202eevil", "'\"\\", "{{ x }}", "${x}", "%s", "\r\n", "a\u2028b",
    "__import__('os')", "); import os; (", "'''", '"""', "\\", "list[", "dict[int, str]",
    "str | int", "list[list[list[list[str]]]]", "Optional[str]", "str | None | None",
]  # fmt: skip
ODD_STRINGS += [k for k in keyword.kwlist[:8]]


@st.composite
def odd_values(draw: st.DrawFn) -> Any:
    kind = draw(st.integers(0, 9))
    if kind == 0:
        return Raw(draw(st.sampled_from(HUGE_NUMBERS)))
    if kind == 1:
        return draw(st.sampled_from(ODD_STRINGS))
    if kind == 2:
        return draw(
            st.one_of(
                st.integers(),
                st.booleans(),
                st.none(),
                st.decimals(allow_nan=False, allow_infinity=False),
            )
        )
    if kind == 3:
        return Seq(draw(st.lists(st.sampled_from(ODD_STRINGS[:20]), max_size=3)), flow=True)
    if kind == 4:
        return Map([("x", draw(st.sampled_from(ODD_STRINGS)))], flow=True)
    if kind == 5:
        depth = draw(st.sampled_from([20, 100, 1000, 5000]))
        return (
            Raw("[" * depth + "]" * depth)
            if draw(st.booleans())
            else Raw("{a: " * depth + "1" + "}" * depth)
        )
    if kind == 6:
        return draw(texts)
    if kind == 7:
        return Raw(
            draw(
                st.sampled_from(
                    [
                        "!!binary aGVsbG8=",
                        "!!int 3",
                        "!!str 3",
                        "!!python/object:os.system ls",
                        "!!set {a, b}",
                        "!!timestamp 2001-12-14",
                        "<<",
                        "&a 1",
                        "*missing",
                        "!custom x",
                        "?",
                        "|\n  block text",
                        ">-\n  folded",
                    ]
                )
            )
        )
    if kind == 8:
        return draw(st.sampled_from(CLASS_POOL + FIELD_POOL + SCALAR_TYPES))
    return Raw(
        draw(
            st.from_regex(r"[-+]?[0-9]{1,40}(\.[0-9]{0,40})?([eE][-+]?[0-9]{1,9})?", fullmatch=True)
        )
    )


def _slots(node: Any, out: list[tuple[Map | Seq, int]]) -> list[tuple[Map | Seq, int]]:
    """Every (container, index) position in a tree, in document order."""
    if isinstance(node, Map):
        for i, (_, v) in enumerate(node.items):
            out.append((node, i))
            _slots(v, out)
    elif isinstance(node, Seq):
        for i, v in enumerate(node.items):
            out.append((node, i))
            _slots(v, out)
    return out


ALIAS_BOMB = (
    "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    + "".join(f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True))
)  # fmt: skip
ALIAS_LOOP = "&loop [*loop]"


@st.composite
def mutate_tree(draw: st.DrawFn, docs: list[Map]) -> str:
    doc = docs[draw(st.integers(0, len(docs) - 1))]
    slots = _slots(doc, [])
    if not slots:
        return "none"
    container, index = slots[draw(st.integers(0, len(slots) - 1))]
    kind = draw(
        st.sampled_from(["value", "key", "delete", "extra", "duplicate", "alias", "anchor", "flow"])
    )
    if isinstance(container, Seq):
        if kind in ("key", "extra", "duplicate"):
            container.items.insert(index, container.items[index])
            return "seq-duplicate"
        if kind == "delete":
            del container.items[index]
            return "seq-delete"
        container.items[index] = draw(odd_values())
        return "seq-value"
    key, value = container.items[index]
    if kind == "value":
        container.items[index] = (key, draw(odd_values()))
    elif kind == "key":
        container.items[index] = (draw(odd_values()), value)
    elif kind == "delete":
        del container.items[index]
    elif kind == "extra":
        container.items.append(
            (draw(st.sampled_from(ODD_STRINGS + FIELD_POOL)), draw(odd_values()))
        )
    elif kind == "duplicate":
        container.items.append((key, draw(st.one_of(st.just(value), odd_values()))))
    elif kind == "alias":
        bomb = draw(st.sampled_from([ALIAS_LOOP, "*undefined", "[*a, *a]"]))
        container.items[index] = (key, Raw(bomb))
    elif kind == "anchor" and isinstance(value, (Map, Seq)) and value.anchor is None:
        # The same node again, through an alias, somewhere later in the document.
        value.anchor = "anc"
        container.items.append(
            (draw(st.sampled_from([*FIELD_POOL, "description", "state"])), Raw("*anc"))
        )
    elif isinstance(value, (Map, Seq)):
        value.flow = not value.flow
    return kind


@st.composite
def mutate_text(draw: st.DrawFn, text: str) -> tuple[str, str]:
    kind = draw(
        st.sampled_from(
            ["tab", "cut", "bom", "control", "crlf", "document", "bomb", "noise", "indent"]
        )
    )
    lines = text.split("\n")
    at = draw(st.integers(0, max(0, len(lines) - 1)))
    if kind == "tab":
        lines[at] = "\t" + lines[at]
    elif kind == "cut":
        return kind, text[: draw(st.integers(0, len(text)))]
    elif kind == "bom":
        return kind, "\ufeff" + text
    elif kind == "control":
        pos = draw(st.integers(0, len(text)))
        ch = draw(
            st.sampled_from(
                ["\x00", "\x01", "\x1b", "\x7f", "\x85", "\u2028", "\ufffe", "\x0c", "\r"]
            )
        )
        return kind, text[:pos] + ch + text[pos:]
    elif kind == "crlf":
        return kind, text.replace("\n", "\r\n")
    elif kind == "document":
        return kind, text + "---\n" + text
    elif kind == "bomb":
        return kind, ALIAS_BOMB + "description: *i\n" + text
    elif kind == "noise":
        lines.insert(
            at,
            draw(
                st.sampled_from(
                    [
                        ": :",
                        "- -",
                        "[",
                        "{",
                        "'",
                        "%YAML 1.1",
                        "%TAG ! tag:x,2000:",
                        "? complex",
                        "key: value: other",
                        "&a",
                        "*b",
                        "#",
                        "|",
                    ]
                )
            ),
        )
    else:
        lines[at] = " " + lines[at]
    return kind, "\n".join(lines)


# About three cases in seven stay as drawn: the valid path must generate, compile and import.
MUTATION_COUNTS = [0, 0, 0, 1, 1, 2, 3]


@st.composite
def schema_cases(draw: st.DrawFn) -> SchemaCase:
    """A schema folder of one or two contexts, damaged in 0 to 3 places."""
    docs: list[Map] = []
    for name in draw(
        st.lists(
            st.sampled_from(["shop", "billing", "library"]), min_size=1, max_size=2, unique=True
        )
    ):
        docs += draw(contexts(name))
    mutations: list[str] = []
    for _ in range(draw(st.sampled_from(MUTATION_COUNTS))):
        mutations.append(draw(mutate_tree(docs)))
    texts_out = [emit(d) for d in docs]
    if MUTATION_COUNTS != [0] and draw(st.integers(0, 3)) == 0:
        i = draw(st.integers(0, len(texts_out) - 1))
        kind, texts_out[i] = draw(mutate_text(texts_out[i]))
        mutations.append("text-" + kind)
    files = {f"s{i}.yaml": t.encode("utf-8", "surrogatepass") for i, t in enumerate(texts_out)}
    if MUTATION_COUNTS != [0] and draw(st.integers(0, 29)) == 0:
        files["s0.yaml"] = draw(
            st.sampled_from(
                [
                    b"\xff\xfe\x00",
                    b"\x00" * 10,
                    "\ufeffcontext: x\n".encode("utf-16"),
                    b"context: caf\xe9\n",
                ]
            )
        )
        mutations.append("bytes")
    return SchemaCase(files, tuple(mutations))
