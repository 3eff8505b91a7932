"""What operators see of the read side: the errors that stopped a runner or a saga
instance, and each saga's instances by status.

Plain data, with a stable JSON form (`to_json`) that `esgen projections status --json`
and `esgen sagas status --json` print for monitoring; stored as JSON by the progress
storage (`ProgressUnit.set_problem`, saga metadata) so a later process can report them.
"""

from __future__ import annotations

import json
import os
import sysconfig
import traceback
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from esgen.runtime._errors import EventStoreError

if TYPE_CHECKING:
    from esgen.runtime._records import RecordedEvent

__all__ = ["Problem", "SagaInstance", "SagaRunnerStatus", "event_id_of"]


@dataclass(frozen=True, slots=True)
class Problem:
    """An error that stopped a runner (or a saga instance): what was raised, on which
    event, when, and the line of the user's code it came from."""

    at: datetime
    """When it happened (UTC, the runner's clock)."""
    error: str
    """The exception's class, `module.QualName` for one of the user's own."""
    message: str
    """`str(exc)` with the notes added on the way up (one per line)."""
    position: int | None = None
    event_type: str | None = None
    event_version: int | None = None
    event_id: str | None = None
    stream_id: str | None = None
    stream_version: int | None = None
    where: str | None = None
    """`file:line in function` of the innermost frame in the user's own code, if any; the
    file's absolute path."""
    attempts: int = 1
    """How many times handling the event failed (a retry that fails again adds one)."""

    @classmethod
    def of(
        cls, exc: BaseException, recorded: RecordedEvent | None, at: datetime, attempts: int = 1
    ) -> Problem:
        kind = type(exc)
        module = kind.__module__
        name = kind.__qualname__ if module == "builtins" else f"{module}.{kind.__qualname__}"
        lines = [str(exc), *getattr(exc, "__notes__", ())]
        return cls(
            at=at,
            error=name,
            message="\n".join(line for line in lines if line),
            position=None if recorded is None else recorded.position,
            event_type=None if recorded is None else recorded.event_type,
            event_version=None if recorded is None else recorded.event_version,
            event_id=None if recorded is None else event_id_of(recorded),
            stream_id=None if recorded is None else recorded.stream_id,
            stream_version=None if recorded is None else recorded.stream_version,
            where=user_frame(exc),
            attempts=attempts,
        )

    def describe(self) -> str:
        """One line: the error and the event it happened on."""
        first = self.message.splitlines()[0] if self.message else ""
        text = f"{self.error.rpartition('.')[2]}: {first}" if first else self.error
        if self.position is not None:
            text += (
                f" (on {self.event_type} v{self.event_version} at position {self.position}, "
                f"version {self.stream_version} of stream {self.stream_id!r})"
            )
        return text

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "error": self.error,
            "message": self.message,
            "position": self.position,
            "event_type": self.event_type,
            "event_version": self.event_version,
            "event_id": self.event_id,
            "stream_id": self.stream_id,
            "stream_version": self.stream_version,
            "where": self.where,
            "attempts": self.attempts,
        }

    def dumps(self) -> str:
        # ASCII: a message quoting a lone surrogate or NUL must still store on PostgreSQL.
        return json.dumps(self.to_json(), separators=(",", ":"))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Problem:
        return cls(**{**data, "at": datetime.fromisoformat(data["at"])})

    @classmethod
    def loads(cls, text: str) -> Problem:
        return cls.from_json(json.loads(text))


@dataclass(frozen=True, slots=True)
class SagaInstance:
    """One stored saga instance, as `esgen sagas status` lists it."""

    saga: str
    correlation: str
    """As stored (`encode_id` of the correlation value)."""
    status: str
    """A `SagaStatus`: running, completed, failed, compensated, timed_out or stalled."""
    reason: str | None
    started_at: datetime
    problem: Problem | None = None
    """For a stalled instance: the error it stopped on (retry after a fix)."""
    parked: int = 0
    """For a stalled instance: events of it that arrived since, kept to handle in order."""
    ended: dict[str, Any] | None = None
    """For an ended instance: the event (type, position, id) or deadline that ended it,
    and when (`at`)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "saga": self.saga,
            "correlation": self.correlation,
            "status": self.status,
            "reason": self.reason,
            "started_at": self.started_at.isoformat(),
            "problem": None if self.problem is None else self.problem.to_json(),
            "parked": self.parked,
            "ended": self.ended,
        }


@dataclass(frozen=True, slots=True)
class SagaRunnerStatus:
    """Where a saga's runner is in the store's global order, and its instances' states."""

    name: str
    position: int
    head: int
    lag_seconds: float
    """How long ago the oldest event not yet handled was recorded; 0 when caught up."""
    counts: dict[str, int] = field(default_factory=dict)
    """Every `SagaStatus` -> how many instances have it (0 included)."""
    problem: Problem | None = None
    """The last error that stopped the runner itself (not one instance), or the event its
    last pass skipped (one no instance can have); cleared by the next pass that goes well."""

    @property
    def behind(self) -> int:
        return max(0, self.head - self.position)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "position": self.position,
            "head": self.head,
            "behind": self.behind,
            "lag_seconds": self.lag_seconds,
            "counts": dict(self.counts),
            "problem": None if self.problem is None else self.problem.to_json(),
        }


# -- the user's frame ----------------------------------------------------------------------

# The esgen package's folder: its frames are never the user's.
_RUNTIME = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def _library_folders() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    folders = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib") if key in paths}
    folders.add(_RUNTIME)
    return tuple(sorted(os.path.abspath(f) + os.sep for f in folders))


_LIBRARIES = _library_folders()


def user_frame(exc: BaseException) -> str | None:
    """`file:line in function` of the innermost frame of `exc` in the user's own code:
    not esgen, the standard library or an installed package (a project installed in
    site-packages, rather than editable, falls back to the innermost frame outside esgen)."""
    frames = traceback.extract_tb(exc.__traceback__)
    outside_esgen = [f for f in frames if not os.path.abspath(f.filename).startswith(_RUNTIME)]
    own = [f for f in outside_esgen if not os.path.abspath(f.filename).startswith(_LIBRARIES)]
    candidates = own or outside_esgen
    if not candidates:
        return None
    chosen = candidates[-1]
    # Absolute: a problem is stored and read later, by a process run from anywhere (the
    # command line shows it relative to where it runs).
    return f"{os.path.abspath(chosen.filename)}:{chosen.lineno} in {chosen.name}"


def event_id_of(recorded: RecordedEvent) -> str | None:
    """The event's id, None if the store cannot say it now: a projection's page may have
    left it to be read on demand, and the problem is worth recording without it."""
    try:
        return recorded.event_id_text
    except EventStoreError:
        return None
