"""Paths kept inside the folders esgen was told to use: no `..` out of them, no link below them.

A folder may itself be a link: one named on the command line anywhere, one from the
configuration only into the project (config.check_inside, C003). Below it, every part
of a path esgen writes, removes or reads must be a real folder or file, so that a link in
a checkout (`src/orders -> ../../elsewhere`) cannot send a write, a removal or a read
outside the project. esgen itself never creates links, so a link below its folders is
never its own output.

Standard library only: the run cache imports it before the generator is loaded.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Escape", "base_of", "escape", "regular_files", "shown_path", "tree_files"]


@dataclass(frozen=True)
class Escape:
    """Why a path is not safely inside its folder: `where` is the part to blame (the link,
    or the path itself when it leaves the folder)."""

    where: Path
    why: str


def shown_path(path: Path) -> str:
    """A path relative to where esgen runs, as messages show paths."""
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)


def escape(base: Path, path: Path) -> Escape | None:
    """What takes `path` out of `base`: `..` (compared by spelling, links not followed),
    or a link at or below `base` on the way to it (the path itself included); None when
    it stays inside. Parts that do not exist yet cannot be links, so a path still to be
    created is checked as far as it exists."""
    relative = Path(os.path.relpath(os.path.abspath(path), os.path.abspath(base)))
    if relative.parts[:1] == (os.pardir,):
        return Escape(path, f"is outside {shown_path(base)}")
    current = base
    for part in relative.parts:
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except OSError:
            return None  # not there (or not reachable): nothing further to follow
        if stat.S_ISLNK(mode):
            return Escape(current, f"is a link (to {os.readlink(current)})")
    return None


def base_of(path: Path, bases: Iterable[Path]) -> Path | None:
    """The deepest of `bases` that holds `path` by spelling, or None."""
    target = os.path.abspath(path)
    holding = [
        b for b in bases if os.path.commonpath([target, os.path.abspath(b)]) == os.path.abspath(b)
    ]
    return max(holding, key=lambda b: len(os.path.abspath(b)), default=None)


def regular_files(root: Path, pattern: str = "*") -> Iterator[Path]:
    """Files under `root` whose names match `pattern`, without following or yielding links
    (Path.rglob yields links to files, whose text lives wherever they point)."""
    for folder, dirs, files in os.walk(root):  # os.walk never enters linked folders
        dirs.sort()
        for name in sorted(files):
            path = Path(folder) / name
            try:
                regular = stat.S_ISREG(os.lstat(path).st_mode)
            except OSError:
                continue  # gone meanwhile
            if regular and path.match(pattern):
                yield path


def tree_files(root: Path, suffixes: tuple[str, ...]) -> tuple[list[Path], list[Path]]:
    """Files under `root` whose names end with one of `suffixes`, outside hidden folders
    and not hidden themselves; and, apart, the links with such a name (dangling or not).
    Nothing is followed, so the caller can refuse the links before reading anything; a
    linked folder is not entered (it may hold other files, such as JSON Schemas, whose
    readers check their own paths). `root` itself may be a link (see the module's docstring)."""
    files: list[Path] = []
    links: list[Path] = []
    for folder, dirs, names in os.walk(root):  # never enters linked folders
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if name.startswith(".") or not name.endswith(suffixes):
                continue
            path = here / name
            try:
                mode = os.lstat(path).st_mode
            except OSError:
                continue  # gone meanwhile
            if stat.S_ISLNK(mode):
                links.append(path)
            elif stat.S_ISREG(mode):
                files.append(path)
    return files, links
