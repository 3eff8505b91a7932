"""An upstream context's contract as a downstream context reads it: from the upstream's
schema folder, or from the esgen.lock it recorded (when its schema is in another
repository, the lock is what it publishes)."""

from __future__ import annotations

from pathlib import Path

from esgen.compat._errors import CompatError
from esgen.compat._lock import LOCK_NAME, load_lock
from esgen.compat._sides import current_side, shown
from esgen.schema import Context, scan_schema_dir

__all__ = ["load_contract"]


def load_contract(path: Path, *, context: str | None = None, remote_refs: bool = False) -> Context:
    """The context at `path`: a schema folder (loaded like `esgen generate` loads it, every
    error reported) or an esgen.lock file (checked against its fingerprints). Its events say
    whether they are published (`Event.published`).

    `context` picks one when the folder or lock holds several; without it there must be
    exactly one. Raises SchemaError (diagnostics `file:line:col: error[CODE]: ...`) when the
    folder does not load, LockError when the lock cannot be read or was edited, and
    CompatError when the path or the context cannot be found.
    """
    if not path.exists():
        raise CompatError(f"{shown(path)}: no such schema folder or {LOCK_NAME}")
    if path.is_dir():
        if not scan_schema_dir(path)[0] and (path / LOCK_NAME).is_file():
            raise CompatError(
                f"{shown(path)} has no schema files (*.yaml, *.yml); to read the contract "
                f"recorded in its lock, give the lock: {shown(path / LOCK_NAME)}"
            )
        schema = current_side(path, strict=True, remote_refs=remote_refs).schema
    else:
        schema = load_lock(path).schema
    names = ", ".join(sorted(c.name for c in schema.contexts)) or "none"
    if context is not None:
        found = next((c for c in schema.contexts if c.name == context), None)
        if found is None:
            raise CompatError(f"{shown(path)}: no context {context!r} (its contexts: {names})")
        return found
    if len(schema.contexts) != 1:
        raise CompatError(
            f"{shown(path)} holds {len(schema.contexts)} contexts ({names}); a contract is "
            "one context: name it"
        )
    return schema.contexts[0]
