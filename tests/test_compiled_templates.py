"""The code templates compiled ahead of time (templates/_compiled.zip): current with the
templates, made by the Jinja version the tests run on, the same bytes when made again,
used by `esgen generate` when current and passed over (the templates' text is compiled,
as before) when a template changed or another Jinja is installed; the output is the same
either way."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jinja2
import pytest

from esgen.codegen import _compiled, _render

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = ROOT / "templates"


def _manifest() -> dict[str, str]:
    data: dict[str, str] = json.loads((TEMPLATES / _compiled.MANIFEST).read_text())
    return data


def test_the_archive_is_current_with_the_templates() -> None:
    assert _manifest()["sources"] == _compiled.sources_digest(TEMPLATES), (
        "a template changed since templates/_compiled.zip was made: run `make goldens`"
    )


def test_the_archive_is_what_this_jinja_makes_of_the_templates(tmp_path: Path) -> None:
    if _manifest()["jinja"] != jinja2.__version__:
        pytest.skip(
            f"the archive was made by Jinja {_manifest()['jinja']}, this is "
            f"{jinja2.__version__}: generate compiles the templates' text, as tested below"
        )
    copy = tmp_path / "templates"
    shutil.copytree(TEMPLATES, copy)
    _compiled.write_archive(_render.source_environment(jinja2.FileSystemLoader(copy)), copy)
    for name in (_compiled.ARCHIVE, _compiled.MANIFEST):
        assert (copy / name).read_bytes() == (TEMPLATES / name).read_bytes(), name


def test_a_changed_template_or_another_jinja_is_compiled_from_its_text(tmp_path: Path) -> None:
    copy = tmp_path / "templates"
    shutil.copytree(TEMPLATES, copy)
    manifest = json.loads((copy / _compiled.MANIFEST).read_text())
    manifest["jinja"] = jinja2.__version__  # as if made by this Jinja
    (copy / _compiled.MANIFEST).write_text(json.dumps(manifest))
    assert isinstance(_compiled.compiled_loader(copy), jinja2.ModuleLoader)
    # A template edited after the archive was made: the archive would render the old text.
    models = copy / "generated" / "models.py.jinja"
    models.write_text(models.read_text() + "{# edited #}\n")
    assert _compiled.compiled_loader(copy) is None
    models.write_text(models.read_text().removesuffix("{# edited #}\n"))
    assert _compiled.compiled_loader(copy) is not None
    # Made by another Jinja, missing or damaged: the same.
    (copy / _compiled.MANIFEST).write_text(json.dumps({**manifest, "jinja": "0.0"}))
    assert _compiled.compiled_loader(copy) is None
    (copy / _compiled.MANIFEST).write_text("{not json")
    assert _compiled.compiled_loader(copy) is None
    (copy / _compiled.MANIFEST).unlink()
    assert _compiled.compiled_loader(copy) is None


def _generate(schemas: Path, out: Path) -> dict[str, bytes]:
    from esgen.cli import main

    try:
        main(["generate", str(schemas), "--out", str(out), "--no-cache"])
    except SystemExit as exit_:
        assert exit_.code in (0, None)
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}


def test_compiled_and_text_templates_generate_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if _compiled.compiled_loader(TEMPLATES) is None:
        pytest.skip("the archive is not current for this Jinja: only the text is in use")
    monkeypatch.setenv("ESGEN_CACHE_DIR", str(tmp_path / "cache"))
    schemas = ROOT / "examples" / "bank" / "schemas"
    _render._environment.cache_clear()
    assert isinstance(_render._environment().loader, jinja2.ChoiceLoader)
    compiled = _generate(schemas, tmp_path / "compiled")
    monkeypatch.setattr(_render, "compiled_loader", lambda root: None)
    _render._environment.cache_clear()
    try:
        assert isinstance(_render._environment().loader, jinja2.FileSystemLoader)
        text = _generate(schemas, tmp_path / "text")
    finally:
        _render._environment.cache_clear()
    assert len(compiled) > 10 and compiled == text
