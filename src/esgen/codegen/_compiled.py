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
import tempfile
import zipfile
from pathlib import Path

import jinja2

__all__ = ["ARCHIVE", "MANIFEST", "compiled_loader", "sources_digest", "write_archive"]

ARCHIVE = "_compiled.zip"
MANIFEST = "_compiled.json"
FOLDERS = ("generated", "scaffold")  # the code templates; contexts/ and docs/ are apart


def _sources(root: Path) -> list[tuple[str, Path]]:
    found = [
        (path.relative_to(root).as_posix(), path)
        for folder in FOLDERS
        for path in (root / folder).rglob("*")
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


def compiled_loader(root: Path) -> jinja2.BaseLoader | None:
    """The loader of the archive under `root`, or None if it is missing, was made by
    another Jinja version, or from other template text."""
    try:
        manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("jinja") != jinja2.__version__:
        return None
    if manifest.get("sources") != sources_digest(root):
        return None  # a template changed since: the archive would render the old one
    archive = root / ARCHIVE
    return jinja2.ModuleLoader(archive) if archive.is_file() else None


def write_archive(environment: jinja2.Environment, root: Path) -> None:
    """Compile the templates of FOLDERS with `environment` (the generator's, whose
    settings the compiled code bakes in) into the archive under `root`, and its manifest."""
    names = {name for name, _ in _sources(root)}
    with tempfile.TemporaryDirectory() as scratch:
        built = Path(scratch) / ARCHIVE
        environment.compile_templates(
            built, zip="deflated", filter_func=names.__contains__, ignore_errors=False
        )
        _normalise(built, root / ARCHIVE)
    manifest = {"jinja": jinja2.__version__, "sources": sources_digest(root)}
    (root / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def _normalise(built: Path, target: Path) -> None:
    """The archive rewritten with its entries sorted, fixed times and modes: the same
    templates and Jinja give the same bytes, so a review shows no change when none was
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
