"""Find the schema files of a directory, and load, check and group them into contexts."""

from __future__ import annotations

import codecs
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from pydantic import ValidationError

from esgen._paths import tree_files
from esgen._text import bad_byte
from esgen.schema._diagnostics import Diagnostic, Location, SchemaError, Severity
from esgen.schema._jsonrefs import json_schema_folders
from esgen.schema._language import Document
from esgen.schema._model import SchemaSet
from esgen.schema._shape import shape_diagnostics
from esgen.schema._validate import Reader, Source, build_context
from esgen.schema._yaml import load_yaml

__all__ = [
    "find_schema_files",
    "load_schema_dir",
    "load_sources",
    "read_schema_files",
    "scan_schema_dir",
]

SUFFIXES = (".yaml", ".yml")
_CONTEXT_LINE = re.compile(r"^context:\s*['\"]?([A-Za-z0-9_]+)", re.MULTILINE)


def find_schema_files(root: Path) -> list[Path]:
    """Every YAML file under `root`, skipping hidden folders, in a stable order; never a
    link (`scan_schema_dir` reports those)."""
    return scan_schema_dir(root)[0]


def scan_schema_dir(root: Path) -> tuple[list[Path], list[Diagnostic]]:
    """The schema files under `root` (as `find_schema_files`), and an E107 for each
    schema file below it that is a link (linked folders are not entered): a schema read
    through a link would come from wherever a checkout aims it (`orders.yaml ->
    ../../secrets.yaml`), so it is refused before anything is read. `root` itself may be
    a link: the user configured it."""
    files, links = tree_files(root, SUFFIXES)
    problems = [
        Diagnostic(
            Location(link, 0, 0),
            "E107",
            f"is a link (to {os.readlink(link)}); esgen reads schema files only from inside "
            "the schema folder, never through a link: put the file itself there",
        )
        for link in links
    ]
    return sorted(files, key=lambda p: p.relative_to(root).as_posix()), problems


def load_schema_dir(root: Path, *, remote_refs: bool = False) -> SchemaSet:
    """Load every context under `root`; raises SchemaError with all diagnostics.
    `remote_refs`: fetch http(s) `$ref`s of json_schema files (json_schema_remote_refs)."""
    files, linked = scan_schema_dir(root)
    if linked:
        raise SchemaError(linked)
    if not files:
        msg = f"no schema files (*.yaml, *.yml) in {root}"
        raise SchemaError([Diagnostic(Location(root, 0, 0), "E105", msg)])
    texts, problems = read_schema_files(files)
    schema, diagnostics = load_sources(
        root, texts, _read_disk, json_schema_folders(root), remote_refs=remote_refs
    )
    all_diagnostics = problems + diagnostics
    if any(d.severity is Severity.ERROR for d in all_diagnostics):
        raise SchemaError(all_diagnostics)
    return schema


def read_schema_files(files: Iterable[Path]) -> tuple[dict[Path, str], list[Diagnostic]]:
    """The text of each file, and a diagnostic for each that cannot be read as UTF-8 text."""
    texts: dict[Path, str] = {}
    problems: list[Diagnostic] = []
    for path in files:
        try:
            data = path.read_bytes()
        except OSError as exc:
            msg = f"cannot read the file: {exc.strerror or exc}"
            problems.append(Diagnostic(Location(path, 0, 0), "E100", msg))
            continue
        if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            msg = "the file is UTF-16 text (it starts with a UTF-16 byte order mark); save as UTF-8"
            problems.append(Diagnostic(Location(path, 1, 1), "E100", msg))
        elif b"\0" in data:
            # Valid UTF-8 may hold NUL, but no YAML does: binary, or UTF-16 without a mark.
            msg = "the file holds NUL bytes: it is binary, or UTF-16 text; save it as UTF-8"
            problems.append(Diagnostic(Location(path, 1, 1), "E100", msg))
        else:
            try:
                texts[path] = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                problems.append(_not_utf8(path, data, exc))
    return texts, problems


def _not_utf8(path: Path, data: bytes, exc: UnicodeDecodeError) -> Diagnostic:
    bad = bad_byte(data, exc)
    return Diagnostic(
        Location(path, bad.line, bad.column),
        "E100",
        f"the file is not UTF-8 text: byte 0x{bad.byte:02x} here is not UTF-8 (files "
        "saved as Latin-1 or Windows-1252 have such bytes); save the file as UTF-8",
    )


def _read_disk(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def load_sources(
    root: Path,
    texts: Mapping[Path, str],
    read: Reader,
    folders: Sequence[Path] | None = None,
    *,
    remote_refs: bool = False,
    upstreams: bool = True,
) -> tuple[SchemaSet, list[Diagnostic]]:
    """Load schema files given as text (from disk, or from a git ref).

    `read` fetches files that schemas refer to, such as JSON Schema files. Returns what
    could be built and every diagnostic; callers decide whether errors are fatal.
    `folders`: where JSON Schema files may be when `read` reads the disk (see
    `json_schema_folders`); None when it reads a git ref or a lock. `remote_refs`: fetch
    the http(s) `$ref`s of JSON Schema files (each URL once) instead of refusing them.
    `upstreams`: load the schemas that subscriptions name (`from`), from the disk; off
    where `read` does not read the disk (a git ref, a lock: their `from` would name a
    folder of another time) and for an upstream itself (see _upstream).
    """
    fetch = None
    if remote_refs:
        from esgen.schema._jsonremote import Fetcher  # urllib, only when it is wanted

        fetch = Fetcher()
    diagnostics: list[Diagnostic] = []
    by_context: dict[str, list[Source]] = {}
    broken: set[str] = set()
    for path in sorted(texts, key=lambda p: p.as_posix()):
        loaded, problems = load_yaml(path, texts[path])
        diagnostics.extend(problems)
        if loaded is None:
            # Its context cannot be checked without it; other contexts still can.
            if match := _CONTEXT_LINE.search(texts[path]):
                broken.add(match.group(1))
            continue
        data = loaded.data
        if not isinstance(data, dict) or "context" not in data:
            if not texts[path].strip():
                msg = "the file is empty; start it with `context: <name>`"
            elif data is None or isinstance(data, dict):
                msg = "the file does not name its context; start it with `context: <name>`"
            else:
                msg = "a schema file must be a mapping that starts with `context: <name>`"
            diagnostics.append(Diagnostic(loaded.at(()), "E105", msg))
            continue
        name = data["context"]
        try:
            doc = Document.model_validate(data)
        except ValidationError as exc:
            diagnostics.extend(shape_diagnostics(exc, loaded))
            if isinstance(name, str):
                broken.add(name)
            continue
        if problems:
            broken.add(doc.context)
        by_context.setdefault(doc.context, []).append(Source(doc, loaded))
    contexts = []
    for name in sorted(by_context):
        if name in broken:
            continue
        context, problems = build_context(
            name,
            by_context[name],
            read,
            folders,
            fetch,
            upstreams=upstreams and folders is not None,
        )
        diagnostics.extend(problems)
        if context is not None:
            contexts.append(context)
    return SchemaSet(root, tuple(contexts)), diagnostics
