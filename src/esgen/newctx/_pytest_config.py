"""Make pytest import the new context: `pythonpath` in whichever file configures pytest.

The scaffolded tests import the context's package from the output folder (`src/` by
default), so pytest needs that folder on its `pythonpath`. pytest reads one configuration
file, the first of these in the project's folder: pytest.toml, .pytest.toml, pytest.ini,
.pytest.ini, pyproject.toml (with a `[tool.pytest]` or `[tool.pytest.ini_options]`
table), tox.ini (with `[pytest]`), setup.cfg (with `[tool:pytest]`). TOML files are edited
in place with tomlkit, which keeps every comment and layout choice. INI files would lose
their comments through configparser, so esgen inserts or extends the one line itself and
checks with configparser that nothing else changed; where it cannot (a value continued
over several lines, a comment on its line), it prints the exact line to add.
"""

from __future__ import annotations

import configparser
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError

from esgen.config import ConfigError

__all__ = [
    "PytestConfig",
    "find_pytest_config",
    "folder_setting",
    "has_pythonpath",
    "ini_add_pythonpath",
    "pythonpath_entries",
    "read_exactly",
    "toml_set",
]


@dataclass(frozen=True)
class PytestConfig:
    file: Path
    table: tuple[str, ...]  # the TOML table holding the settings; () for INI files
    section: str = ""  # the INI section, for INI files


def read_exactly(path: Path) -> str:
    # newline="" keeps CRLF line ends as they are: only what esgen adds may change.
    with path.open(encoding="utf-8", newline="") as handle:
        return handle.read()


def _ini_has(path: Path, section: str) -> bool:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(path.read_text(encoding="utf-8"))
    except (configparser.Error, UnicodeDecodeError, OSError):
        return True  # pytest would stop on it too; do not edit around it
    return parser.has_section(section)


def _toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def find_pytest_config(root: Path) -> PytestConfig | None:
    """The file pytest takes its settings from in `root`, in pytest's own order."""
    for name in ("pytest.toml", ".pytest.toml"):
        if (root / name).is_file():
            return PytestConfig(root / name, ("pytest",))
    for name in ("pytest.ini", ".pytest.ini"):
        if (root / name).is_file():
            return PytestConfig(root / name, (), "pytest")
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        pytest_table = _toml(pyproject).get("tool", {}).get("pytest")
        if isinstance(pytest_table, dict):
            native = set(pytest_table) - {"ini_options"}
            if native or "ini_options" not in pytest_table:
                return PytestConfig(pyproject, ("tool", "pytest"))
            return PytestConfig(pyproject, ("tool", "pytest", "ini_options"))
    if (root / "tox.ini").is_file() and _ini_has(root / "tox.ini", "pytest"):
        return PytestConfig(root / "tox.ini", (), "pytest")
    if (root / "setup.cfg").is_file() and _ini_has(root / "setup.cfg", "tool:pytest"):
        return PytestConfig(root / "setup.cfg", (), "tool:pytest")
    return None


def folder_setting(root: Path, folder: Path) -> str:
    """How a configuration file in `root` names `folder`: relative, with forward slashes."""
    relative = PurePosixPath(folder.relative_to(root).as_posix())
    return str(relative) if str(relative) else "."


def _same_folder(root: Path, entry: str, folder: Path) -> bool:
    return (root / entry).resolve() == folder.resolve()


def pythonpath_entries(value: object) -> list[str] | None:
    """The folders of a `pythonpath` value, or None when it is neither a string nor a list
    of strings (then esgen does not edit it)."""
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def has_pythonpath(root: Path, config: PytestConfig, folder: Path) -> bool:
    """Whether pytest, configured by `config`, already puts `folder` on sys.path."""
    if config.section:
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            parser.read_string(config.file.read_text(encoding="utf-8"))
            value: object = parser.get(config.section, "pythonpath", fallback="")
        except (configparser.Error, UnicodeDecodeError, OSError):
            return False
    else:
        value = _toml(config.file)
        for key in config.table:
            value = value.get(key, {}) if isinstance(value, dict) else {}
        value = value.get("pythonpath", []) if isinstance(value, dict) else []
    entries = pythonpath_entries(value) or []
    return any(_same_folder(root, entry, folder) for entry in entries)


def toml_set(path: Path, text: str, keys: tuple[str, ...], value: str | list[str]) -> str:
    """`text` (the file at `path`) with the key at `keys` set to `value` in its existing
    table, every other byte kept as it was.

    The result is read back with tomllib and must hold exactly the old settings with that
    one value changed: tomlkit is careful, and this makes sure.
    """
    *tables, key = keys
    try:
        document = tomlkit.parse(text)
        container: Any = document
        for name in tables:
            container = container[name]
        container[key] = value
    except (TOMLKitError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot edit it ({exc})") from None
    new = tomlkit.dumps(document)
    if "\r\n" in text and "\n" not in text.replace("\r\n", ""):
        new = new.replace("\r\n", "\n").replace("\n", "\r\n")  # added lines end as the rest
    meant = tomllib.loads(text)
    table = meant
    for name in tables:
        table = table[name]
    table[key] = value
    try:
        got = tomllib.loads(new)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: editing it would break it ({exc})") from None
    if got != meant:
        raise ConfigError(f"{path}: editing it would change other settings")
    return new


def _ini_sections(text: str) -> dict[str, dict[str, str]] | None:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(text)
    except configparser.Error:
        return None
    return {name: dict(parser[name]) for name in parser.sections()}


def ini_add_pythonpath(text: str, section: str, folder: str) -> str | None:
    """`text` (an INI file) with `folder` added to `pythonpath` in `section`, every other
    line as it was; None when that cannot be done with certainty."""
    if any(ch.isspace() for ch in folder):
        return None  # INI pythonpath splits on whitespace: such a folder cannot be named
    lines = text.splitlines(keepends=True)
    newline = "\r\n" if "\r\n" in text else "\n"
    header = re.compile(rf"^\[\s*{re.escape(section)}\s*\]$")
    start = next((i for i, line in enumerate(lines) if header.match(line.strip())), None)
    if start is None:
        return None
    body = range(start + 1, len(lines))
    end = next((i for i in body if lines[i].lstrip().startswith("[")), len(lines))
    key = re.compile(r"^pythonpath\s*[=:]", re.IGNORECASE)
    found = next((i for i in range(start + 1, end) if key.match(lines[i])), None)
    if found is None:
        if not lines[start].endswith(("\n", "\r")):
            lines[start] += newline
        lines.insert(start + 1, f"pythonpath = {folder}{newline}")
    else:
        value = lines[found].rstrip("\r\n")
        following = lines[found + 1] if found + 1 < end else ""
        continued = following[:1] in (" ", "\t") and following.strip()
        if continued or "#" in value or ";" in value:
            return None  # a value over several lines, or a comment esgen might misplace
        lines[found] = f"{value} {folder}" + lines[found][len(value) :]
    new = "".join(lines)
    # Read back: the same settings, but for one more folder on the pythonpath.
    before, after = _ini_sections(text), _ini_sections(new)
    if before is None or after is None:
        return None
    old = before[section].get("pythonpath", "").split()
    meant = {**before, section: {**before[section], "pythonpath": [*old, folder]}}
    got = {**after, section: {**after[section], "pythonpath": after[section]["pythonpath"].split()}}
    return new if got == meant else None
