"""Schema compatibility: what a change to the schema does to stored events and their readers.

`esgen compat` compares the schema with what was published (a git ref, a folder, or the
lock file) and reports every breaking change, each found by one rule with an ID; `esgen
lock` records the published versions. `load_contract` reads the contract (the events a
context publishes) of an upstream context from its schema folder or lock. See
docs/compat.md.
"""

from esgen.compat._check import RULES, EventSummary, Rebuild, Replay, Report, check, find_rule
from esgen.compat._contract import load_contract
from esgen.compat._errors import CompatError, GitError, LockError
from esgen.compat._findings import Category, Finding, Hit, Kind
from esgen.compat._format import FORMATS, JSON_FORMAT, render, rules_table
from esgen.compat._git import repository_root
from esgen.compat._lock import LOCK_FORMAT, LOCK_NAME, fingerprints, load_lock, render_lock
from esgen.compat._publish import LockPlan, plan_lock
from esgen.compat._rule import Rule
from esgen.compat._shapes import fingerprint
from esgen.compat._sides import Side, current_side, directory_side, git_side

__all__ = [
    "FORMATS",
    "JSON_FORMAT",
    "LOCK_FORMAT",
    "LOCK_NAME",
    "RULES",
    "Category",
    "CompatError",
    "EventSummary",
    "Finding",
    "GitError",
    "Hit",
    "Kind",
    "LockError",
    "LockPlan",
    "Rebuild",
    "Replay",
    "Report",
    "Rule",
    "Side",
    "check",
    "current_side",
    "directory_side",
    "find_rule",
    "fingerprint",
    "fingerprints",
    "git_side",
    "load_contract",
    "load_lock",
    "plan_lock",
    "render",
    "render_lock",
    "repository_root",
    "rules_table",
]
