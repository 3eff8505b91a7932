"""The two sides of a comparison: the schema as it is, and what it is compared against.

Both are loaded into the same validated model, so every rule reads one kind of input whether
the old side came from a folder, a git ref or esgen.lock. A side also knows how to show its
locations: `main:schemas/bank.yaml:12:5` for a git ref, `esgen.lock:40:9` for the lock.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from esgen.compat._errors import CompatError
from esgen.compat._git import read_tree, repository_root
from esgen.schema import (
    Diagnostic,
    Location,
    SchemaError,
    SchemaSet,
    Severity,
    json_schema_folders,
    load_sources,
    read_schema_files,
    scan_schema_dir,
)

__all__ = [
    "TOLERATED",
    "Side",
    "current_side",
    "directory_side",
    "git_side",
    "load_tolerant",
    "shown",
]

# Schema errors compat reports better itself (rule ES105, with both sides' locations).
TOLERATED = frozenset({"E500"})

Reader = Callable[[Path], str]


def shown(path: Path) -> str:
    """A path as diagnostics show it: relative to where esgen runs when that is shorter."""
    return str(Location(path, 0, 0))


@dataclass(frozen=True)
class Side:
    schema: SchemaSet
    kind: Literal["files", "git", "lock"]
    label: str  # how reports name this side: "main", "esgen.lock", "../v1/schemas"
    show_file: Callable[[Path], str] = shown
    detail: Mapping[str, str] = field(default_factory=dict)  # for --format json

    def where(self, location: Location | None) -> str | None:
        return None if location is None else _where(location, self.show_file)


def _where(location: Location, show: Callable[[Path], str]) -> str:
    file = show(location.file)
    return file if location.line == 0 else f"{file}:{location.line}:{location.col}"


def load_tolerant(
    root: Path,
    texts: Mapping[Path, str],
    read: Reader,
    problems: list[Diagnostic] | None = None,
    tolerate: frozenset[str] = TOLERATED,
    folders: Sequence[Path] | None = None,
    *,
    remote_refs: bool = False,
) -> SchemaSet:
    """Load like `load_schema_dir`, but let through the errors compat reports itself.
    `folders`, `remote_refs`: as for `load_sources` (`folders` given when `read` reads the
    disk)."""
    schema, diagnostics = load_sources(root, texts, read, folders, remote_refs=remote_refs)
    errors = [
        d
        for d in [*(problems or []), *diagnostics]
        if d.severity is Severity.ERROR and d.code not in tolerate
    ]
    if errors:
        raise SchemaError(errors)
    return schema


def _read_disk(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _disk_texts(root: Path) -> tuple[dict[Path, str], list[Diagnostic]]:
    files, linked = scan_schema_dir(root)
    if linked:
        raise SchemaError(linked)  # refused before anything is read, as by generate
    if not files:
        msg = f"no schema files (*.yaml, *.yml) in {root}"
        raise SchemaError([Diagnostic(Location(root, 0, 0), "E105", msg)])
    return read_schema_files(files)


def current_side(schema_dir: Path, *, strict: bool = False, remote_refs: bool = False) -> Side:
    """The schema as it is on disk now; SchemaError when it does not load (`strict`: when
    it has any error at all, as `esgen lock` wants). `remote_refs`: as for `load_sources`."""
    texts, problems = _disk_texts(schema_dir)
    tolerate = frozenset() if strict else TOLERATED
    schema = load_tolerant(
        schema_dir,
        texts,
        _read_disk,
        problems,
        tolerate,
        json_schema_folders(schema_dir),
        remote_refs=remote_refs,
    )
    return Side(schema, "files", shown(schema_dir), detail={"path": shown(schema_dir)})


def _old_side_error(exc: SchemaError, side_label: str, show: Callable[[Path], str]) -> CompatError:
    lines = [
        f"{_where(d.location, show)}: {d.severity.value}[{d.code}]: {d.message}"
        for d in exc.diagnostics
    ]
    return CompatError(
        f"the schema at {side_label} does not load, so there is nothing sound to compare "
        "with:\n" + "\n".join(lines)
    )


def directory_side(folder: Path, *, remote_refs: bool = False) -> Side:
    label = shown(folder)
    try:
        texts, problems = _disk_texts(folder)
        schema = load_tolerant(
            folder,
            texts,
            _read_disk,
            problems,
            folders=json_schema_folders(folder),
            remote_refs=remote_refs,
        )
    except SchemaError as exc:
        raise _old_side_error(exc, label, shown) from None
    return Side(schema, "files", label, detail={"path": label})


def git_side(schema_dir: Path, ref: str, *, remote_refs: bool = False) -> Side:
    """The schema folder as it was at `ref`; empty when the folder did not exist there.
    Remote `$ref`s (`remote_refs`) are fetched as they are now: a URL has no history."""
    root = repository_root(schema_dir)
    snapshot = read_tree(root, ref, schema_dir)

    def show(path: Path) -> str:
        return f"{ref}:{Path(os.path.relpath(path, root)).as_posix()}"

    # Old files get the paths they would have in this work tree, so JSON Schema files they
    # refer to resolve the same way; `show` turns them into `REF:path` for people.
    folder = root / snapshot.folder if snapshot.folder else root
    texts = {root / path: text for path, text in snapshot.files.items()}
    try:
        schema = load_tolerant(folder, texts, snapshot.read, remote_refs=remote_refs)
    except SchemaError as exc:
        raise _old_side_error(exc, ref, show) from None
    detail = {"ref": ref, "commit": snapshot.commit, "path": snapshot.folder or "."}
    return Side(schema, "git", ref, show, detail)
