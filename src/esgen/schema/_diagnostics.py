"""Diagnostics: what went wrong, and exactly where in which schema file."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from esgen._errors import EsgenError

__all__ = ["Diagnostic", "Location", "SchemaError", "Severity", "display_path"]


def display_path(path: Path) -> str:
    """A path as users want to read it: relative to where esgen runs when that is shorter."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)
    return rel if not rel.startswith(".." + os.sep + "..") else str(path)


@dataclass(frozen=True, slots=True, order=True)
class Location:
    """A point in a schema file; line and column count from 1, like editors do."""

    file: Path
    line: int
    col: int

    def __str__(self) -> str:
        if self.line == 0:  # the whole file or directory, not a point in it
            return display_path(self.file)
        return f"{display_path(self.file)}:{self.line}:{self.col}"

    def shifted(self, columns: int) -> Location:
        return Location(self.file, self.line, self.col + columns)


class Severity(Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    location: Location
    code: str
    message: str
    severity: Severity = Severity.ERROR

    def __str__(self) -> str:
        return f"{self.location}: {self.severity.value}[{self.code}]: {self.message}"

    def sort_key(self) -> tuple[str, int, int, str, str]:
        loc = self.location
        return (str(loc.file), loc.line, loc.col, self.code, self.message)


class SchemaError(EsgenError, ValueError):
    """The schema files do not load or validate; carries every diagnostic of the run."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = sorted(diagnostics, key=Diagnostic.sort_key)
        errors = sum(1 for d in self.diagnostics if d.severity is Severity.ERROR)
        super().__init__(f"{errors} error(s) in the schema")

    def render(self) -> str:
        return "\n".join(str(d) for d in self.diagnostics)


def errors_in(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    return [d for d in diagnostics if d.severity is Severity.ERROR]
