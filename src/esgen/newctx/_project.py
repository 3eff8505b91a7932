"""The project a new context joins, and the configuration it needs.

The project is the nearest folder, from `--dir` upwards, with an esgen.yaml or a
pyproject.toml; without one, or when `--dir` does not exist yet, `--dir` itself. Its
`[tool.esgen]` settings are used as they are. A pyproject.toml without them gets tables
appended at its end, leaving every byte before them as it was; a project without one
gets a small pyproject.toml.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from esgen._formatter import Formatter
from esgen.codegen import Change, Status
from esgen.config import ConfigError, Settings, load_settings

__all__ = ["Project", "locate_project"]

_DEFAULTS = {"schema_dir": "schemas", "out_dir": "src", "tests_dir": "tests"}
_PYTEST_FILES = ("pytest.ini", ".pytest.ini", "tox.ini", "setup.cfg")


@dataclass(frozen=True)
class Project:
    root: Path
    settings: Settings
    config_change: Change | None  # pyproject.toml created or appended to
    notes: tuple[str, ...] = ()


def locate_project(start: Path) -> Project:
    start = start.absolute()
    if not start.exists():
        # A folder that does not exist yet is a new project, even inside another one.
        return _fresh(start)
    for folder in (start, *start.parents):
        if (folder / "esgen.yaml").is_file():
            settings = load_settings(folder)
            return Project(folder, settings, None, _pytest_notes(folder, settings))
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file():
            return _existing(folder, pyproject)
    return _fresh(start)


def _pytest_notes(root: Path, settings: Settings) -> tuple[str, ...]:
    """For a project esgen already configures: does pytest find the generated packages?"""
    folder = os.path.relpath(settings.out_dir, root).replace(os.sep, "/")
    pyproject = root / "pyproject.toml"
    paths: list[str] = []
    if pyproject.is_file():
        with suppress(tomllib.TOMLDecodeError, OSError):
            options = tomllib.loads(pyproject.read_text(encoding="utf-8"))
            found = options.get("tool", {}).get("pytest", {}).get("ini_options", {})
            paths = [str(p).rstrip("/") for p in found.get("pythonpath", [])]
    if folder in paths or any((root / name).is_file() for name in _PYTEST_FILES):
        return ()  # configured here, or in a file we do not read
    return (
        f"pytest must import the context from {folder}/: add pythonpath = [{folder!r}] "
        "to [tool.pytest.ini_options] (or your pytest configuration)",
    )


def _default_settings(root: Path, config: Path) -> Settings:
    # What load_settings reads back from the table esgen writes.
    return Settings(
        root=root,
        schema_dir=root / _DEFAULTS["schema_dir"],
        out_dir=root / _DEFAULTS["out_dir"],
        tests_dir_setting=root / _DEFAULTS["tests_dir"],
        formatter=Formatter("black", 88),
        config_file=config,
    )


def _toml_table(name: str, values: dict[str, Any], newline: str) -> str:
    # JSON strings and arrays of them are valid TOML values.
    lines = ["", f"[{name}]", *(f"{key} = {json.dumps(v)}" for key, v in values.items())]
    return newline.join(lines) + newline


def _read_exactly(path: Path) -> str:
    # newline="" keeps CRLF line ends as they are: the file must not change but at its end.
    with path.open(encoding="utf-8", newline="") as handle:
        return handle.read()


def _existing(root: Path, pyproject: Path) -> Project:
    text = _read_exactly(pyproject)
    try:
        parsed = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{pyproject}: invalid TOML: {exc}") from None
    tool = parsed.get("tool", {})
    if "esgen" in tool:
        settings = load_settings(root)
        return Project(root, settings, None, _pytest_notes(root, settings))
    newline = "\r\n" if "\r\n" in text else "\n"
    added = _toml_table("tool.esgen", _DEFAULTS, newline)
    notes = []
    pytest_config = tool.get("pytest", {}).get("ini_options")
    elsewhere = [name for name in _PYTEST_FILES if (root / name).is_file()]
    if pytest_config is None and not elsewhere:
        added += _toml_table("tool.pytest.ini_options", {"pythonpath": ["src"]}, newline)
    elif "src" not in (pytest_config or {}).get("pythonpath", []):
        notes.append(
            'pytest must import the context from src/: add pythonpath = ["src"] to your '
            "pytest configuration unless it already finds it"
        )
    separator = "" if not text or text.endswith("\n") else newline
    new = text + separator + added
    _check_appended(pyproject, new, added)
    change = Change(pyproject, Status.UPDATED, text, new, owner="user")
    return Project(root, _default_settings(root, pyproject), change, tuple(notes))


def _check_appended(pyproject: Path, new: str, added: str) -> None:
    """The appended tables must parse as intended (say, not clash with a `[tool]` table
    that spells them inline); otherwise the user adds them by hand."""
    try:
        esgen = tomllib.loads(new).get("tool", {}).get("esgen")
    except tomllib.TOMLDecodeError as exc:
        esgen = exc
    if esgen != _DEFAULTS:
        raise ConfigError(
            f"{pyproject}: cannot append the esgen settings without breaking the file "
            f"({esgen}); add these lines to it yourself and run `esgen new` again:\n{added}"
        )


def _project_name(folder: Path, fallback: str) -> str:
    name = re.sub(r"[-_.\s]+", "-", folder.name).strip("-").lower()
    return name if re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?", name) else fallback


def _fresh(root: Path) -> Project:
    pyproject = root / "pyproject.toml"
    project = {
        "name": _project_name(root, "my-service"),
        "version": "0.1.0",
        "requires-python": ">=3.11",
        "dependencies": ["esgen"],
    }
    text = _toml_table("project", project, "\n").lstrip("\n")
    text += _toml_table("tool.esgen", _DEFAULTS, "\n")
    text += _toml_table(
        "tool.pytest.ini_options", {"pythonpath": ["src"], "testpaths": ["tests"]}, "\n"
    )
    change = Change(pyproject, Status.CREATED, None, text, owner="user")
    return Project(root, _default_settings(root, pyproject), change)
