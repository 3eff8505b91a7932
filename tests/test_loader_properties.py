"""Property tests: random names and values load faithfully and generate code that keeps them."""

from __future__ import annotations

import builtins
import importlib
import keyword
import sys
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from yaml12 import dump_yaml

from esgen.codegen import Formatter, build_ir, render
from esgen.schema import Severity, load_sources
from esgen.schema._names import enum_member_name

ROOT = Path("/virtual/schemas")
_RESERVED = set(dir(builtins)) | set(keyword.kwlist) | set(keyword.softkwlist)

field_names = st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True).filter(
    lambda n: (
        n not in _RESERVED
        and not n.startswith("model_")
        and n
        not in (
            "json",
            "dict",
            "copy",
            "schema",
            "construct",
            "validate",
            "fields",
            "event_type",
            "event_version",
            "command_type",
        )
    )
)
class_names = st.from_regex(r"[A-Z][a-z]{2,8}[A-Z][a-z]{1,6}", fullmatch=True)
texts = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)
# Values that would share a member name are refused (E305), so draw ones that do not.
enum_values = st.lists(
    texts.filter(bool), min_size=1, max_size=6, unique_by=(lambda v: v, enum_member_name)
)


@st.composite
def schemas(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(class_names, min_size=3, max_size=3, unique=True))
    enum_name, type_name, event_name = names
    fields = draw(st.lists(field_names, min_size=1, max_size=5, unique=True))
    values = draw(enum_values)
    return {
        "context": "fuzzed",
        "description": draw(texts),
        "types": {
            enum_name: {"enum": values, "description": draw(texts)},
            type_name: {"fields": {f: {"type": "str", "default": draw(texts)} for f in fields}},
        },
        "aggregates": {
            "Thing": {
                "events": {
                    event_name: {
                        "description": draw(texts),
                        "versions": {
                            1: {
                                "fields": {
                                    "choice": {"type": enum_name, "default": values[-1]},
                                    "value": {"type": type_name, "default": {}},
                                    "note": {"type": "str", "default": draw(texts)},
                                }
                            }
                        },
                    }
                }
            }
        },
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schemas())
def test_random_names_and_text_round_trip_through_generated_code(doc: dict[str, Any]) -> None:
    text = dump_yaml(doc, allow_unicode=False, sort_keys=False)
    schema, diagnostics = load_sources(ROOT, {ROOT / "random.yaml": text}, _no_files)
    assert not [d for d in diagnostics if d.severity is Severity.ERROR], diagnostics
    (enum_name, type_name), event = list(doc["types"]), doc["aggregates"]["Thing"]["events"]
    event_name = next(iter(event))
    files = render(build_ir(schema))
    modules = _load_package(files, Formatter("none"))
    enum_cls = getattr(modules["fuzzed.types"], enum_name)
    assert [member.value for member in enum_cls] == doc["types"][enum_name]["enum"]
    instance = getattr(modules["fuzzed.events.thing"], event_name)()
    fields = doc["aggregates"]["Thing"]["events"][event_name]["versions"][1]["fields"]
    assert instance.note == fields["note"]["default"]
    assert instance.choice.value == fields["choice"]["default"]
    value_defaults = {f: spec["default"] for f, spec in doc["types"][type_name]["fields"].items()}
    assert instance.value.model_dump() == value_defaults


@st.composite
def near_enum_values(draw: st.DrawFn) -> tuple[str, str]:
    """A value and a neighbour that differs from it in case or punctuation only, or more."""
    first = draw(texts.filter(bool))
    second = draw(
        st.sampled_from(
            [first.upper(), first.lower(), first.swapcase(), f"{first}!", f"-{first}", f"{first}x"]
        )
    )
    assume(second != first)
    return first, second


@settings(max_examples=100, deadline=None)
@given(near_enum_values())
def test_enum_values_are_refused_exactly_when_they_share_a_member_name(
    pair: tuple[str, str],
) -> None:
    doc = {"context": "fuzzed", "types": {"Choice": {"enum": list(pair)}}}
    text = dump_yaml(doc, allow_unicode=False, sort_keys=False)
    _schema, diagnostics = load_sources(ROOT, {ROOT / "random.yaml": text}, _no_files)
    refused = [d for d in diagnostics if d.code == "E305"]
    shared = enum_member_name(pair[0]) == enum_member_name(pair[1])
    assert len(refused) == (1 if shared else 0), diagnostics
    if shared:
        assert f"Choice.{enum_member_name(pair[0])}" in refused[0].message


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_never_crashes_the_loader(text: str) -> None:
    _schema, diagnostics = load_sources(ROOT, {ROOT / "noise.yaml": text}, _no_files)
    for d in diagnostics:
        assert d.location.file == ROOT / "noise.yaml"
        assert d.code.startswith("E")


@settings(max_examples=100, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | texts,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
        max_leaves=12,
    )
)
def test_arbitrary_documents_give_diagnostics_not_exceptions(value: Any) -> None:
    doc = {"context": "noise", "aggregates": {"Thing": value}}
    text = dump_yaml(doc, allow_unicode=False)
    load_sources(ROOT, {ROOT / "noise.yaml": text}, _no_files)


def _no_files(path: Path) -> str:
    raise FileNotFoundError(path)


def _load_package(files: dict[PurePosixPath, Any], formatter: Formatter) -> dict[str, Any]:
    """Write generated modules to a temporary folder and import them as a user would."""
    with tempfile.TemporaryDirectory() as tmp:
        for (root, path), f in files.items():
            if root != "out" or path.suffix != ".py":
                continue  # tests, and .gitattributes: nothing to import
            target = Path(tmp) / path
            target.parent.mkdir(parents=True, exist_ok=True)
            body = formatter.format({target: f.produce()})[target]
            target.write_text(f"{f.header}\n{body}" if f.header else body)
        sys.path.insert(0, tmp)
        try:
            importlib.invalidate_caches()
            names = ["fuzzed", "fuzzed.types", "fuzzed.events.thing"]
            return {name: importlib.import_module(name) for name in names}
        finally:
            sys.path.remove(tmp)
            for name in [n for n in sys.modules if n == "fuzzed" or n.startswith("fuzzed.")]:
                del sys.modules[name]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schemas())
def test_preformatted_output_is_what_black_would_write(doc: dict[str, Any]) -> None:
    """esgen skips black for template output whose lines fit; black must agree with that."""
    import black
    from black.mode import TargetVersion

    from esgen._formatter import _fits

    text = dump_yaml(doc, allow_unicode=False, sort_keys=False)
    schema, _ = load_sources(ROOT, {ROOT / "random.yaml": text}, _no_files)
    mode = black.Mode(target_versions={TargetVersion.PY311})
    for path, f in render(build_ir(schema)).items():
        if path[1].suffix != ".py":
            continue
        source = f"{f.header}\n{f.produce()}" if f.header else f.produce()
        if f.preformatted and _fits(source, 88):
            assert black.format_str(source, mode=mode) == source, path
