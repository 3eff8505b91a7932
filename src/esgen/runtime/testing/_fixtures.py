"""The store fixtures every part of the contract suite shares: a subclass says how to make
its store, the parts ask for `store`, `clock` and `snapshots`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from esgen.runtime import Clock, EventStore, SnapshotStore
from esgen.runtime.testing._clock import ManualClock

__all__ = ["StoreFixtures"]


class StoreFixtures:
    def make_store(self, tmp_path: Path, clock: Clock) -> EventStore:
        """A new, empty store using `clock` for recorded-at times."""
        raise NotImplementedError(f"{type(self).__name__} must implement make_store")

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
