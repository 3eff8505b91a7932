"""Projection and saga progress in a `MemoryEventStore`: read models and sagas in memory.

(Being built for issue 15: the same port as SQLite and PostgreSQL, with transactions that
commit or roll back the checkpoint, rows, saga state and the events appended in them.)
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from esgen.runtime._memory import MemoryEventStore
from esgen.runtime._progress_store import ProgressStorage, ProgressUnit, ReadModelAccess
from esgen.runtime._readmodel import TableBackend, TableSpec

__all__ = ["MemoryProgressStorage", "MemoryReadModels"]


class MemoryProgressStorage(ProgressStorage):
    def __init__(self, store: MemoryEventStore) -> None:
        raise TypeError(
            "MemoryEventStore cannot keep read models and checkpoints yet; use "
            "SQLiteEventStore or PostgresEventStore"
        )

    def unit(self) -> AbstractContextManager[ProgressUnit]:
        raise NotImplementedError


class MemoryReadModels(ReadModelAccess):
    def __init__(self, store: MemoryEventStore) -> None:
        self._store = store

    def read(self, spec: TableSpec) -> AbstractContextManager[TableBackend]:
        raise NotImplementedError("MemoryReadModels.read (issue 15)")
