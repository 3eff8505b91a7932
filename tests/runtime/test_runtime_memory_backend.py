"""The contract suite against the in-memory store (no multi-process part: it is per process),
read models and sagas included: they run on memory through the same runners."""

from __future__ import annotations

from pathlib import Path

from esgen.runtime import Clock, EventStore, MemoryEventStore
from esgen.runtime.testing import (
    DecimalValuesContract,
    EventStoreContract,
    FloatValuesContract,
    ProjectionContract,
    QueryContract,
    RepositoryContract,
    RowTextContract,
    SagaContract,
)


class TestMemoryEventStore(
    EventStoreContract,
    RepositoryContract,
    FloatValuesContract,
    DecimalValuesContract,
    RowTextContract,
    ProjectionContract,
    SagaContract,
    QueryContract,
):
    def make_store(self, tmp_path: Path, clock: Clock) -> EventStore:
        return MemoryEventStore(clock=clock)
