"""Where a `json_schema:` file may be, and which `$ref`s in it esgen accepts.

The file's text lands in generated code, so it must come from the project: the schema
folder or, below the folder of the project's configuration, anywhere (shared JSON Schemas
beside the schemas). An absolute path, a `..` out of those folders or a link on the way
is refused, as is a `$ref` to anything but a place in the same document: esgen hands
datamodel-code-generator the text alone, so a `$ref` to another file would be resolved
against wherever esgen runs and escape the run cache's and the lock's digests, and a
`$ref` to a URL would fetch whatever that server answers into the generated code.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from esgen._paths import base_of, escape, shown_path

__all__ = ["json_schema_folders", "path_problem", "ref_problems"]

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


def ref_problems(schema: object) -> list[str]:
    """One line per `$ref` that leaves the document."""
    problems = []
    for ref in _refs(schema):
        if ref.startswith("#"):
            continue
        scheme = urlsplit(ref).scheme
        if len(scheme) > 1:  # one letter is a Windows drive, not a scheme
            problems.append(
                f"$ref {ref!r} is remote; esgen does not fetch references (the answer would "
                "land in generated code): copy the definitions into this file under $defs"
            )
        else:
            problems.append(
                f"$ref {ref!r} names another file; esgen reads only the file json_schema "
                "names: move the definitions into it under $defs and refer to '#/$defs/...'"
            )
    return problems


def _refs(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _REF_KEYS and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)
