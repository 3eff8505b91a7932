"""The code templates compiled ahead of time (templates/_compiled.zip): current with the
templates, made by the Jinja version the tests run on, the same bytes when made again,
used by `esgen generate` when current and passed over (the templates' text is compiled,
as before) when a template changed or another Jinja is installed; the output is the same
either way."""

from __future__ import annotations

import json
import shutil
import threading
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
    copy = _copy(tmp_path)
    _compiled.write_archive(_render.source_environment(jinja2.FileSystemLoader(copy)), copy)
    assert _compiled.archived(copy / _compiled.ARCHIVE) == _compiled.archived(
        TEMPLATES / _compiled.ARCHIVE
    ), "templates/_compiled.zip is not what this Jinja makes of the templates: make goldens"
    assert json.loads((copy / _compiled.MANIFEST).read_text()) == _manifest()


def _copy(tmp_path: Path) -> Path:
    copy = tmp_path / "templates"
    shutil.copytree(TEMPLATES, copy)
    return copy


def _loader(root: Path) -> jinja2.BaseLoader | None:
    return _compiled.compiled_loader(
        root, _render.source_environment(jinja2.FileSystemLoader(root))
    )


def test_a_changed_template_or_another_jinja_is_compiled_from_its_text(tmp_path: Path) -> None:
    copy = _copy(tmp_path)
    manifest = json.loads((copy / _compiled.MANIFEST).read_text())
    manifest["jinja"] = jinja2.__version__  # as if made by this Jinja
    (copy / _compiled.MANIFEST).write_text(json.dumps(manifest))
    assert isinstance(_loader(copy), jinja2.ModuleLoader)
    # A template edited, added or removed after the archive was made: the archive would
    # render the old text, or miss one.
    models = copy / "generated" / "models.py.jinja"
    models.write_text(models.read_text() + "{# edited #}\n")
    assert _loader(copy) is None
    models.write_text(models.read_text().removesuffix("{# edited #}\n"))
    assert _loader(copy) is not None
    (copy / "scaffold" / "new.py.jinja").write_text("{{ module }}\n")
    assert _loader(copy) is None
    (copy / "scaffold" / "new.py.jinja").unlink()
    (copy / "scaffold" / "class.py.jinja").rename(copy / "scaffold" / "klass.py.jinja")
    assert _loader(copy) is None
    (copy / "scaffold" / "klass.py.jinja").rename(copy / "scaffold" / "class.py.jinja")
    # A file that is not a template (an editor's, the file manager's) changes nothing.
    (copy / "generated" / ".DS_Store").write_bytes(b"\xff\x00")
    assert _loader(copy) is not None
    # Another setting of the environment, baked into the compiled code.
    other = _render.source_environment(jinja2.FileSystemLoader(copy))
    other.lstrip_blocks = False
    assert _compiled.compiled_loader(copy, other) is None
    # Made by another Jinja, missing or damaged: the same.
    (copy / _compiled.MANIFEST).write_text(json.dumps({**manifest, "jinja": "0.0"}))
    assert _loader(copy) is None
    (copy / _compiled.MANIFEST).write_text("{not json")
    assert _loader(copy) is None
    (copy / _compiled.MANIFEST).unlink()
    assert _loader(copy) is None


def test_a_stray_file_beside_the_templates_is_not_compiled(tmp_path: Path) -> None:
    copy = _copy(tmp_path)
    (copy / "generated" / ".DS_Store").write_bytes(b"\xff\x00")
    _compiled.write_archive(_render.source_environment(jinja2.FileSystemLoader(copy)), copy)
    assert _loader(copy) is not None


def test_threads_loading_compiled_templates_at_once_all_get_them(tmp_path: Path) -> None:
    # jinja2's ModuleLoader takes each module out of sys.modules after importing it: two
    # threads importing at once could lose each other's. The loader takes them in turn.
    copy = _copy(tmp_path)
    _compiled.write_archive(_render.source_environment(jinja2.FileSystemLoader(copy)), copy)
    names = [name for name, _ in _compiled._sources(copy)]
    errors: list[BaseException] = []
    for _ in range(60):
        environment = _render.source_environment(_loader(copy))
        start = threading.Barrier(8)

        def load(
            offset: int,
            environment: jinja2.Environment = environment,
            start: threading.Barrier = start,
        ) -> None:
            try:
                start.wait()
                for name in names[offset:] + names[:offset]:
                    environment.get_template(name)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=load, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []


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
    if _loader(TEMPLATES) is None:
        pytest.skip("the archive is not current for this Jinja: only the text is in use")
    monkeypatch.setenv("ESGEN_CACHE_DIR", str(tmp_path / "cache"))
    schemas = ROOT / "examples" / "bank" / "schemas"
    _render._environment.cache_clear()
    assert isinstance(_render._environment().loader, jinja2.ChoiceLoader)
    compiled = _generate(schemas, tmp_path / "compiled")
    monkeypatch.setattr(_render, "compiled_loader", lambda root, environment: None)
    _render._environment.cache_clear()
    try:
        assert isinstance(_render._environment().loader, jinja2.FileSystemLoader)
        text = _generate(schemas, tmp_path / "text")
    finally:
        _render._environment.cache_clear()
    assert len(compiled) > 10 and compiled == text
