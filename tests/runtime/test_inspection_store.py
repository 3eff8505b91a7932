"""The inspection contract on the in-memory store (SQLite and PostgreSQL run it as part of
`BackendContract`, in their own test modules)."""

from __future__ import annotations

from pathlib import Path

from esgen.runtime import Clock, EventStore, MemoryEventStore
from esgen.runtime.testing._contract_inspection import InspectionContract


class TestMemoryInspection(InspectionContract):
    def make_store(self, tmp_path: Path, clock: Clock) -> EventStore:
        return MemoryEventStore(clock=clock)
