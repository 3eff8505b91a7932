"""How a saga instance's life outside its workflow is stored: the stall it waits in, the
events parked behind it, and what ended it.

All of it lives in the instance's metadata JSON (`SagaRecord.metadata`), beside the
conversation's correlation id and the workflow's reason, so every store keeps it without
a column of its own:

- `stalled`: the `Problem` (JSON) the instance stopped on, attempts counted;
- `stalled_on`: where a retry starts: `{"position": P}`, the event that failed, or
  `{"deadline": true}`, its deadline;
- `parked`: the global positions of its events that arrived since, in order;
- `ended`: `{"at", "position", "event_type", "event_id"}` or `{"at", "deadline": true}`.

The business state and steps stay as they were before the failed event.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from typing import Any

from esgen.runtime._health import Problem, SagaInstance
from esgen.runtime._progress_store import SagaRecord
from esgen.runtime._records import RecordedEvent

__all__ = [
    "ended_by_deadline",
    "ended_by_event",
    "instance_of",
    "metadata_of",
    "park",
    "restall",
    "resume_point",
    "stall",
    "unstalled_metadata",
]

_STALL_KEYS = ("stalled", "stalled_on", "parked")


def metadata_of(record: SagaRecord) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(record.metadata)
    return data


def _dumps(metadata: dict[str, Any]) -> str:
    # ASCII: an error's message may quote text no store takes as it is (a lone surrogate).
    return json.dumps(metadata, separators=(",", ":"))


def stall(record: SagaRecord, problem: Problem, on: RecordedEvent | None) -> SagaRecord:
    """The record stalled on an event (or, with None, on its deadline); state untouched."""
    metadata = metadata_of(record)
    metadata["stalled"] = problem.to_json()
    metadata["stalled_on"] = {"deadline": True} if on is None else {"position": on.position}
    metadata["parked"] = []
    return replace(record, status="stalled", metadata=_dumps(metadata))


def restall(record: SagaRecord, problem: Problem) -> SagaRecord:
    """A stalled record with the problem of its last retry; where it resumes is kept."""
    metadata = metadata_of(record)
    metadata["stalled"] = problem.to_json()
    return replace(record, metadata=_dumps(metadata))


def park(record: SagaRecord, recorded: RecordedEvent) -> SagaRecord:
    """The stalled record with one more event kept for its retry."""
    # The whole list is rewritten for each event parked (O(n) each, O(n^2) in all). Kept
    # so: only a stalled instance's own events park, a workflow has a handful, and even
    # 10,000 of them (an instance stalled for days on a busy aggregate) make a write of
    # about 100 KB of JSON. Past that, positions would need a table of their own.
    metadata = metadata_of(record)
    metadata["parked"] = [*metadata.get("parked", ()), recorded.position]
    return replace(record, metadata=_dumps(metadata))


def resume_point(record: SagaRecord) -> tuple[bool, list[int], int]:
    """What a retry handles again, in order: whether the deadline, then the positions of
    the failed event and the parked ones; and how many attempts failed so far."""
    metadata = metadata_of(record)
    on = metadata.get("stalled_on") or {}
    positions = [int(on["position"])] if "position" in on else []
    positions += [int(p) for p in metadata.get("parked", ())]
    attempts = int((metadata.get("stalled") or {}).get("attempts", 1))
    return bool(on.get("deadline")), positions, attempts


def unstalled_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metadata.items() if k not in _STALL_KEYS}


def ended_by_event(recorded: RecordedEvent, at: datetime) -> dict[str, Any]:
    return {
        "at": at.isoformat(),
        "position": recorded.position,
        "event_type": recorded.event_type,
        "event_id": str(recorded.event_id),
    }


def ended_by_deadline(at: datetime) -> dict[str, Any]:
    return {"at": at.isoformat(), "deadline": True}


def instance_of(record: SagaRecord) -> SagaInstance:
    metadata = metadata_of(record)
    stalled = metadata.get("stalled")
    return SagaInstance(
        saga=record.saga,
        correlation=record.correlation,
        status=record.status,
        reason=metadata.get("reason"),
        started_at=datetime.fromisoformat(record.started_at),
        problem=None if stalled is None else Problem.from_json(stalled),
        parked=len(metadata.get("parked", ())),
        ended=metadata.get("ended"),
    )
