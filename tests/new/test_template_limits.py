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
from esgen.newctx._sandbox import MAX_OUTPUT, BoundedEnvironment, RenderBudget, render_bounded

MANIFEST = """\
description: hostile
questions:
  account: {help: The account aggregate, kind: pascal, default: "{{ context | pascal }}Account"}
"""
SCHEMA = "t/schema/{{ context }}.yaml.jinja"


def esgen_new(tmp_path: Path, template: str, manifest: str = MANIFEST) -> str:
    (tmp_path / "t" / "schema").mkdir(parents=True, exist_ok=True)
    (tmp_path / "t" / "template.yaml").write_text(manifest, encoding="utf-8")
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
        # A bug in the template's own code is the template's error, not a traceback.
        ("\n{{ range(200000) | length }}", f"{SCHEMA}:2: raised OverflowError (Range too big."),
        ("{{ 1/0 }}", f"{SCHEMA}:1: raised ZeroDivisionError (division by zero)"),
        ('{{ "%d" | format("x") }}', f"{SCHEMA}:1: raised TypeError (%d format"),
        ('{{ [1] | sum(start="a") }}', f"{SCHEMA}:1: raised TypeError"),
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


def test_an_exception_in_a_derived_value_or_a_file_name_names_it(tmp_path: Path) -> None:
    derived = MANIFEST + 'derived:\n  module: "{{ 1/0 }}"\n'
    assert esgen_new(tmp_path, "context: {{ context }}\n", derived) == (
        "t: derived module: raised ZeroDivisionError (division by zero)"
    )
    (tmp_path / SCHEMA).unlink()
    (tmp_path / "t" / "src").mkdir()
    (tmp_path / "t" / "src" / "{{ range(200000) | length }}.py").write_text("")
    assert esgen_new(tmp_path, "context: {{ context }}\n").startswith(
        "t: the file name '{{ range(200000) | length }}.py': raised OverflowError (Range too big"
    )


def test_an_alias_bomb_in_the_manifest_is_a_located_error(tmp_path: Path) -> None:
    levels = ['&a0 ["uuid", "str", "int", "a", "b", "c", "d", "e", "f"]']
    for level in range(1, 10):
        levels.append(f"&a{level} [" + ", ".join([f"*a{level - 1}"] * 8) + "]")
    anchors = "\n".join(f"x{i}: {text}" for i, text in enumerate(levels))
    bomb = MANIFEST.replace("questions:", f"{anchors}\nquestions:")
    message = esgen_new(tmp_path, "context: {{ context }}\n", bomb)
    assert message.startswith("t/template.yaml:"), message
    assert "error[E100]: invalid YAML: its aliases expand" in message


def test_a_bad_choice_is_located_and_shown_cut_short(tmp_path: Path) -> None:
    long_choice = "a b" * 10_000
    manifest = MANIFEST + (
        f'  id_type: {{help: Id, kind: choice, default: uuid, choices: [uuid, "{long_choice}"]}}\n'
    )
    message = esgen_new(tmp_path, "context: {{ context }}\n", manifest)
    assert message.startswith("t/template.yaml:4:"), message
    assert "choices must be plain words (got 'a ba ba b" in message
    assert len(message) < 250 and "(30,002 characters)" in message


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are a POSIX thing")
def test_a_fifo_in_a_template_is_refused_naming_it(tmp_path: Path) -> None:
    (tmp_path / "t" / "src").mkdir(parents=True)
    os.mkfifo(tmp_path / "t" / "src" / "pipe")  # reading it would block for ever
    assert esgen_new(tmp_path, "context: {{ context }}\n") == (
        "t/src/pipe: not a regular file (a folder, FIFO, device or socket); templates hold "
        "text files only. Nothing was written"
    )


def test_a_template_file_too_large_is_refused(tmp_path: Path) -> None:
    (tmp_path / "t" / "src").mkdir(parents=True)
    with (tmp_path / "t" / "src" / "big.txt").open("wb") as big:
        big.truncate(10_000_001)  # sparse: no disk spent
    assert esgen_new(tmp_path, "context: {{ context }}\n") == (
        "t/src/big.txt: larger than 10,000,000 bytes, the most a template file may hold. "
        "Nothing was written"
    )


@pytest.mark.skipif(sys.platform != "linux", reason="the time limits are kept on Linux")
def test_the_renders_of_one_run_share_one_time_budget() -> None:
    """A render gets what is left of the budget, not a fresh MAX_SECONDS, and a spent budget
    refuses the next render however small."""
    env = BoundedEnvironment()
    budget = RenderBudget(0.5)
    endless = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    spent = r"the template's renders took longer than 0\.5 s in all"
    with pytest.raises(TemplateError, match=spent):
        render_bounded(lambda: env.from_string(endless), {}, budget)
    with pytest.raises(TemplateError, match=spent):
        render_bounded(lambda: env.from_string("ok"), {}, budget)
    assert render_bounded(lambda: env.from_string("ok"), {}, RenderBudget()) == "ok"
