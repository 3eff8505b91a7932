"""Sealing the personal fields of what the runtime stores for itself (read-model rows,
saga state), where a forgotten subject must never stop the writer.

Events refuse new personal data of a forgotten subject (`ForgottenSubject`). A row or a
saga's state is derived data: a projection rebuilt after a forget writes the rows of
that subject again, from events that now read as placeholders (or from fields that are
not personal), and must get through. So here a forgotten subject's personal values are
stored as their placeholders, with no envelope, and nothing is raised.
"""

from __future__ import annotations

from typing import Any

from esgen.runtime._personal import (
    ENVELOPE_KEY,
    ForgottenSubject,
    Keyring,
    PersonalFields,
    seal_json,
)

__all__ = ["seal_derived"]


def seal_derived(
    keyring: Keyring | None,
    spec: PersonalFields,
    data: dict[str, Any],
    subject: str | None,
    what: str,
) -> dict[str, Any]:
    """`data` (changed in place) with placeholders in place of its personal values and
    the envelope holding them, as `seal_json` makes it; for a forgotten subject, the
    placeholders alone."""
    try:
        return seal_json(keyring, spec, data, subject, what)
    except ForgottenSubject:
        # `seal_json` put the placeholders in place before asking for the key (it changes
        # `data` in place); the envelope is only added once sealed, so none is there.
        data.pop(ENVELOPE_KEY, None)
        return data
