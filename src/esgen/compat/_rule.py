"""A compatibility rule: one small function with an ID, a name, a category and a purpose."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from esgen.compat._compare import Comparison
from esgen.compat._findings import Category, Finding, Hit

__all__ = ["Check", "Rule", "rule"]

Check = Callable[[Comparison], Iterable[Hit]]


@dataclass(frozen=True)
class Rule:
    id: str  # "ES103": stable, what --ignore and the docs use
    name: str  # "EVENT_VERSION_SAME", in the manner of buf's rule names
    category: Category
    purpose: str  # one line, shown in `esgen compat --list-rules` and the docs
    check: Check

    def run(self, comparison: Comparison) -> list[Finding]:
        return [Finding(self.id, self.name, self.category, hit) for hit in self.check(comparison)]


def rule(id: str, name: str, category: Category, purpose: str) -> Callable[[Check], Rule]:
    def register(check: Check) -> Rule:
        return Rule(id, name, category, purpose, check)

    return register
