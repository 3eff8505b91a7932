"""Load YAML into plain Python data, remembering where every key and value came from.

PyYAML's node graph carries line and column marks; we walk it ourselves instead of using
its constructor, which lets us
- record the location of every value and key by its path (`("aggregates", "Account")`),
- reject duplicate keys, which PyYAML would silently collapse,
- resolve plain scalars by YAML 1.2's core schema, so `yes`, `no`, `on` and `off` stay
  strings (an enum of `[yes, no]` must not turn into booleans), and
- read every number that has a fractional part as an exact Decimal, so a default of
  `0.1` on a decimal field is 0.1 and not 0.1000000000000000055, and
- refuse numbers too long or too large to be worth reading (`1e99999999`) before they
  are converted, so no later int(), comparison or printing of one can take unbounded
  time or exceed Python's 4,300-digit limit on int-to-text conversion.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from esgen.schema._diagnostics import Diagnostic, Location
from esgen.schema._yaml_errors import explain_yaml_error

__all__ = [
    "MAX_DIGITS",
    "MAX_EXPONENT",
    "KeyPath",
    "LoadedYaml",
    "load_yaml",
    "number_key",
    "reads_as_text",
    "shorten",
    "yaml_documents",
]

KeyPath = tuple[Any, ...]

_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_PLAIN_TAG = "tag:esgen,2026:plain"


class _Loader(_BaseLoader):  # type: ignore[misc]
    """Marks every plain scalar for our own YAML 1.2 resolution.

    PyYAML resolves by YAML 1.1 and tags what it does not recognise as a string, which
    would leave `1e5` a string and make it indistinguishable from `!!str 1e5`.
    """

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is yaml.ScalarNode and implicit[0] and value != "<<":
            return _PLAIN_TAG
        return super().resolve(kind, value, implicit)


_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL_TRUE = re.compile(r"^(?:true|True|TRUE)$")
_BOOL_FALSE = re.compile(r"^(?:false|False|FALSE)$")
_INT = re.compile(r"^[-+]?[0-9]+$")
_INT_OCT = re.compile(r"^0o[0-7]+$")
_INT_HEX = re.compile(r"^0x[0-9a-fA-F]+$")
_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE]([-+]?[0-9]+))?$")
_INF_NAN = re.compile(r"^(?:[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$")

# The largest numbers esgen reads: far beyond any real bound, default or version number,
# and small enough that every number read prints within Python's int-to-text limit.
MAX_DIGITS = 1000
MAX_EXPONENT = 1000

_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass
class LoadedYaml:
    """One YAML document as plain data plus the location of each value and each key."""

    path: Path
    data: Any
    values: dict[KeyPath, Location] = field(default_factory=dict)
    keys: dict[KeyPath, Location] = field(default_factory=dict)
    # Scalars written in quotes: their text starts one column after their location.
    quoted: set[KeyPath] = field(default_factory=set)

    def at(self, path: KeyPath) -> Location:
        """The location of the value at `path`, or of its nearest enclosing value."""
        for end in range(len(path), -1, -1):
            loc = self.values.get(path[:end])
            if loc is not None:
                return loc
        return Location(self.path, 1, 1)

    def key_at(self, path: KeyPath) -> Location:
        """The location of the key that introduces `path` (falls back to its value)."""
        return self.keys.get(path) or self.at(path)


def load_yaml(path: Path, text: str) -> tuple[LoadedYaml | None, list[Diagnostic]]:
    """Parse one file; on failure return the diagnostics instead of raising."""
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        problem = explain_yaml_error(exc, text)
        where = Location(path, problem.line, problem.col)
        return None, [Diagnostic(where, "E100", f"invalid YAML: {problem.message}")]
    except RecursionError:  # a parser written in Python recurses once per level
        where = Location(path, 1, 1)
        return None, [Diagnostic(where, "E100", f"invalid YAML: {_TOO_DEEP}")]
    loaded = LoadedYaml(path, None)
    diagnostics: list[Diagnostic] = []
    if root is not None and (shape := _depth_problem(root) or _alias_problem(root)):
        node, msg = shape
        return None, [Diagnostic(_loc(path, node), "E100", msg)]
    if root is not None:
        loaded.data = _convert(root, (), loaded, diagnostics)
    return loaded, diagnostics


# Every later step (alias sizes, conversion, validation) walks values recursively: a schema
# nests a dozen levels, so this bound costs nobody and keeps Python's stack out of reach.
_MAX_DEPTH = 100
_TOO_DEEP = f"values nest more than {_MAX_DEPTH} deep; a schema needs far fewer levels"


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _depth_problem(root: yaml.Node) -> tuple[yaml.Node, str] | None:
    """The first node whose values nest deeper than _MAX_DEPTH, counting through aliases.
    Iterative, so the check itself cannot exhaust the stack; each node is measured once."""
    depths: dict[int, int] = {}
    on_path: set[int] = set()  # a cycle through an alias is _alias_problem's to report
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, measured = stack.pop()
        key = id(node)
        if measured:
            on_path.discard(key)
            depth = 1 + max((depths.get(id(c), 0) for c in _children(node)), default=0)
            if depth > _MAX_DEPTH:
                return node, f"invalid YAML: {_TOO_DEEP}"
            depths[key] = depth
        elif key not in depths and key not in on_path:
            on_path.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in _children(node))
    return None


# Aliases let a short file stand for a huge or endless document ("billion laughs"); a
# schema read from a pull request in CI must not be able to hang the job.
_MAX_EXPANDED = 1_000_000
_MAX_ALIAS_GROWTH = 10


def _alias_problem(root: yaml.Node) -> tuple[yaml.Node, str] | None:
    """A node whose aliases refer back to itself, or expand the document too far."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    cycle: list[yaml.Node] = []

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            cycle.append(node)
            return 0
        open_nodes.add(key)
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        total = 1
        for child in children:
            total = min(total + size(child), _MAX_EXPANDED + 1)
        open_nodes.discard(key)
        sizes[key] = total
        return total

    expanded = size(root)
    if cycle:
        return cycle[0], "invalid YAML: an alias refers to the node that contains it"
    if expanded > _MAX_EXPANDED or (
        expanded > 100_000 and expanded > _MAX_ALIAS_GROWTH * len(sizes)
    ):
        return root, (
            f"invalid YAML: its aliases expand {len(sizes)} values into more than "
            f"{min(expanded, _MAX_EXPANDED):,}; write the values out instead"
        )
    return None


def _loc(path: Path, node: yaml.Node) -> Location:
    return Location(path, node.start_mark.line + 1, node.start_mark.column + 1)


def _convert(node: yaml.Node, key_path: KeyPath, out: LoadedYaml, diags: list[Diagnostic]) -> Any:
    out.values[key_path] = _loc(out.path, node)
    if isinstance(node, yaml.ScalarNode):
        if node.style in ("'", '"'):
            out.quoted.add(key_path)
        try:
            return _scalar(node)
        except UnreadableNumber as exc:
            diags.append(Diagnostic(_loc(out.path, node), "E106", str(exc)))
            return None  # reported; read as absent, so no second error follows from it
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, (*key_path, i), out, diags) for i, item in enumerate(node.value)]
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        merged: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merged.update(_merge_sources(value_node, key_path, out, diags))
                continue
            key = _convert_key(key_node, out, diags)
            child = (*key_path, key)
            # `1` and `"1"` are one key once read as a version number or a JSON key.
            twin = next((k for k in (key, _twin(key)) if k is not None and k in result), None)
            if twin is not None:
                first = out.keys[(*key_path, twin)]
                msg = f"duplicate key {key!r} (first defined at line {first.line})"
                diags.append(Diagnostic(_loc(out.path, key_node), "E101", msg))
                continue
            out.keys[child] = _loc(out.path, key_node)
            result[key] = _convert(value_node, child, out, diags)
        # Explicit keys win over merged ones, as YAML's merge key specifies.
        return {**{k: v for k, v in merged.items() if k not in result}, **result}
    raise TypeError(f"unexpected YAML node {node!r}")  # pragma: no cover


def _merge_sources(
    node: yaml.Node, key_path: KeyPath, out: LoadedYaml, diags: list[Diagnostic]
) -> dict[Any, Any]:
    sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
    merged: dict[Any, Any] = {}
    for source in sources:
        if not isinstance(source, yaml.MappingNode):
            msg = "a merge key (<<) needs a mapping or a list of mappings"
            diags.append(Diagnostic(_loc(out.path, source), "E103", msg))
            continue
        # Locations inside a merged mapping point at the anchor's definition, which is
        # where a user has to go to fix anything found there.
        value = _convert(source, key_path, out, diags)
        for key, item in value.items():
            merged.setdefault(key, item)
    out.values[key_path] = _loc(out.path, node)
    return merged


def _twin(key: Any) -> Any:
    """The other spelling of a number key: `"1"` for `1` and `1` for `"1"`."""
    if isinstance(key, int) and not isinstance(key, bool):
        return str(key)
    return number_key(key)


def number_key(key: Any) -> int | None:
    """The whole number a key spells: `1` or `"1"`; not `"01"`, `"1.0"` or `true`."""
    if isinstance(key, int) and not isinstance(key, bool):
        return key
    if (
        isinstance(key, str)
        and len(key) <= MAX_DIGITS + 1  # a longer number was refused when read
        and _INT.match(key)
        and str(int(key)) == key
    ):
        return int(key)
    return None


def _convert_key(node: yaml.Node, out: LoadedYaml, diags: list[Diagnostic]) -> Any:
    if isinstance(node, yaml.ScalarNode):
        try:
            value = _scalar(node)
        except UnreadableNumber as exc:
            diags.append(Diagnostic(_loc(out.path, node), "E106", str(exc)))
            return node.value
        return value if isinstance(value, str | int | bool) or value is None else str(value)
    # Complex keys (a mapping used as a key) have no meaning in the language.
    return repr(node.value)


def _scalar(node: yaml.ScalarNode) -> Any:
    text: str = node.value
    if node.style:
        return text  # quoted or block: a string, whatever its tag (`! "12"` included)
    if node.tag != _PLAIN_TAG:
        if node.tag == _STR_TAG:
            return text
        if node.tag.startswith("tag:yaml.org,2002:"):
            return _explicit(node.tag, text)
    return _plain(text)


def reads_as_text(text: str) -> bool:
    """Whether `text`, written unquoted, reads back as this text (not `1e3`, `null`, ...):
    for writers of YAML that esgen reads, who must quote it otherwise."""
    try:
        return isinstance(_plain(text), str)  # only text itself resolves to a str
    except UnreadableNumber:
        return False


def _plain(text: str) -> Any:
    """A plain scalar, resolved by YAML 1.2's core schema."""
    if _NULL.match(text):
        return None
    if _BOOL_TRUE.match(text):
        return True
    if _BOOL_FALSE.match(text):
        return False
    if _INT.match(text):
        _digits(text, text.lstrip("+-"))  # the length is checked without the sign, kept
        return int(text)
    if _INT_OCT.match(text):
        return int(_digits(text, text[2:]), 8)
    if _INT_HEX.match(text):
        return int(_digits(text, text[2:]), 16)
    if match := _FLOAT.match(text):
        return _decimal(text, match.group(1))
    if _INF_NAN.match(text):
        sign = "-" if text.startswith("-") else ""
        return Decimal(sign + ("NaN" if text.lower().endswith("nan") else "Infinity"))
    return text


class UnreadableNumber(ValueError):
    """A number too long or too large to read; the message says which and the limit."""


def shorten(text: str) -> str:
    """Schema text as a message quotes it: whole when short, its ends when long."""
    return text if len(text) <= 30 else f"{text[:12]}...{text[-12:]} ({len(text)} characters)"


def _digits(text: str, digits: str) -> str:
    if len(digits.lstrip("0")) > MAX_DIGITS:
        raise UnreadableNumber(_too_long(text))
    return digits


def _decimal(text: str, exponent: str | None) -> Decimal:
    out_of_range = UnreadableNumber(
        f"the number {shorten(text)} is out of range: esgen reads numbers from "
        f"1e-{MAX_EXPONENT} to 1e{MAX_EXPONENT} in size"
    )
    # The exponent is checked as text first: Decimal() refuses one beyond its own range
    # with a bare InvalidOperation.
    if exponent is not None and len(exponent.lstrip("+-").lstrip("0")) > len(str(MAX_EXPONENT)):
        raise out_of_range
    number = Decimal(text)  # linear in the text; what follows is where size costs
    if len(number.as_tuple().digits) > MAX_DIGITS:
        raise UnreadableNumber(_too_long(text))
    if abs(number.adjusted()) > MAX_EXPONENT:
        raise out_of_range
    return number


def _too_long(text: str) -> str:
    return (
        f"the number {shorten(text)} has more than {MAX_DIGITS} digits, "
        "more than esgen reads in a schema"
    )


def _explicit(tag: str, text: str) -> Any:
    """Values written with an explicit tag such as `!!int 0x1F`: the plain reading, when it
    is of the tagged kind; the text otherwise."""
    kind = tag.rsplit(":", 1)[-1]
    value = _plain(text)
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind == "float" and isinstance(value, int | Decimal) and not isinstance(value, bool):
        return Decimal(value)
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind == "null":
        return None
    return text


def yaml_documents(text: str) -> Iterator[tuple[int, str]]:
    """(first line, text) of each document of a YAML stream; a line of `---` starts the
    next one. Documents are then loaded apart, each padded to its first line, so that
    errors keep the file's own line numbers (esgen.lock is such a stream)."""
    start, lines = 0, text.splitlines(keepends=True)
    for number, line in enumerate(lines):
        if line.rstrip("\r\n") == "---":
            yield start, "".join(lines[start:number])
            start = number + 1
    yield start, "".join(lines[start:])
