"""The files of a template folder, read without following a single link.

A template may come from anyone: a link in it (`src/key.txt -> ~/.ssh/id_rsa`, a folder
linked to `/etc`) would copy whatever it points to into the new project. esgen writes no
links, and recreating one would carry a path that means something else in the project's
layout (roles map to other folders, names are rendered), so any link in a template is
refused, naming it, before anything is rendered or written. The folder given as
`--template` may itself be a link: the user named it.

Only regular files are read, and only up to MAX_FILE_BYTES: a FIFO or a device would
block the read (or never end it), and no template file needs to be that large.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import jinja2
from jinja2.loaders import split_template_path

from esgen._paths import escape
from esgen.newctx._manifest import TemplateError

__all__ = [
    "MAX_FILE_BYTES",
    "ConfinedLoader",
    "TemplateFileError",
    "no_link",
    "read_template_text",
    "template_files",
]

MAX_FILE_BYTES = 10_000_000  # of one template file; a real one is a few kilobytes


def no_link(root: Path, path: Path) -> None:
    """Raise TemplateError when `path` or a folder on the way from `root` is a link."""
    problem = escape(root, path)
    if problem is not None:
        raise TemplateError(
            f"{problem.where}: {problem.why}; templates may not hold links (their targets "
            "would be copied into the project); replace it with the file itself. Nothing "
            "was written"
        )


class TemplateFileError(TemplateError):
    """A template file that cannot be read as text; the message names it already."""


def read_template_text(path: Path) -> str:
    """The UTF-8 text of the template file `path`; TemplateFileError when it is not a
    regular file, is larger than MAX_FILE_BYTES or is not UTF-8."""
    # Opened without blocking and checked on the open file, so it cannot be swapped for
    # a FIFO between a check and the read.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise _not_regular(path)
        data = file.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise TemplateFileError(
            f"{path}: larger than {MAX_FILE_BYTES:,} bytes, the most a template file may "
            "hold. Nothing was written"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise TemplateFileError(f"{path}: not UTF-8 text; templates hold text files only") from None


def _not_regular(path: Path) -> TemplateFileError:
    return TemplateFileError(
        f"{path}: not a regular file (a folder, FIFO, device or socket); templates hold "
        "text files only. Nothing was written"
    )


def template_files(root: Path, folder: Path) -> list[Path]:
    """Every file under `folder` of the template at `root`, in order, but hidden ones and
    bytecode caches (never rendered); links refused."""
    no_link(root, folder)
    found: list[Path] = []
    for here, dirs, files in os.walk(folder):  # never enters a linked folder
        dirs[:] = sorted(d for d in dirs if not _skipped(d))
        for name in [*dirs, *sorted(f for f in files if not _skipped(f))]:
            path = Path(here) / name
            no_link(root, path)
            if name in files:
                if not stat.S_ISREG(path.lstat().st_mode):  # refused now, before any render
                    raise _not_regular(path)
                found.append(path)
    return found


def _skipped(name: str) -> bool:
    return name.startswith(".") or name == "__pycache__"


class ConfinedLoader(jinja2.FileSystemLoader):
    """FileSystemLoader, which follows links, with every template it loads (includes and
    imports too, hidden files among them) checked for links first."""

    def __init__(self, root: Path) -> None:
        super().__init__(str(root))
        self.root = root

    def get_source(
        self, environment: jinja2.Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        pieces = split_template_path(template)  # refuses `..`, as FileSystemLoader does
        path = self.root.joinpath(*pieces)
        no_link(self.root, path)
        if not path.exists():
            raise jinja2.TemplateNotFound(template)
        return read_template_text(path), str(path), lambda: True
