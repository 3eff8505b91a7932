"""Schemas written to make checking them slow or crash: each ends in a located error, fast.

Each runs `esgen generate` in a subprocess with a generous timeout (the helper's); what is
asserted is the error line and that nothing was written, never the time taken.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_cli_messages import esgen

from esgen.schema._patterns import matches, pattern_problem

HEAD = "context: shop\naggregates:\n  Cart:\n"
BIG = "9" * 5000  # past Python's 4,300-digit limit on int(text)


def generate(tmp_path: Path, schema: str) -> list[str]:
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "s.yaml").write_text(schema, encoding="utf-8")
    code, _, stderr = esgen(tmp_path, "generate", "schemas", "--out", "src", "--tests", "tests")
    assert code == 1, stderr
    assert not (tmp_path / "src").exists() and not (tmp_path / "tests").exists()
    lines = stderr.splitlines()
    assert lines[-1].endswith("nothing was written"), stderr
    return lines[:-1]


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (
            "n: {type: int, min: 1e99999999}",
            "5:27: error[E106]: the number 1e99999999 is out of range: "
            "esgen reads numbers from 1e-1000 to 1e1000 in size",
        ),
        (
            "n: {type: decimal, min: 1e99999999, default: 1}",
            "5:31: error[E106]: the number 1e99999999 is out of range: "
            "esgen reads numbers from 1e-1000 to 1e1000 in size",
        ),
        (
            "n: {type: str, min_length: 1e99999999}",
            "5:34: error[E106]: the number 1e99999999 is out of range: "
            "esgen reads numbers from 1e-1000 to 1e1000 in size",
        ),
        (  # Decimal() itself refuses this exponent, with a bare InvalidOperation
            "n: {type: decimal, default: 1e99999999999999999999999}",
            "5:35: error[E106]: the number 1e99999999999999999999999 is out of range: "
            "esgen reads numbers from 1e-1000 to 1e1000 in size",
        ),
        (
            "n: {type: decimal, default: 1e-1001}",
            "5:35: error[E106]: the number 1e-1001 is out of range: "
            "esgen reads numbers from 1e-1000 to 1e1000 in size",
        ),
        (
            f"n: {{type: int, max: {BIG}}}",
            "5:27: error[E106]: the number 999999999999...999999999999 (5000 characters) "
            "has more than 1000 digits, more than esgen reads in a schema",
        ),
        (
            f"n: {{type: decimal, default: 0.{BIG}}}",
            "5:35: error[E106]: the number 0.9999999999...999999999999 (5002 characters) "
            "has more than 1000 digits, more than esgen reads in a schema",
        ),
        (
            f"n: {{type: int, default: 0x{'f' * 1001}}}",
            "5:31: error[E106]: the number 0xffffffffff...ffffffffffff (1003 characters) "
            "has more than 1000 digits, more than esgen reads in a schema",
        ),
        (  # pydantic-core cannot build a decimal validator with this: OverflowError
            "n: {type: decimal, max_digits: 1e23, default: 1}",
            "5:38: error[E103]: aggregates.Cart.state.n.max_digits: input should be less than "
            "or equal to 1000 (got 1E+23, a number)",
        ),
        (
            "n: {type: str, max_length: 1e30}",
            "5:34: error[E103]: aggregates.Cart.state.n.max_length: input should be less than "
            "or equal to 9223372036854775807 (got 1E+30, a number)",
        ),
        (  # the generated model could not be imported: pydantic cannot make it a float
            "n: {type: float, min: 1e400}",
            "5:29: error[E302]: min 1E+400 is beyond the range of a float",
        ),
    ],
)
def test_numbers_are_bounded_before_they_are_converted(
    tmp_path: Path, state: str, expected: str
) -> None:
    errors = generate(tmp_path, f"{HEAD}    state:\n      {state}\n")
    assert errors == [f"schemas/s.yaml:{expected}"]


def test_a_huge_number_as_a_key_or_a_setting_is_located(tmp_path: Path) -> None:
    schema = (
        f"{HEAD}    snapshot_every: 1e4300\n    state: {{n: int}}\n"
        "    events:\n      Added:\n        versions:\n          1e99999999: {fields: {}}\n"
    )
    errors = generate(tmp_path, schema)
    assert errors[0] == (
        "schemas/s.yaml:4:21: error[E106]: the number 1e4300 is out of range: "
        "esgen reads numbers from 1e-1000 to 1e1000 in size"
    )
    # The key is kept as its text, so it is also named as no version number.
    assert errors[1:] == [
        "schemas/s.yaml:9:11: error[E103]: key '1e99999999' in "
        "aggregates.Cart.events.Added.versions must be a version number (1, 2, ...)",
        "schemas/s.yaml:9:11: error[E106]: the number 1e99999999 is out of range: "
        "esgen reads numbers from 1e-1000 to 1e1000 in size",
    ]


def test_a_far_version_number_is_reported_without_counting_up_to_it(tmp_path: Path) -> None:
    versions = "1: {fields: {}}\n          100000000000: {fields: {}}"
    schema = f"{HEAD}    state: {{n: int}}\n    events:\n      Added:\n        versions:\n"
    errors = generate(tmp_path, f"{schema}          {versions}\n")
    assert errors == [
        "schemas/s.yaml:7:9: error[E500]: versions of event 'Added' must be numbered 1..N: "
        "found 1, 100000000000 (missing 2, 3, 4, 5, 6, ...)"
    ]


def test_a_saga_timeout_of_thousands_of_digits_is_located(tmp_path: Path) -> None:
    schema = (
        f"{HEAD}    state: {{n: int}}\n    commands:\n      Add: {{emits: [Added]}}\n"
        "    events:\n      Added: {versions: {1: {fields: {n: int}}}}\n"
        "sagas:\n  Late:\n    starts_with: Added\n    correlation: n\n    handles: []\n"
        f"    timeout: {{after: {'1' * 5000}s}}\n"
    )
    errors = generate(tmp_path, schema)
    assert errors == [
        f"schemas/s.yaml:14:22: error[E103]: saga 'Late': a timeout of {'1' * 5000}s is "
        "longer than 100 years"
    ]


def test_a_backtracking_pattern_meets_its_default_in_linear_time(tmp_path: Path) -> None:
    default = "a" * 60 + "!"  # Python's re.search takes 2**60 steps on this
    state = f"code: {{type: str, pattern: '^(a+)+$', default: '{default}'}}"
    errors = generate(tmp_path, f"{HEAD}    state:\n      {state}\n")
    assert errors == [
        f"schemas/s.yaml:5:54: error[E303]: default of 'code': '{default}' does not match "
        "the pattern '^(a+)+$'"
    ]


ENGINE = "invalid pattern for pydantic's regex engine, which generated models use"


def test_patterns_the_run_time_engine_refuses_are_located_errors(tmp_path: Path) -> None:
    state = (
        "      ahead: {type: str, pattern: '(?=a)a'}\n"
        "      again: {type: str, pattern: '(a)\\1'}\n"
        "      end: {type: str, pattern: 'a\\Z'}\n"
        "      huge: {type: str, pattern: '(?:a{65535}){65535}'}\n"
        "      open: {type: str, pattern: '([a-z'}\n"
    )
    errors = generate(tmp_path, f"{HEAD}    state:\n{state}")
    assert errors == [
        f"schemas/s.yaml:5:35: error[E302]: {ENGINE}: look-around, including look-ahead "
        "and look-behind, is not supported",
        f"schemas/s.yaml:6:35: error[E302]: {ENGINE}: backreferences are not supported",
        f"schemas/s.yaml:7:33: error[E302]: {ENGINE}: unrecognized escape sequence",
        f"schemas/s.yaml:8:34: error[E302]: {ENGINE}: Compiled regex exceeds size limit "
        "of 10485760 bytes",
        "schemas/s.yaml:9:34: error[E302]: invalid pattern: unterminated character set "
        "at position 1",
    ]


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("^[A-Z]{3}$", "EUR", True),
        ("[0-9]", "ab1", True),  # anywhere in the text, as pydantic checks it
        ("^a$", "a\n", False),  # Python's `$` would match before the newline; pydantic's not
        ("^(a+)+$", "a" * 100 + "!", False),
    ],
)
def test_defaults_match_as_the_generated_model_matches(
    pattern: str, value: str, expected: bool
) -> None:
    assert pattern_problem(pattern) is None
    assert matches(pattern, value) is expected


@pytest.mark.parametrize(
    ("opening", "depth"),
    [("list[", 33), ("list[", 3000), ("dict[str, ", 300)],
)
def test_a_type_nested_too_deep_is_refused_before_parsing_recurses(
    tmp_path: Path, opening: str, depth: int
) -> None:
    text = f"{opening * depth}str{']' * depth}"
    errors = generate(tmp_path, f"{HEAD}    state:\n      n: {{type: '{text}'}}\n")
    column = 18 + len(opening) * 32  # the 33rd generic's name; the text starts at 18
    shown = f"{text[:12]}...{text[-12:]} ({len(text)} characters)"
    assert errors == [
        f"schemas/s.yaml:5:{column}: error[E301]: type {shown!r}: types nest more than "
        "32 deep; declare a value type for a level"
    ]


def test_a_type_nested_32_deep_generates(tmp_path: Path) -> None:
    (tmp_path / "schemas").mkdir()
    text = f"{'list[' * 32}str{']' * 32}"
    (tmp_path / "schemas" / "s.yaml").write_text(
        f"{HEAD}    state:\n      n: {{type: '{text}'}}\n", encoding="utf-8"
    )
    code, _, stderr = esgen(tmp_path, "generate", "schemas", "--out", "src", "--tests", "tests")
    assert code == 0, stderr


def test_a_default_too_large_to_write_as_a_literal_is_located(tmp_path: Path) -> None:
    items = ", ".join(["1"] * 30_000)  # black took 7 s on this literal
    state = f"      n: {{type: 'list[int]', default: [{items}]}}\n"
    state += f"      s: {{type: str, default: '{'a' * 20_000}'}}\n"
    errors = generate(tmp_path, f"{HEAD}    state:\n{state}")
    too_long = "it is longer than 10,000 characters written as a literal; set a large value in code"
    assert errors == [
        f"schemas/s.yaml:5:39: error[E303]: default of 'n': {too_long} instead",
        f"schemas/s.yaml:6:31: error[E303]: default of 's': {too_long} instead",
    ]


def test_a_default_nested_deeper_than_any_type_is_refused_before_checking_recurses(
    tmp_path: Path,
) -> None:
    # Each value type holds the next, and checking a default recursed per level (500 levels
    # were a RecursionError); YAML now stops at 100 levels, and a default at 32, told as such.
    depth = 60
    types = "".join(f"  T{i}:\n    fields:\n      x: T{i + 1}\n" for i in range(depth))
    default = "{x: " * (depth + 1) + "1" + "}" * (depth + 1)
    schema = (
        f"context: shop\ntypes:\n{types}  T{depth}:\n    fields:\n      x: int\n"
        f"aggregates:\n  Cart:\n    state:\n      n: {{type: T0, default: {default}}}\n"
    )
    errors = generate(tmp_path, schema)
    line = 3 * depth + 9
    assert errors == [
        f"schemas/s.yaml:{line}:30: error[E303]: default of 'n': it nests more than 32 deep"
    ]


def test_a_version_key_that_is_not_a_whole_number_is_refused_not_merged(
    tmp_path: Path,
) -> None:
    # pydantic read `1.0` as 1, so version 1 silently became the second definition.
    versions = "1: {fields: {a: str}}\n          1.0: {fields: {a: str, b: int}}"
    schema = f"{HEAD}    state: {{n: int}}\n    events:\n      Added:\n        versions:\n"
    errors = generate(tmp_path, f"{schema}          {versions}\n")
    assert errors == [
        "schemas/s.yaml:9:11: error[E103]: key '1.0' in aggregates.Cart.events.Added.versions "
        "must be a version number (1, 2, ...)"
    ]


def test_a_description_longer_than_a_docstring_wants_is_located(tmp_path: Path) -> None:
    text = "a" * 10_001  # 5 MB of it took black 12 s in the docstring
    errors = generate(tmp_path, f"{HEAD}    state:\n      n: {{type: str, description: {text}}}\n")
    assert errors == [
        "schemas/s.yaml:5:35: error[E103]: aggregates.Cart.state.n.description: string should "
        f"have at most 10000 characters (got '{'a' * 56}..., a str)"
    ]
