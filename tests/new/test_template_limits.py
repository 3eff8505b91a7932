"""Hostile `esgen new --template` folders: each render ends in an error naming the template
file (and line, where jinja gives it), with nothing written and no traceback.

Each runs `esgen new` in a subprocess with a generous timeout; what is asserted is the
message and that no file was written, never the time taken.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from esgen.newctx import TemplateError
from esgen.newctx._sandbox import MAX_OUTPUT, BoundedEnvironment

MANIFEST = """\
description: hostile
questions:
  account: {help: The account aggregate, kind: pascal, default: "{{ context | pascal }}Account"}
"""
SCHEMA = "t/schema/{{ context }}.yaml.jinja"


def esgen_new(tmp_path: Path, template: str) -> str:
    (tmp_path / "t" / "schema").mkdir(parents=True)
    (tmp_path / "t" / "template.yaml").write_text(MANIFEST, encoding="utf-8")
    (tmp_path / SCHEMA).write_text(template, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "esgen.cli", "new", "books", "--template", "t", "--dir", "p",
         "--no-input"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        check=False,
        timeout=120,
    )  # fmt: skip
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 2, result.stderr
    assert not (tmp_path / "p").exists(), "nothing is written on a template error"
    assert result.stderr.count("\n") == 1, result.stderr
    return result.stderr.removeprefix("esgen: error: ").removesuffix("\n")


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ('{{ "a" * 3000000000 }}', f"{SCHEMA}:1: an expression makes a value of more than"),
        ("{% set n = 10 %}\n{{ n ** 100000000 }}", f"{SCHEMA}:2: an expression makes a value"),
        (
            "{% macro m(n) %}{{ m(n) }}{% endmacro %}\n{{ m(1) }}",
            f"{SCHEMA}:1: nests or recurses too deeply",
        ),
        ("{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}", f"{SCHEMA}: nests or recurses too deeply"),
        (  # a value small enough to make, printed many times
            '{% set x = "a" * 1000000 %}{% for i in range(100) %}{{ x }}{% endfor %}',
            f"{SCHEMA}: renders more than {MAX_OUTPUT:,} characters",
        ),
        ('{{ "%999999999999d" % 1 }}', f"{SCHEMA}:1: needs more than 1,024 MB of memory"),
        ('{{ "x" | center(3000000000) }}', f"{SCHEMA}:1: needs more than 1,024 MB of memory"),
        (  # prints nothing, so only the time limit stops it
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            f"{SCHEMA}: took longer than 10 s to render",
        ),
        (  # the sandbox: no way to Python internals
            "{{ ''.__class__.__mro__ }}",
            f"{SCHEMA}: access to attribute '__class__' of 'str' object is unsafe",
        ),
    ],
)
def test_a_hostile_template_ends_in_an_error_naming_its_file(
    tmp_path: Path, template: str, expected: str
) -> None:
    if "1,024 MB" in expected and sys.platform != "linux":
        pytest.skip("the memory limit is set in a forked child, on Linux")
    assert esgen_new(tmp_path, template).startswith(expected)


def test_a_hostile_default_is_bounded_too(tmp_path: Path) -> None:
    (tmp_path / "t" / "schema").mkdir(parents=True)
    manifest = MANIFEST.replace('"{{ context | pascal }}Account"', "'{{ \"A\" * 3000000000 }}'")
    (tmp_path / "t" / "template.yaml").write_text(manifest, encoding="utf-8")
    (tmp_path / SCHEMA).write_text("context: {{ context }}\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "esgen.cli", "new", "books", "--template", "t", "--dir", "p",
         "--no-input"],
        cwd=tmp_path, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr == (
        "esgen: error: t: the default of account: an expression makes a value of more than "
        f"{MAX_OUTPUT:,} items\n"
    )
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize("expression", ['"a" * 3000000000', "[1] * 3000000000", '"a" + "b" * 99'])
def test_operators_are_checked_before_they_compute(expression: str) -> None:
    """In process too: where there is no fork, these checks are what bound memory."""
    template = BoundedEnvironment().from_string(f"{{{{ {expression} }}}}")
    if "99" in expression:
        assert template.render() == "a" + "b" * 99
        return
    with pytest.raises(TemplateError, match="makes a value of more than"):
        template.render()
