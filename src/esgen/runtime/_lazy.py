"""Names of a generated package imported from their modules on first use (PEP 562).

A generated package re-exports every event, command and value type of its context.
Importing all of them up front builds every pydantic model, which for a context of a
thousand events takes most of a second; a program that touches one aggregate should pay
for that aggregate. The package's `__init__` imports the names for type checkers only
and hands this module where each one lives.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from importlib import import_module
from importlib.util import find_spec
from typing import Any, Union

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str,
    homes: Mapping[str, Sequence[str]],
    unions: Mapping[str, Sequence[str]] | None = None,
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The `__getattr__` and `__dir__` of `package`, whose names are `homes` (module,
    relative to the package -> the names it defines) and `unions` (an alias -> the names
    of its members). A name is imported once; later lookups find it in the package."""
    where = {name: module for module, names in homes.items() for name in names}
    members = dict(unions or {})
    namespace = sys.modules[package].__dict__

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is not None:
            value = getattr(import_module(module, package), name)
        elif name in members:
            # The same alias `Union[A, B]` the type checkers read; one member is itself.
            value = Union[tuple(__getattr__(member) for member in members[name])]  # noqa: UP007
        elif not name.startswith("__") and find_spec(f"{package}.{name}") is not None:
            # A submodule (`bank.types` after `import bank`): an eager `__init__` would
            # have imported it, and type checkers take it as there.
            value = import_module(f"{package}.{name}")
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *where, *members})

    return __getattr__, __dir__
