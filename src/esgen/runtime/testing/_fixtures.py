"""The store fixtures every part of the contract suite shares: a subclass says how to make
its store (and how to open one database again), the parts ask for `store`, `clock`,
`snapshots`, `progress` and `factory`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from esgen.runtime import Clock, EventStore, Rows, SnapshotStore
from esgen.runtime._progress_store import progress_storage
from esgen.runtime.testing._clock import ManualClock

if TYPE_CHECKING:
    from esgen.runtime import Projection

__all__ = ["StoreFixtures", "active_rows"]


def active_rows(store: EventStore, projection: type[Projection[Any]]) -> list[Any]:
    """The rows of the projection's active generation, as any reader of the table sees them."""
    with progress_storage(store).unit() as unit:
        generations = unit.generations(projection.name)
        generation = next(g for g, (_, active) in generations.items() if active)
        table = unit.table(projection.table, generation)
        return Rows(projection.table, projection.row_type, table, keyring=store.keyring).all()


class StoreFixtures:
    def make_store(self, tmp_path: Path, clock: Clock) -> EventStore:
        """A new, empty store using `clock` for recorded-at times."""
        raise NotImplementedError(f"{type(self).__name__} must implement make_store")

    def store_factory(self, tmp_path: Path) -> Callable[[], EventStore] | None:
        """A picklable callable opening the same store each call (e.g. a functools.partial),
        for the tests of several stores or processes on one database; None: not shareable."""
        return None

    @pytest.fixture
    def factory(self, tmp_path: Path) -> Callable[[], EventStore]:
        factory = self.store_factory(tmp_path)
        if factory is None:
            pytest.skip("this store cannot be shared between processes")
        return factory

    @pytest.fixture
    def clock(self) -> ManualClock:
        return ManualClock()

    @pytest.fixture
    def store(self, tmp_path: Path, clock: ManualClock) -> Iterator[EventStore]:
        store = self.make_store(tmp_path, clock)
        try:
            yield store
        finally:
            store.close()

    @pytest.fixture
    def snapshots(self, store: EventStore) -> SnapshotStore:
        if not isinstance(store, SnapshotStore):
            pytest.skip("this store keeps no snapshots")
        return store

    @pytest.fixture
    def progress(self, store: EventStore) -> EventStore:
        """The store, where it also keeps read models and sagas (else the test skips)."""
        try:
            progress_storage(store)
        except TypeError:
            pytest.skip("this store keeps no read models nor sagas")
        return store
