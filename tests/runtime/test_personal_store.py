"""The personal-data contract on the in-memory store (SQLite and PostgreSQL run it as part
of `BackendContract`, in their own test modules)."""

from __future__ import annotations

from pathlib import Path

from esgen.runtime import Clock, EventStore, KeyWrapper, MemoryEventStore
from esgen.runtime.testing._contract_personal import PersonalDataContract


class TestMemoryPersonalData(PersonalDataContract):
    def make_store(self, tmp_path: Path, clock: Clock) -> EventStore:
        return MemoryEventStore(clock=clock)

    def make_keyed_store(self, tmp_path: Path, clock: Clock, master_key: KeyWrapper) -> EventStore:
        return MemoryEventStore(clock=clock, master_key=master_key)
