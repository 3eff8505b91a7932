"""Generated docstrings: black leaves them as they are, and they keep the schema's text.

esgen skips black for files whose lines fit, so a docstring black would rewrite (a space
after a leading or trailing quote, trailing spaces, a shared margin) would make the
committed output differ from what black writes.
"""

from __future__ import annotations

import ast

import black
from black.mode import TargetVersion
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from esgen.codegen._pyexpr import docstring

MODE = black.Mode(target_versions={TargetVersion.PY311})
# The characters black treats specially in docstrings, and some ordinary ones.
TRICKY = st.sampled_from([*"ab \"'\\\n\t#\u00a0\u2028\x0c\r", "word "])
TEXTS = st.lists(
    st.one_of(TRICKY, st.characters(codec="utf-8", exclude_categories=["Cs"])), max_size=60
).map("".join)


def _module(literal: str, indent: str) -> str:
    if indent:
        return f"class A:\n{indent}{literal}\n\n{indent}x: int\n"
    return f"{literal}\n\nx = 1\n"


def _docstring_of(source: str) -> str | None:
    tree = ast.parse(source)
    node = tree.body[0] if isinstance(tree.body[0], ast.ClassDef) else tree
    return ast.get_docstring(node, clean=False)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TEXTS, st.sampled_from(["", "    "]))
@example('"0', "")  # black would write `""" "0"""`
@example('0"', "")
@example('""\'', "")  # its escaped form ends with the quote character
@example("' \n'", "")  # a trailing space on the first line
@example("a\n  b\n  c", "    ")  # a margin shared by every line after the first
def test_black_leaves_generated_docstrings_alone(text: str, indent: str) -> None:
    source = _module(docstring(text, indent), indent)
    assert black.format_str(source, mode=MODE) == source


@given(TEXTS.filter(lambda t: "\n" not in t and len(t) < 60))
@example('"quoted"')
@example("ends with a backslash \\")
@example("'")
def test_one_line_text_is_kept_exactly(text: str) -> None:
    source = _module(docstring(text, ""), "")
    assert _docstring_of(source) == text.strip()
