"""The "did you mean" of every message that names something unknown.

Standard library only: the configuration uses it, and reading the configuration must not
load the generator.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["closest", "did_you_mean"]


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate `name` was most likely meant to be, or None when none is close.

    Case is ignored, as newcomers write `UUID`, `Strng` or `itemAdded`: a candidate that
    differs only in case wins, then the closest spelling (of a name of 3 letters or more).
    """
    folded: dict[str, str] = {}
    for candidate in candidates:
        folded.setdefault(candidate.casefold(), candidate)
    key = name.casefold()
    if key in folded:
        return folded[key] if folded[key] != name else None
    if len(key) < 3:  # `xl` is not a misspelt `l`: too short to tell a typo from a name
        return None
    matches = difflib.get_close_matches(key, list(folded), n=1, cutoff=0.6)
    return folded[matches[0]] if matches else None


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """A `; did you mean 'x'?` suffix, or nothing when no candidate is close."""
    match = closest(name, candidates)
    return f"; did you mean {match!r}?" if match is not None else ""
