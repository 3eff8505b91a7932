"""Project settings from `[tool.esgen]` in pyproject.toml, or from esgen.yaml.

Paths in a configuration file are relative to the file's folder; command-line options
override the file and are relative to where esgen runs.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from esgen._errors import EsgenError
from esgen._formatter import FORMATTERS, Formatter
from esgen._suggest import did_you_mean
from esgen._text import bad_byte

__all__ = [
    "ConfigError",
    "Settings",
    "check_inside",
    "find_config",
    "load_config",
    "load_settings",
]

_KEYS = (
    "schema_dir",
    "out_dir",
    "tests_dir",
    "formatter",
    "line_length",
    "docs_dir",
    "json_schema_remote_refs",
)
_FOLDERS = ("schema_dir", "out_dir", "tests_dir", "docs_dir")


class ConfigError(EsgenError, ValueError):
    """The configuration file or the command line asks for something impossible; one line
    per problem, each located in the file."""


@dataclass(frozen=True)
class Settings:
    root: Path  # the folder the configuration belongs to
    schema_dir: Path
    out_dir: Path
    tests_dir_setting: Path | None  # as configured; see `tests_dir`
    formatter: Formatter
    config_file: Path | None = None
    docs_dir_setting: Path | None = None  # as configured; see `docs_dir`
    # Whether http(s) `$ref`s in json_schema files are fetched (see schema._jsonremote);
    # off, they are refused: the fetched text would land in generated code.
    json_schema_remote_refs: bool = False
    # The folders that come from the configuration file or its defaults, not from the
    # command line: these must resolve inside the project (see check_inside).
    confined: frozenset[str] = frozenset(_FOLDERS)

    @property
    def tests_dir(self) -> Path:
        """Where test modules go: as configured; else `tests` in the project (the folder of
        the configuration file); else, with no configuration, a `tests` folder beside
        `out_dir`."""
        if self.tests_dir_setting is not None:
            return self.tests_dir_setting
        if self.config_file is not None:
            return self.root / "tests"
        return self.out_dir.parent / "tests"

    @property
    def docs_dir(self) -> Path:
        """Where `esgen docs` writes: as configured, else a `docs` folder beside the schemas."""
        return self.docs_dir_setting or self.schema_dir.parent / "docs"

    def with_overrides(
        self,
        schema_dir: Path | None,
        out_dir: Path | None,
        formatter: str | None,
        tests_dir: Path | None = None,
    ) -> Settings:
        result = self
        given: set[str] = set()
        if tests_dir is not None:
            result = replace(result, tests_dir_setting=tests_dir)
            given.add("tests_dir")
        if schema_dir is not None:
            result = replace(result, schema_dir=schema_dir)
            # docs/ beside a schema folder the person named is theirs too
            given |= {"schema_dir"} if self.docs_dir_setting else {"schema_dir", "docs_dir"}
        if out_dir is not None:
            result = replace(result, out_dir=out_dir)
            given.add("out_dir")
            if self.tests_dir_setting is None and self.config_file is None:
                given.add("tests_dir")  # tests/ beside that out_dir, as tests_dir says
        result = replace(result, confined=self.confined - given)
        if formatter is not None:
            result = replace(result, formatter=_formatter(formatter, result.formatter.line_length))
        return result


def find_config(start: Path) -> Path | None:
    """The nearest esgen.yaml, or pyproject.toml with a [tool.esgen] table, upwards."""
    for folder in (start, *start.parents):
        candidate = folder / "esgen.yaml"
        if candidate.is_file():
            return candidate
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and _configures_esgen(pyproject):
            return pyproject
    return None


def _configures_esgen(pyproject: Path) -> bool:
    """Whether the file holds esgen's settings, however TOML spells the table
    (`[tool.esgen]`, `[tool]` with `esgen = {...}` or dotted keys, `tool.esgen.x = ...`)."""
    data = _bytes(pyproject)
    try:
        tool = tomllib.loads(data.decode("utf-8")).get("tool", {})
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        # Broken: ours if it seems to name esgen's table, so that load_settings says what
        # is wrong with it rather than esgen quietly running with the defaults.
        return re.search(rb"tool\s*\.\s*esgen\b|^\s*esgen\s*[.=]", data, re.M) is not None
    return isinstance(tool, dict) and "esgen" in tool


def _bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""  # unreadable: not a configuration esgen can use, nor one to look past


def load_settings(start: Path) -> Settings:
    """The settings of the nearest configuration above `start`; the defaults, rooted at
    `start`, when there is none."""
    config = find_config(start)
    if config is None:
        return _settings(start, {}, None)
    return load_config(config)


def load_config(config: Path) -> Settings:
    """The settings of one configuration file: an esgen.yaml, or a pyproject.toml with a
    [tool.esgen] table (`esgen ... --config FILE`). Its paths are relative to its folder."""
    if not config.is_file():
        what = "is a folder" if config.is_dir() else "does not exist"
        raise ConfigError(
            f"configuration file {_shown(config)} {what}; give an esgen.yaml, or a "
            "pyproject.toml with a [tool.esgen] table"
        )
    yaml_file = config.suffix in (".yaml", ".yml")
    if not yaml_file and not _configures_esgen(config):
        raise ConfigError(
            f"{_shown(config)} has no [tool.esgen] table; add one (it may be empty: every "
            "setting has a default), or give an esgen.yaml"
        )
    text = _read(config)
    table: Any
    if yaml_file:
        import yaml

        try:
            table = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            from esgen.schema import explain_yaml_error

            problem = explain_yaml_error(exc, text)
            raise ConfigError(
                f"{_shown(config)}:{problem.line}:{problem.col}: error[C000]: invalid YAML: "
                f"{problem.message}"
            ) from None
    else:
        try:
            table = tomllib.loads(text).get("tool", {}).get("esgen", {})
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(_toml_error(config, exc)) from None
    if not isinstance(table, dict):
        raise ConfigError(
            f"{_shown(config)}: error[C002]: the esgen settings must be a table of keys "
            f"(got {type(table).__name__})"
        )
    return _settings(config.parent, table, config)


def check_inside(settings: Settings) -> None:
    """Raise ConfigError (C003) for each folder from the configuration or its defaults
    that resolves outside the project: a committed link (`src -> ../elsewhere`) must not
    do what a configured `..` may not. Links that stay inside the project are followed."""
    root = _resolved(settings.root)
    problems = []
    for key in _FOLDERS:
        if key not in settings.confined:
            continue
        folder: Path = getattr(settings, key)
        resolved = _resolved(folder)
        if resolved is not None and root is not None and resolved.is_relative_to(root):
            continue
        link = _leaving_link(settings.root, root, folder)
        config = settings.config_file
        where = _where(config, key) if config else _shown(link)
        default = " (the default)" if config and where == _shown(config) else ""
        project = f"the folder of {_shown(config)}" if config else "the folder esgen runs in"
        leads = _shown(resolved) if resolved else "nowhere (a loop of links)"
        via = f"the link {_shown(link)} (to {os.readlink(link)})" if link.is_symlink() else ""
        problems.append(
            f"{where}: error[C003]: {key} {_shown(folder)!r}{default} leads outside the "
            f"project ({project}) through {via or 'a link'}: it resolves to {leads}; "
            "configured folders stay inside the project, link or not: make the folder a "
            "real one (or a link into the project), or pass the folder on the command line"
        )
    if problems:
        raise ConfigError("\n".join(problems))


def _resolved(path: Path) -> Path | None:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a loop of links (RuntimeError before Python 3.13)
        return None


def _leaving_link(root: Path, resolved_root: Path | None, folder: Path) -> Path:
    """The first link on the way from `root` to `folder` whose target is not in the
    project; the folder itself when no single link is to blame."""
    current = root
    for part in Path(os.path.relpath(os.path.abspath(folder), os.path.abspath(root))).parts:
        current = current / part
        if current.is_symlink():
            target = _resolved(current)
            if target is None or resolved_root is None or not target.is_relative_to(resolved_root):
                return current
    return folder


def _shown(path: Path) -> str:
    """A path relative to where esgen runs, as every message shows paths."""
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)


def _read(config: Path) -> str:
    data = _bytes(config)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = bad_byte(data, exc)
        raise ConfigError(
            f"{_shown(config)}:{bad.line}:{bad.column}: error[C000]: the file is not UTF-8 "
            f"text (byte 0x{bad.byte:02x}); save it as UTF-8"
        ) from None


def _toml_error(config: Path, exc: tomllib.TOMLDecodeError) -> str:
    """tomllib's message with its position moved to the front, as every diagnostic has it."""
    message = str(exc)
    match = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
    where = _shown(config)
    if match:
        where += f":{match.group(1)}:{match.group(2)}"
        message = message[: match.start()]
    elif message.endswith("(at end of document)"):
        message = message.removesuffix("(at end of document)").rstrip() + " at the end of the file"
    return f"{where}: error[C000]: invalid TOML: {message}"


def _where(config: Path | None, key: str) -> str:
    """`file:line:col` of a key in the configuration file, for messages."""
    if config is None:
        return "command line"
    for number, line in enumerate(_read(config).splitlines(), 1):
        match = re.match(rf"^(\s*){re.escape(key)}\s*[=:]", line)
        if match:
            return f"{_shown(config)}:{number}:{len(match.group(1)) + 1}"
    return _shown(config)


def _settings(root: Path, table: dict[str, Any], config: Path | None) -> Settings:
    # Every problem of the table at once, in the file's order, one line each.
    problems: dict[str, str] = {}

    def problem(key: str, message: str) -> None:
        problems.setdefault(key, f"{_where(config, key)}: {message}")

    for key in table:
        if key not in _KEYS:
            hint = did_you_mean(str(key), _KEYS) or f" (known: {', '.join(_KEYS)})"
            problem(str(key), f"error[C001]: unknown esgen setting {key!r}{hint}")

    def path(key: str, default: str) -> Path:
        value = table.get(key, default)
        if not isinstance(value, str) or not value:
            problem(key, f"error[C002]: {key} must be a path (got {value!r})")
            return root
        # The configuration travels with a checkout: a cloned repository must not point
        # esgen's reads or writes outside itself. The command line may (a person typed it).
        normal = os.path.normpath(value)
        if os.path.isabs(value) or normal.split(os.sep)[0] == os.pardir:
            problem(
                key,
                f"error[C003]: {key} {value!r} is outside the project (the folder of "
                f"{_shown(config) if config else 'the configuration'}); configured folders "
                "stay inside it: give the path relative to it, or pass the folder on the "
                "command line",
            )
            return root
        return root / value

    line_length = table.get("line_length", 88)
    if not isinstance(line_length, int) or isinstance(line_length, bool) or line_length < 40:
        problem("line_length", "error[C002]: line_length must be an integer >= 40")
        line_length = 88
    remote_refs = table.get("json_schema_remote_refs", False)
    if not isinstance(remote_refs, bool):
        problem(
            "json_schema_remote_refs",
            f"error[C002]: json_schema_remote_refs must be true or false (got {remote_refs!r})",
        )
        remote_refs = False
    formatter = Formatter()  # stands in for a bad one: the run stops below
    try:
        formatter = _formatter(table.get("formatter", "black"), line_length)
    except ConfigError as exc:
        problem("formatter", f"error[C002]: {exc}")
    settings = Settings(
        root=root,
        schema_dir=path("schema_dir", "schemas"),
        out_dir=path("out_dir", "src"),
        tests_dir_setting=path("tests_dir", "tests") if "tests_dir" in table else None,
        formatter=formatter,
        config_file=config,
        docs_dir_setting=path("docs_dir", "docs") if "docs_dir" in table else None,
        json_schema_remote_refs=remote_refs,
    )
    if problems:
        order = [str(key) for key in table]
        raise ConfigError("\n".join(problems[k] for k in sorted(problems, key=order.index)))
    return settings


def _formatter(name: Any, line_length: int) -> Formatter:
    if name not in FORMATTERS:
        raise ConfigError(f"formatter must be one of {', '.join(FORMATTERS)} (got {name!r})")
    return Formatter(name, line_length)
