"""Project settings from `[tool.esgen]` in pyproject.toml, or from esgen.yaml.

Paths in a configuration file are relative to the file's folder; command-line options
override the file and are relative to where esgen runs.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from esgen._errors import EsgenError
from esgen._formatter import FORMATTERS, Formatter

__all__ = ["ConfigError", "Settings", "find_config", "load_settings"]

_KEYS = ("schema_dir", "out_dir", "tests_dir", "formatter", "line_length", "docs_dir")


class ConfigError(EsgenError, ValueError):
    """The configuration file or the command line asks for something impossible."""


@dataclass(frozen=True)
class Settings:
    root: Path  # the folder the configuration belongs to
    schema_dir: Path
    out_dir: Path
    tests_dir_setting: Path | None  # as configured; see `tests_dir`
    formatter: Formatter
    config_file: Path | None = None
    docs_dir_setting: Path | None = None  # as configured; see `docs_dir`

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
        if tests_dir is not None:
            result = replace(result, tests_dir_setting=tests_dir)
        if schema_dir is not None:
            result = replace(result, schema_dir=schema_dir)
        if out_dir is not None:
            result = replace(result, out_dir=out_dir)
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
        if pyproject.is_file() and re.search(
            r"^\[tool\.esgen\b", pyproject.read_text(encoding="utf-8"), re.MULTILINE
        ):
            return pyproject
    return None


def load_settings(start: Path) -> Settings:
    config = find_config(start)
    if config is None:
        return _settings(start, {}, None)
    text = config.read_text(encoding="utf-8")
    if config.name == "esgen.yaml":
        import yaml

        try:
            table = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{config}: invalid YAML: {exc}") from exc
    else:
        try:
            table = tomllib.loads(text).get("tool", {}).get("esgen", {})
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{config}: invalid TOML: {exc}") from exc
    if not isinstance(table, dict):
        raise ConfigError(f"{config}: the esgen settings must be a table of keys")
    return _settings(config.parent, table, config)


def _where(config: Path | None, key: str) -> str:
    """`file:line:col` of a key in the configuration file, for messages."""
    if config is None:
        return "command line"
    for number, line in enumerate(config.read_text(encoding="utf-8").splitlines(), 1):
        match = re.match(rf"^(\s*){re.escape(key)}\s*[=:]", line)
        if match:
            return f"{config}:{number}:{len(match.group(1)) + 1}"
    return str(config)


def _settings(root: Path, table: dict[str, Any], config: Path | None) -> Settings:
    for key in table:
        if key not in _KEYS:
            matches = difflib.get_close_matches(str(key), _KEYS, n=1)
            hint = f"; did you mean {matches[0]!r}?" if matches else f" (known: {', '.join(_KEYS)})"
            raise ConfigError(
                f"{_where(config, key)}: error[C001]: unknown esgen setting {key!r}{hint}"
            )

    def path(key: str, default: str) -> Path:
        value = table.get(key, default)
        if not isinstance(value, str) or not value:
            raise ConfigError(
                f"{_where(config, key)}: error[C002]: {key} must be a path (got {value!r})"
            )
        return root / value

    line_length = table.get("line_length", 88)
    if not isinstance(line_length, int) or isinstance(line_length, bool) or line_length < 40:
        raise ConfigError(
            f"{_where(config, 'line_length')}: error[C002]: line_length must be an integer >= 40"
        )
    formatter_name = table.get("formatter", "black")
    try:
        formatter = _formatter(formatter_name, line_length)
    except ConfigError as exc:
        raise ConfigError(f"{_where(config, 'formatter')}: error[C002]: {exc}") from None
    return Settings(
        root=root,
        schema_dir=path("schema_dir", "schemas"),
        out_dir=path("out_dir", "src"),
        tests_dir_setting=path("tests_dir", "tests") if "tests_dir" in table else None,
        formatter=formatter,
        config_file=config,
        docs_dir_setting=path("docs_dir", "docs") if "docs_dir" in table else None,
    )


def _formatter(name: Any, line_length: int) -> Formatter:
    if name not in FORMATTERS:
        raise ConfigError(f"formatter must be one of {', '.join(FORMATTERS)} (got {name!r})")
    return Formatter(name, line_length)
