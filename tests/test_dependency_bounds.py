"""The lowest-versions CI run tests exactly the lower bounds pyproject.toml declares.

`make test-lowest` installs with .ci/lowest-constraints.txt; if a bound were raised in one
file and not the other, CI would test versions users can no longer get, or miss ones they
can. Every dependency users install (the runtime and the user-facing extras) needs a lower
bound, and the constraints file pins each one to it.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).parent.parent
# Extras users install (this repository's own tools are a dependency group, not published).
USER_FACING = ("cli", "generator", "postgres", "nats", "pii", "testing")


def declared() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    texts = list(project["dependencies"])
    for extra in USER_FACING:
        texts += project["optional-dependencies"][extra]
    requirements = [Requirement(text) for text in texts]
    # An extra may include another (`esgen[cli]`): its requirements are counted there.
    return {canonicalize_name(r.name): r for r in requirements if r.name != "esgen"}


def pinned() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / ".ci" / "lowest-constraints.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep, f"not a pin: {line!r}"
            pins[canonicalize_name(name)] = version.strip()
    return pins


def lower_bound(requirement: Requirement) -> str:
    bounds = [s.version for s in requirement.specifier if s.operator == ">="]
    assert len(bounds) == 1, f"{requirement} needs exactly one lower bound (>=)"
    return bounds[0]


def test_every_user_facing_dependency_is_pinned_at_its_lower_bound() -> None:
    requirements, pins = declared(), pinned()
    assert sorted(pins) == sorted(requirements)
    for name, requirement in requirements.items():
        pin = Version(pins[name])
        assert pin == Version(lower_bound(requirement)), f"{name}: constraints and pyproject differ"
        assert requirement.specifier.contains(pins[name]), f"{name}=={pins[name]} is not allowed"


def test_the_runtime_needs_pydantic_alone() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert [Requirement(r).name for r in project["dependencies"]] == ["pydantic"]
