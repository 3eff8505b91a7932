"""Where a `json_schema:` file may be, and which `$ref`s in it esgen accepts.

The file's text lands in generated code, so it must come from the project: the schema
folder or, below the folder of the project's configuration, anywhere (shared JSON Schemas
beside the schemas). An absolute path, a `..` out of those folders or a link on the way
is refused; the same rules hold for the files its `$ref`s name (see `_jsonbundle`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from esgen._paths import base_of, escape, shown_path

__all__ = ["json_schema_folders", "path_problem"]

_REF_KEYS = ("$ref", "$dynamicRef", "$recursiveRef")


def json_schema_folders(schema_dir: Path) -> tuple[Path, ...]:
    """The schema folder, and the folder of the project's configuration when there is one."""
    from esgen.config import find_config  # the configuration module imports the schema's

    config = find_config(schema_dir.resolve())
    return (schema_dir,) if config is None else (schema_dir, config.parent)


def path_problem(written: str, path: Path, folders: Sequence[Path]) -> str | None:
    """Why the file `written` (found at `path`) may not be read, or None."""
    allowed = ", ".join(shown_path(f) for f in folders)
    if os.path.isabs(written) or written.startswith("~"):
        return f"{written!r} is an absolute path; give it relative to this file, inside {allowed}"
    base = base_of(Path(os.path.abspath(path)), [Path(os.path.abspath(f)) for f in folders])
    if base is None:
        return f"{written!r} leads out of the project's folders ({allowed}); copy it into them"
    problem = escape(base, Path(os.path.abspath(path)))
    if problem is not None:
        return (
            f"{written!r} goes through {shown_path(problem.where)}, which {problem.why}; "
            "esgen reads JSON Schema files only from inside the project, never through a link"
        )
    return None
