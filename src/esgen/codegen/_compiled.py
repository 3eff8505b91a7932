"""esgen's code templates compiled ahead of time, shipped beside them.

Parsing and compiling the templates under `generated/` and `scaffold/` costs every
`esgen generate` about a tenth of a second; Jinja's `compile_templates` turns them into
Python modules once, and `ModuleLoader` loads those instead. The archive is used only
when it was made by the Jinja version installed, from the templates as they are now (a
digest of their text is kept beside it); otherwise the templates compile from source,
as they always did, and the output is the same. `make goldens` rewrites the archive.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
import zipfile
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any

import jinja2

__all__ = [
    "ARCHIVE",
    "MANIFEST",
    "archived",
    "compiled_loader",
    "settings",
    "sources_digest",
    "write_archive",
]

ARCHIVE = "_compiled.zip"
MANIFEST = "_compiled.json"
FOLDERS = ("generated", "scaffold")  # the code templates; contexts/ and docs/ are apart

# What the compiled code bakes in besides the templates' text: a change to any of these
# settings of the environment makes the archive stale.
_SETTINGS = (
    "block_start_string",
    "block_end_string",
    "variable_start_string",
    "variable_end_string",
    "comment_start_string",
    "comment_end_string",
    "line_statement_prefix",
    "line_comment_prefix",
    "trim_blocks",
    "lstrip_blocks",
    "newline_sequence",
    "keep_trailing_newline",
    "autoescape",
    "optimized",
)


def settings(environment: jinja2.Environment) -> dict[str, Any]:
    """The environment's settings the compiled code depends on, as JSON values."""
    return {name: repr(getattr(environment, name)) for name in _SETTINGS}


def _sources(root: Path) -> list[tuple[str, Path]]:
    found = [
        (path.relative_to(root).as_posix(), path)
        for folder in FOLDERS
        for path in (root / folder).rglob("*.jinja")
        if path.is_file()
    ]
    return sorted(found)


def sources_digest(root: Path) -> str:
    """A digest of the compiled templates' names and text."""
    digest = hashlib.sha256()
    for name, path in _sources(root):
        digest.update(f"{len(name)}:{name}".encode())
        text = path.read_bytes()
        digest.update(f"{len(text)}:".encode() + text)
    return digest.hexdigest()


def compiled_loader(root: Path, environment: jinja2.Environment) -> jinja2.BaseLoader | None:
    """The loader of the archive under `root` for `environment`, or None if the archive
    is missing, or was made by another Jinja version, with other settings or from other
    template text."""
    try:
        manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("jinja") != jinja2.__version__:
        return None
    if manifest.get("settings") != settings(environment):
        return None
    if manifest.get("sources") != sources_digest(root):
        return None  # a template changed since: the archive would render the old one
    archive = root / ARCHIVE
    return _LockedModuleLoader(archive) if archive.is_file() else None


# jinja2's ModuleLoader imports a template's module and then takes it out of sys.modules,
# unlocked: two threads loading templates at once could each lose the other's module.
_LOADING = threading.Lock()


class _LockedModuleLoader(jinja2.ModuleLoader):
    def load(
        self,
        environment: jinja2.Environment,
        name: str,
        globals: MutableMapping[str, Any] | None = None,
    ) -> jinja2.Template:
        with _LOADING:
            return super().load(environment, name, globals)


def write_archive(environment: jinja2.Environment, root: Path) -> None:
    """Compile the templates of FOLDERS with `environment` (the generator's, whose
    settings the compiled code bakes in) into the archive under `root`, and its manifest."""
    names = {name for name, _ in _sources(root)}
    with tempfile.TemporaryDirectory() as scratch:
        built = Path(scratch) / ARCHIVE
        environment.compile_templates(
            built, zip="deflated", filter_func=names.__contains__, ignore_errors=False
        )
        _replace(root / ARCHIVE, lambda path: _normalise(built, path))
    manifest = {
        "jinja": jinja2.__version__,
        "settings": settings(environment),
        "sources": sources_digest(root),
    }
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    _replace(root / MANIFEST, lambda path: path.write_text(text, encoding="utf-8"))


def archived(path: Path) -> dict[str, bytes]:
    """The archive's entries and their text: what two archives are compared by (zlib
    builds may compress the same text to other bytes)."""
    with zipfile.ZipFile(path) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def _replace(target: Path, write: Callable[[Path], object]) -> None:
    """Write a file beside `target`, then put it in its place: never half of one."""
    scratch = target.with_name(f".{target.name}.tmp")
    try:
        write(scratch)
        os.replace(scratch, target)
    finally:
        scratch.unlink(missing_ok=True)


def _normalise(built: Path, target: Path) -> None:
    """The archive rewritten with its entries sorted, fixed times and modes: the same
    templates and Jinja give the same archive, so a review shows no change when none was
    made."""
    with zipfile.ZipFile(built) as source:
        entries = sorted(source.infolist(), key=lambda info: info.filename)
        contents = [(info.filename, source.read(info)) for info in entries]
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        for name, data in contents:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            out.writestr(info, data)
