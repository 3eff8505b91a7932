"""Loading the schema of an upstream context that another context subscribes to.

A subscription names where the upstream's schema is: its schema folder (a monorepo) or
its esgen.lock (what another repository commits). Either is loaded through the same
loader and validator as any schema, so a mistake inside the upstream is reported as it
is, at its line in the upstream's files (or in esgen.lock). The upstream's own
subscriptions are not followed: what it consumes is none of its consumers' business, and
two contexts may well subscribe to each other.

The lock is read here rather than through `esgen.compat` (which depends on this package):
a header document, then one document per context in the schema language. Its fingerprints
are compat's to check; a consumer only reads the contract.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from esgen.schema._diagnostics import Diagnostic, Location, Severity
from esgen.schema._jsonrefs import json_schema_folders
from esgen.schema._model import Context
from esgen.schema._yaml import yaml_documents

__all__ = ["LOCK_NAME", "load_upstream"]

LOCK_NAME = "esgen.lock"


def load_upstream(source: Path, name: str, at: Location) -> tuple[Context | None, list[Diagnostic]]:
    """The context `name` of the schema at `source` (a schema folder or an esgen.lock),
    and the errors that kept it from loading; `at` is where the subscription names it."""
    if source.is_dir():
        found, problems = _from_folder(source, at)
    elif source.is_file() and source.name == LOCK_NAME:
        found, problems = _from_lock(source, at)
    elif source.is_file():
        what = "a schema file" if source.suffix in (".yaml", ".yml") else "a file"
        return None, [
            _problem(
                at,
                f"{_shown(source)} is {what}; `from` takes the upstream's schema folder "
                f"(here {_shown(source.parent)}) or its {LOCK_NAME}",
            )
        ]
    else:
        return None, [
            _problem(
                at,
                f"{_shown(source)} does not exist; `from` takes the upstream's schema folder "
                f"or its {LOCK_NAME}, relative to this file",
            )
        ]
    if any(d.severity is Severity.ERROR for d in problems):
        return None, [d for d in problems if d.severity is Severity.ERROR]
    matching = [c for c in found if c.name == name]
    if len(matching) == 1:
        return matching[0], []
    if not matching:
        held = ", ".join(sorted(repr(c.name) for c in found)) or "none"
        return None, [
            _problem(
                at,
                f"{_shown(source)} holds no context {name!r} (its contexts: {held}); the "
                "subscription's key is the upstream context's name",
            )
        ]
    return None, [_problem(at, f"{_shown(source)} holds context {name!r} more than once")]


def _from_folder(root: Path, at: Location) -> tuple[list[Context], list[Diagnostic]]:
    # Imported here: the loader imports the validator, which imports this module.
    from esgen.schema._load import load_sources, read_schema_files, scan_schema_dir

    files, problems = scan_schema_dir(root)
    if problems:
        return [], problems
    if not files:  # said at the subscription's `from`, the line to change
        return [], [_problem(at, f"{_shown(root)} holds no schema files (*.yaml, *.yml)")]
    texts, problems = read_schema_files(files)
    schema, diagnostics = load_sources(
        root,
        texts,
        lambda path: path.read_text(encoding="utf-8"),
        json_schema_folders(root),
        upstreams=False,
    )
    return list(schema.contexts), [*problems, *diagnostics]


def _from_lock(lock: Path, at: Location) -> tuple[list[Context], list[Diagnostic]]:
    from esgen.schema._load import load_sources

    try:
        text = lock.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [], [_problem(at, f"{_shown(lock)} cannot be read as UTF-8 text ({exc})")]
    documents = list(yaml_documents(text))
    try:
        header = yaml.safe_load(documents[0][1])
    except yaml.YAMLError:
        header = None
    if not isinstance(header, dict) or "esgen_lock" not in header:
        return [], [_problem(at, f"{_shown(lock)} is not an esgen lock file")]
    schemas = header.get("json_schemas") or {}
    folder = lock.resolve().parent

    def read(path: Path) -> str:
        # The lock carries the JSON Schema files its types use, by path from its folder.
        key = Path(os.path.relpath(path.resolve(), folder)).as_posix()
        if not isinstance(schemas, dict) or key not in schemas:
            raise FileNotFoundError(f"{key} is not recorded in {LOCK_NAME}")
        return str(schemas[key])

    contexts: list[Context] = []
    problems: list[Diagnostic] = []
    for first_line, body in documents[1:]:
        # Padding keeps the lock's own line numbers, so errors point into esgen.lock.
        schema, diagnostics = load_sources(
            folder, {lock: "\n" * first_line + body}, read, upstreams=False
        )
        contexts.extend(schema.contexts)
        problems.extend(diagnostics)
    return contexts, problems


def _problem(at: Location, message: str) -> Diagnostic:
    return Diagnostic(at, "E409", message)


def _shown(path: Path) -> str:
    return str(Location(path, 0, 0))
