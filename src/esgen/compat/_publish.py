"""What `esgen lock` would record, checked against the lock it replaces, before anything is
written: the command decides from the plan whether to write, refuse or report stale."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from esgen.compat._check import Report, check
from esgen.compat._errors import CompatError, LockError
from esgen.compat._lock import fingerprints, load_lock, read_lock, render_lock
from esgen.compat._sides import Side

__all__ = ["LockPlan", "plan_lock"]

Version = tuple[str, str, int]


def _versions(side: Side) -> set[Version]:
    return {
        (context, event, number)
        for context, events in fingerprints(side.schema).items()
        for event, numbers in events.items()
        for number in numbers
    }


@dataclass(frozen=True)
class LockPlan:
    path: Path
    label: str  # the lock's path as reports show it
    text: str  # the lock to write
    current: str | None  # the file as it is, None when there is none
    report: Report | None  # the schema against the lock it replaces; None without one
    recorded: int  # event versions in the new lock
    newly: int  # ... of which the old lock did not have

    @property
    def up_to_date(self) -> bool:
        return self.current == self.text

    @property
    def breaking(self) -> int:
        return self.report.errors if self.report is not None else 0


def plan_lock(new: Side, path: Path, *, force: bool) -> LockPlan:
    """Raises LockError when the existing lock cannot be read (and `force` is not given)."""
    text = render_lock(new.schema, path)
    try:
        written = load_lock(path, text)
    except LockError as exc:  # a bug in esgen: a lock must read back as it was written
        msg = f"the new lock does not read back as written; please report this: {exc}"
        raise CompatError(msg) from exc
    recorded = _versions(written)
    report = None
    before: set[Version] = set()
    try:
        current = read_lock(path)
        old = load_lock(path, current) if current is not None else None
    except LockError:
        if not force:
            raise
        current = old = None  # --force: written anew, whatever is there
    if old is not None:
        report = check(old, new)
        before = _versions(old)
    return LockPlan(
        path, written.label, text, current, report, len(recorded), len(recorded - before)
    )
