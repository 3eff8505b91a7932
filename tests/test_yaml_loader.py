"""The YAML loader on inputs that PyYAML alone would get wrong, or never finish."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from esgen.schema import enum_member_name
from esgen.schema._yaml import load_yaml


def load(text: str) -> object:
    loaded, diagnostics = load_yaml(Path("s.yaml"), text)
    assert not diagnostics, diagnostics
    assert loaded is not None
    return loaded.data


def errors(text: str) -> list[str]:
    _, diagnostics = load_yaml(Path("s.yaml"), text)
    return [str(d) for d in diagnostics]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1e5", Decimal("1e5")),  # a float in YAML 1.2, a string to PyYAML's 1.1 rules
        ("1.0e400", Decimal("1.0e400")),
        ("-2.5E-3", Decimal("-2.5E-3")),
        ("0x1F", 31),
        ("-7", -7),  # the sign survives the check of the number's length
        ("+007", 7),
        ("yes", "yes"),
        ("off", "off"),
        ("!!str 1e5", "1e5"),
        ("'1e5'", "1e5"),
        ("!!int 3", 3),
        ("!!int 0x1F", 31),
        ("!!float .inf", Decimal("Infinity")),
        ("!!float 3", Decimal(3)),
        ("! '123'", "123"),  # the non-specific tag on a quoted scalar: a string
        ('! "true"', "true"),
        ("! ''", ""),
        ("2024-01-01", "2024-01-01"),
        ("~", None),
    ],
)
def test_plain_scalars_resolve_by_yaml_1_2(text: str, value: object) -> None:
    assert load(f"v: {text}\n") == {"v": value}


def test_anchors_and_merge_keys_still_work() -> None:
    data = load("base: &b {a: 1}\nthing: {<<: *b, c: 2}\nlist: [*b, *b]\n")
    assert data == {"base": {"a": 1}, "thing": {"a": 1, "c": 2}, "list": [{"a": 1}, {"a": 1}]}


def test_an_alias_inside_its_own_anchor_is_an_error_not_a_crash() -> None:
    found = errors("context: shop\nx: &a [1, *a]\n")
    assert len(found) == 1
    assert "E100" in found[0] and "refers to the node that contains it" in found[0]


def test_aliases_that_expand_without_bound_are_refused() -> None:
    lines = ["l0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"l{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    found = errors("\n".join(lines) + "\n")
    assert len(found) == 1
    assert "E100" in found[0] and "expand" in found[0]


def test_values_nested_past_the_bound_are_refused_not_a_recursion_error() -> None:
    # 980 levels: under libyaml's own limit (1000), over what Python's stack would take.
    found = errors("context: " + "{a: " * 980 + "b" + "}" * 980 + "\n")
    assert len(found) == 1
    assert "E100" in found[0] and "nest more than 100 deep" in found[0]
    # The file's mapping, 98 lists and the scalar: 100 levels, the most allowed.
    assert errors("context: " + "[" * 98 + "b" + "]" * 98 + "\n") == []


def test_nesting_through_aliases_counts_the_whole_depth() -> None:
    # Each anchor nests 30 levels and holds the one before: 8 x 30 levels once expanded.
    lines = ["l0: &a0 " + "[" * 30 + "x" + "]" * 30]
    lines += [f"l{i}: &a{i} " + "[" * 30 + f"*a{i - 1}" + "]" * 30 for i in range(1, 8)]
    found = errors("\n".join(lines) + "\n")
    assert len(found) == 1
    assert "E100" in found[0] and "nest more than 100 deep" in found[0]


def test_a_number_key_and_its_quoted_spelling_are_one_key() -> None:
    found = errors('versions:\n  1: {}\n  "1": {}\n')
    assert len(found) == 1
    assert "E101" in found[0] and "duplicate key '1'" in found[0]


def test_enum_member_names_depend_on_the_value_alone() -> None:
    assert enum_member_name("dark blue") == "DARK_BLUE"
    assert enum_member_name("3rd") == "V_3RD"
    assert enum_member_name("+") == "CHAR_2B"
    assert enum_member_name("->") == "CHAR_2D_3E"


# The mistakes newcomers make, each as (file, where the message points, what it says).
MISTAKES = [
    pytest.param(
        "context: shop\naggregates:\n\tCart: {}\n",
        "3:1",
        "found a tab; YAML indents with spaces, never with tabs: replace it with spaces",
        id="tab-indent",
    ),
    pytest.param(
        "context: shop\ntypes:\n  M:\n    fields:\n  \t  a: int\n",
        "5:3",
        "found a tab; YAML indents with spaces",
        id="tab-inside-indent",
    ),
    pytest.param(
        'context: shop\ndescription: "Carts\naggregates: {}\n',
        "2:14",
        "the quoted value that starts here is never closed (the file ends inside it); "
        'end the value with a closing "',
        id="unclosed-double-quote",
    ),
    pytest.param(
        "context: shop\ndescription: 'Carts\n",
        "2:14",
        "never closed (the file ends inside it); end the value with a closing '",
        id="unclosed-single-quote",
    ),
    pytest.param(
        "context: shop\nx: {emits: [Added}\n",
        "2:18",
        "expected ',' or ']' here, found '}'; is the '[' at line 2, column 12 missing its ']'?",
        id="unclosed-bracket",
    ),
    pytest.param(
        "context: shop\nx: {a: 1\ny: 2\n",
        "3:2",
        "expected ',' or '}' here, found ':'; is the '{' at line 2, column 4 missing its '}'?",
        id="unclosed-brace",
    ),
    pytest.param(
        "context: shop\nx: {a: 1 b: 2}\n",
        "2:11",
        "separate the entries of {...} with ','",
        id="missing-comma",
    ),
    pytest.param(
        "context: shop\nstate:\n  total:int\n  owner: str\n",
        "3:8",
        "no space after ':' in total:int, so YAML reads that line as text that runs on to "
        "line 4; write total: int",
        id="no-space-after-colon",
    ),
    pytest.param(
        "context:shop\naggregates: {}\n",
        "1:8",
        "no space after ':' in context:shop",
        id="no-space-after-colon-first-line",
    ),
    pytest.param(
        "context: shop\ntypes:\n  M:\n    fields\n      a: int\n",
        "4:11",
        "'fields' has no ':' after it, so YAML reads it as text that runs on to line 5; "
        "write fields:",
        id="key-without-colon-before-a-block",
    ),
    pytest.param(
        "context: shop\naggregates\n  Cart: {}\n",
        "2:1",
        "'aggregates' has no ':' after it; a key needs one (aggregates:)",
        id="key-without-colon",
    ),
    pytest.param(
        "context: shop\nstate:\n    a: int\n   b: str\n",
        "4:4",
        "'b' is indented by 3 space(s), but the keys above it by 0 or 4; the keys of one "
        "mapping must start in the same column",
        id="key-indented-less",
    ),
    pytest.param(
        "context: shop\nstate:\n  a: int\n    b: str\n",
        "4:5",
        "'b' is indented more than 'a' on line 3, which already has a value; indent 'b' "
        "like the keys around it",
        id="key-indented-more",
    ),
    pytest.param(
        "context: shop\ndescription: Note: carts expire\n",
        "2:18",
        "a ': ' inside a value, where YAML reads it as the start of a mapping; quote the "
        'whole value: description: "Note: carts expire"',
        id="colon-in-value",
    ),
    pytest.param(
        "context: shop\ndescription: @owner\n",
        "2:14",
        "'@' cannot start a plain value in YAML (it is reserved); quote the value: "
        'description: "@owner"',
        id="reserved-character",
    ),
    pytest.param(
        'context: shop\ndescription: "a" b\n',
        "2:18",
        'text after the closing " of a quoted value',
        id="text-after-quote",
    ),
    pytest.param(
        "context: shop\nstate:\n  a: int\n  - b\n",
        "4:3",
        "a list item ('- ...') and a key side by side",
        id="list-item-among-keys",
    ),
    pytest.param(
        "context: shop\nx: [a]]\n",
        "2:7",
        "a ']' that closes nothing: no '[' is open here",
        id="extra-bracket",
    ),
    pytest.param(
        "context: one\n---\ncontext: two\n",
        "2:1",
        "a second YAML document starts here",
        id="two-documents",
    ),
    pytest.param(
        "context: shop\nx: *nope\n",
        "2:4",
        "'*nope' refers to no anchor: define '&nope' before it",
        id="undefined-alias",
    ),
    pytest.param(
        "context: shop\ndescription: a\x01b\n",
        "2:15",
        "character U+0001 is not allowed in YAML text; remove it",
        id="control-character",
    ),
]


@pytest.mark.parametrize(("text", "where", "message"), MISTAKES)
def test_common_yaml_mistakes_are_told_as_mistakes(text: str, where: str, message: str) -> None:
    found = errors(text)
    assert len(found) == 1
    assert found[0].startswith(f"s.yaml:{where}: error[E100]: invalid YAML: "), found[0]
    assert message in found[0]


@pytest.mark.parametrize(("text", "where", "message"), MISTAKES)
def test_pure_python_yaml_tells_the_same_mistakes(text: str, where: str, message: str) -> None:
    """Without libyaml, PyYAML words its errors differently; the explanation is the same."""
    import yaml

    from esgen.schema import explain_yaml_error

    with pytest.raises(yaml.YAMLError) as raised:
        yaml.compose(text, Loader=yaml.SafeLoader)
    problem = explain_yaml_error(raised.value, text)
    assert f"{problem.line}:{problem.col}" == where
    assert message in problem.message
