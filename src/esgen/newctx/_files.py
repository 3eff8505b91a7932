"""The files of a template folder, read without following a single link.

A template may come from anyone: a link in it (`src/key.txt -> ~/.ssh/id_rsa`, a folder
linked to `/etc`) would copy whatever it points to into the new project. esgen writes no
links, and recreating one would carry a path that means something else in the project's
layout (roles map to other folders, names are rendered), so any link in a template is
refused, naming it, before anything is rendered or written. The folder given as
`--template` may itself be a link: the user named it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import jinja2
from jinja2.loaders import split_template_path

from esgen._paths import escape
from esgen.newctx._manifest import TemplateError

__all__ = ["ConfinedLoader", "no_link", "template_files"]


def no_link(root: Path, path: Path) -> None:
    """Raise TemplateError when `path` or a folder on the way from `root` is a link."""
    problem = escape(root, path)
    if problem is not None:
        raise TemplateError(
            f"{problem.where}: {problem.why}; templates may not hold links (their targets "
            "would be copied into the project); replace it with the file itself. Nothing "
            "was written"
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
        no_link(self.root, self.root.joinpath(*pieces))
        return super().get_source(environment, template)
