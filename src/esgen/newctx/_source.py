"""How a project names the esgen it depends on.

esgen is not on the Python Package Index, so a plain `esgen` in a project's dependencies
is satisfied only by an esgen already installed. When this esgen was installed from a git
repository others can reach, the project can name exactly that: a direct reference to the
commit (PEP 610 records it in the installation's direct_url.json), which `pip install .`,
`pip install --group dev` and `uv sync` install anywhere. Local installs (a clone, a
wheel file, a file:// URL) name nothing others can reach; then the plain names stay.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, distribution

from esgen._version import __version__

__all__ = ["DEV_EXTRAS", "Requirements", "esgen_requirements", "shared_git_source"]

# What developing a project needs beside the runtime: the generator and the test tools.
DEV_EXTRAS = "esgen[generator,testing]"


@dataclass(frozen=True)
class Requirements:
    runtime: str  # the project's own dependency: the runtime
    dev: str  # its development dependency: the generator and the test tools
    pinned: bool  # direct references to a commit anyone with access can install


def shared_git_source(direct_url: str) -> str | None:
    """`git+URL@commit` from an installation's direct_url.json (PEP 610), when it came from
    a git repository others can reach; None for anything else."""
    try:
        info = json.loads(direct_url)
    except ValueError:
        return None
    if not isinstance(info, dict):
        return None
    vcs, url = info.get("vcs_info"), info.get("url")
    if not isinstance(vcs, dict) or vcs.get("vcs") != "git" or not isinstance(url, str):
        return None
    commit = vcs.get("commit_id")
    if not isinstance(commit, str) or not url or url.startswith("file:"):
        return None  # a local repository: nobody else can install from it
    return f"git+{url}@{commit}"


def _installed_from() -> str | None:
    try:
        return distribution("esgen").read_text("direct_url.json")
    except PackageNotFoundError:
        return None


def esgen_requirements() -> Requirements:
    recorded = _installed_from()
    source = shared_git_source(recorded) if recorded else None
    if source is None:
        return Requirements(f"esgen>={__version__}", DEV_EXTRAS, pinned=False)
    return Requirements(f"esgen @ {source}", f"{DEV_EXTRAS} @ {source}", pinned=True)
