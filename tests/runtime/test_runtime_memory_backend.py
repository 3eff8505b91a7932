"""The contract suite against the in-memory store (no multi-process part: it is per process)."""

from __future__ import annotations

from pathlib import Path

from esgen.runtime import Clock, EventStore, MemoryEventStore
from esgen.runtime.testing import (
    DecimalValuesContract,
    EventStoreContract,
    FloatValuesContract,
    RepositoryContract,
    RowTextContract,
)


class TestMemoryEventStore(
    EventStoreContract,
    RepositoryContract,
    FloatValuesContract,
    DecimalValuesContract,
    RowTextContract,
):
    def make_store(self, tmp_path: Path, clock: Clock) -> EventStore:
        return MemoryEventStore(clock=clock)
