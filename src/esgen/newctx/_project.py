"""The project a new context joins, and the configuration it needs.

The project is the nearest folder, from `--dir` upwards, with an esgen.yaml or a
pyproject.toml; without one, or when `--dir` does not exist yet, `--dir` itself. Its
`[tool.esgen]` settings are used as they are. A pyproject.toml without them gets the
table appended at its end, leaving every byte before it as it was; a project without one
gets a small pyproject.toml that names its dependencies: esgen's runtime to run, and the
generator and the test tools to develop. Either way pytest is made to import the context
(see `_pytest_config`), or the notes say exactly what to add where esgen does not edit.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from esgen._formatter import Formatter
from esgen.codegen import Change, Status
from esgen.config import ConfigError, Settings, check_inside, load_settings
from esgen.newctx._pytest_config import (
    find_pytest_config,
    folder_setting,
    has_pythonpath,
    ini_add_pythonpath,
    pythonpath_entries,
    read_exactly,
    toml_set,
)
from esgen.newctx._source import esgen_requirements

__all__ = ["Layout", "Project", "locate_project"]
_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")  # how a PEP 508 requirement starts


@dataclass(frozen=True)
class Layout:
    """Where a new project's files go, relative to the project folder (posix style)."""

    out_dir: str = "src"
    tests_dir: str = "tests"
    schema_dir: str = "schemas"

    def table(self) -> dict[str, str]:
        return {"schema_dir": self.schema_dir, "out_dir": self.out_dir, "tests_dir": self.tests_dir}


@dataclass(frozen=True)
class Project:
    root: Path
    settings: Settings
    changes: tuple[Change, ...] = ()  # configuration files created or edited
    notes: tuple[str, ...] = ()
    created: bool = False  # a new project, whose pyproject.toml esgen writes


def locate_project(start: Path, out: Path | None = None, tests: Path | None = None) -> Project:
    """The project at or above `start`; `out` and `tests` (relative to the project folder)
    place the package and the tests of a project esgen has not configured yet. Its folders
    must resolve inside it (C003), or a committed link would send the new files away."""
    project = _locate(start, out, tests)
    check_inside(project.settings)
    return project


def _locate(start: Path, out: Path | None, tests: Path | None) -> Project:
    start = start.absolute()
    if start.exists():
        for folder in (start, *start.parents):
            if (folder / "esgen.yaml").is_file():
                settings = load_settings(folder)
                _check_layout(folder, settings, out, tests)
                return _configured(folder, settings, None)
            pyproject = folder / "pyproject.toml"
            if pyproject.is_file():
                return _existing(folder, pyproject, out, tests)
    return _fresh(start, _layout(start, out, tests))


def _inside(root: Path, given: Path, option: str) -> str:
    path = given if given.is_absolute() else root / given
    try:
        relative = path.resolve().relative_to(root.resolve())
    except ValueError:
        raise ConfigError(
            f"{option} {given} is outside the project folder {root}; give a folder inside it"
        ) from None
    return relative.as_posix() or "."


def _layout(root: Path, out: Path | None, tests: Path | None) -> Layout:
    layout = Layout()
    if out is not None:
        layout = Layout(_inside(root, out, "--out"), layout.tests_dir)
    if tests is not None:
        layout = Layout(layout.out_dir, _inside(root, tests, "--tests"))
    return layout


def _check_layout(root: Path, settings: Settings, out: Path | None, tests: Path | None) -> None:
    """--out and --tests may only repeat what a configured project already says."""
    for option, given, configured, key in (
        ("--out", out, settings.out_dir, "out_dir"),
        ("--tests", tests, settings.tests_dir, "tests_dir"),
    ):
        if given is None:
            continue
        if (root / _inside(root, given, option)).resolve() != configured.resolve():
            where = settings.config_file.name if settings.config_file else "its configuration"
            raise ConfigError(
                f"this project sets {key} = {folder_setting(root, configured)!r} in {where}, "
                f"and `esgen generate` writes there; {option} {given} would put the context "
                f"elsewhere. Leave {option} out, or change {key} in {where} first"
            )


def _settings(root: Path, layout: Layout, config: Path) -> Settings:
    # What load_settings reads back from the table esgen writes.
    return Settings(
        root=root,
        schema_dir=root / layout.schema_dir,
        out_dir=root / layout.out_dir,
        tests_dir_setting=root / layout.tests_dir,
        formatter=Formatter("black", 88),
        config_file=config,
    )


def _toml_table(name: str, values: dict[str, Any], newline: str, comments: str = "") -> str:
    # JSON strings and arrays of them are valid TOML values.
    lines = ["", f"[{name}]"]
    lines += [f"# {line}" for line in comments.splitlines()]
    lines += [f"{key} = {json.dumps(v)}" for key, v in values.items()]
    return newline.join(lines) + newline


def _existing(root: Path, pyproject: Path, out: Path | None, tests: Path | None) -> Project:
    text = read_exactly(pyproject)
    try:
        parsed = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{pyproject}: invalid TOML: {exc}") from None
    if "esgen" in parsed.get("tool", {}):
        settings = load_settings(root)
        _check_layout(root, settings, out, tests)
        return _configured(root, settings, None)
    layout = _layout(root, out, tests)
    newline = "\r\n" if "\r\n" in text else "\n"
    added = _toml_table("tool.esgen", layout.table(), newline)
    separator = "" if not text or text.endswith("\n") else newline
    new = text + separator + added
    _check_appended(pyproject, new, added, layout)
    change = Change(pyproject, Status.UPDATED, text, new, owner="user")
    return _configured(root, _settings(root, layout, pyproject), change)


def _check_appended(pyproject: Path, new: str, added: str, layout: Layout) -> None:
    """The appended table must parse as intended (say, not clash with a `[tool]` table
    that spells it inline); otherwise the user adds it by hand."""
    try:
        esgen = tomllib.loads(new).get("tool", {}).get("esgen")
    except tomllib.TOMLDecodeError as exc:
        esgen = exc
    if esgen != layout.table():
        raise ConfigError(
            f"{pyproject}: cannot append the esgen settings without breaking the file "
            f"({esgen}); add these lines to it yourself and run `esgen new` again:\n{added}"
        )


def _configured(root: Path, settings: Settings, pyproject_change: Change | None) -> Project:
    """A project that exists: pytest made to import the context, and what to add by hand."""
    changes, notes = _pytest_changes(root, settings.out_dir, pyproject_change)
    pyproject = root / "pyproject.toml"
    if not any(_names_esgen(pyproject)):
        wanted = esgen_requirements()
        notes.append(
            f"esgen new does not edit your dependencies: add {wanted.runtime!r} to the "
            f"project's dependencies and {wanted.dev!r} to its development dependencies"
        )
    return Project(root, settings, tuple(changes), tuple(notes))


def _pytest_changes(
    root: Path, folder: Path, pyproject_change: Change | None
) -> tuple[list[Change], list[str]]:
    """The edits that put `folder` on pytest's pythonpath, and the notes where esgen does
    not edit; `pyproject_change` is what esgen already changes in pyproject.toml."""
    shown = folder_setting(root, folder)
    pyproject = root / "pyproject.toml"
    planned = {pyproject: pyproject_change} if pyproject_change is not None else {}
    config = find_pytest_config(root)
    if config is not None and has_pythonpath(root, config, folder):
        return list(planned.values()), []
    if config is not None and config.section:  # an INI file: one line, edited as text
        edited_ini = ini_add_pythonpath(read_exactly(config.file), config.section, shown)
        if edited_ini is None:
            return list(planned.values()), [
                f"pytest reads {config.file.name}, which esgen could not edit safely: add "
                f"`pythonpath = {shown}` to its [{config.section}] section (or add {shown} to "
                "the pythonpath there) so the tests can import the context"
            ]
        planned[config.file] = _edited(config.file, edited_ini, None)
        return list(planned.values()), []
    if config is None:
        if pyproject_change is None and not pyproject.is_file():
            return [], [
                f"pytest must import the context from {shown}/: add `pythonpath = {shown}` "
                "under [pytest] in a pytest.ini, or to your pytest configuration"
            ]
        before = pyproject_change.new if pyproject_change else read_exactly(pyproject)
        assert before is not None
        newline = "\r\n" if "\r\n" in before else "\n"
        separator = "" if not before or before.endswith("\n") else newline
        added = _toml_table("tool.pytest.ini_options", {"pythonpath": [shown]}, newline)
        return [_edited(pyproject, before + separator + added, pyproject_change)], []
    # A TOML file: pyproject.toml or pytest.toml, edited in place.
    before = (
        pyproject_change.new
        if pyproject_change is not None and config.file == pyproject
        else read_exactly(config.file)
    )
    assert before is not None
    current: Any = tomllib.loads(before)
    for name in config.table:
        current = current.get(name, {})
    value = current.get("pythonpath")
    entries = pythonpath_entries(value) if value is not None else []
    if entries is None:
        return list(planned.values()), [
            f"{config.file.name}: add {shown!r} to pytest's pythonpath so the tests can "
            "import the context (esgen does not edit a pythonpath written this way)"
        ]
    # A string splits on whitespace: a folder with a space needs the list form.
    as_string = isinstance(value, str) and not any(ch.isspace() for ch in shown)
    new_value: str | list[str] = " ".join([*entries, shown]) if as_string else [*entries, shown]
    edited = toml_set(config.file, before, (*config.table, "pythonpath"), new_value)
    planned[config.file] = _edited(config.file, edited, planned.get(config.file))
    return list(planned.values()), []


def _edited(path: Path, new: str, earlier: Change | None) -> Change:
    if earlier is not None:
        return Change(path, earlier.status, earlier.old, new, owner="user")
    return Change(path, Status.UPDATED, read_exactly(path), new, owner="user")


def _names_esgen(pyproject: Path) -> Iterable[bool]:
    """For each requirement the project declares, whether it is esgen."""
    if not pyproject.is_file():
        return
    try:
        parsed = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, OSError):
        return
    project = parsed.get("project", {})
    lists = [project.get("dependencies", [])]
    lists += list(project.get("optional-dependencies", {}).values())
    lists += list(parsed.get("dependency-groups", {}).values())
    poetry = parsed.get("tool", {}).get("poetry", {})
    for table in (poetry.get("dependencies", {}), *poetry.get("group", {}).values()):
        if isinstance(table, dict):
            yield "esgen" in table or "esgen" in table.get("dependencies", {})
    for requirements in lists:
        for text in requirements if isinstance(requirements, list) else []:
            # Names compare normalised (PEP 503).
            match = _NAME.match(text) if isinstance(text, str) else None
            yield match is not None and re.sub(r"[-_.]+", "-", match.group(1)).lower() == "esgen"


def _project_name(folder: Path, fallback: str) -> str:
    name = re.sub(r"[-_.\s]+", "-", folder.name).strip("-").lower()
    return name if re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?", name) else fallback


def _fresh(root: Path, layout: Layout) -> Project:
    pyproject = root / "pyproject.toml"
    project = {
        "name": _project_name(root, "my-service"),
        "version": "0.1.0",
        "requires-python": ">=3.11",
    }
    text = _toml_table("project", project, "\n").lstrip("\n")
    wanted = esgen_requirements()
    if wanted.pinned:
        where = "# From esgen's git repository, at the commit this project was started with."
        how = "pip install --group dev, or uv sync"
    else:
        where = (
            "# esgen is not on the Python Package Index: these names are met by the esgen\n"
            "# installed from its repository (see its README). To install from here alone,\n"
            "# write them as `esgen @ git+<its repository's URL>@<tag>`."
        )
        how = f"pip install '{wanted.dev}' where esgen is installed"
    text += (
        "# What the service needs to run: esgen's runtime, which brings pydantic alone.\n"
        f"{where}\n"
        f"dependencies = {json.dumps([wanted.runtime])}\n"
    )
    text += _toml_table(
        "dependency-groups",
        {"dev": [wanted.dev]},
        "\n",
        f"To develop it: `esgen generate`, and pytest and hypothesis for the tests ({how}).",
    )
    text += _toml_table("tool.esgen", layout.table(), "\n")
    # Both checkers strict, and every override marked: a handler whose event or command
    # was removed or renamed is then an error rather than code nothing calls.
    text += _toml_table(
        "tool.mypy", {"strict": True, "enable_error_code": ["explicit-override"]}, "\n"
    )
    text += _toml_table(
        "tool.pyright", {"typeCheckingMode": "strict", "reportImplicitOverride": True}, "\n"
    )
    settings = _settings(root, layout, pyproject)
    if root.is_dir() and find_pytest_config(root) is not None:
        # pytest reads another file here (a pytest.ini, say): edit that one instead.
        created = Change(pyproject, Status.CREATED, None, text, owner="user")
        changes, notes = _pytest_changes(root, settings.out_dir, created)
        return Project(root, settings, tuple(changes), tuple(notes), created=True)
    text += _toml_table(
        "tool.pytest.ini_options",
        {"pythonpath": [layout.out_dir], "testpaths": [layout.tests_dir]},
        "\n",
    )
    change = Change(pyproject, Status.CREATED, None, text, owner="user")
    return Project(root, settings, (change,), created=True)
