"""Queries on read models from outside their handlers: the base of generated `<Name>Query`.

    balances = AccountBalancesQuery(store)
    F = AccountBalancesFields
    top = balances.list(F.status.eq("open"), order_by=F.balance.desc(), limit=10)
    mine = balances.wait_for(result.token, timeout=2.0).get(account_id)  # read your write

The rows come from the read model's active generation only (a rebuild's new generation
is invisible until it switches over), each call in one read transaction of the store.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Self, cast

from pydantic import BaseModel
from typing_extensions import TypeVar

from esgen.runtime._consistency import wait_for_position
from esgen.runtime._progress_store import ProgressStorage, progress_storage, read_models
from esgen.runtime._query import Condition, Order
from esgen.runtime._readmodel import Rows, TableBackend, TableSpec, seal_table

if TYPE_CHECKING:
    from esgen.runtime._ports import EventStore

__all__ = ["ReadModel"]

RowT = TypeVar("RowT", bound=BaseModel)
# The type of the key field; Any for read models declared by hand without one.
KeyT = TypeVar("KeyT", default=Any)


class ReadModel(Generic[RowT, KeyT]):
    """Typed queries on one projection's read model in a store.

    Generated `<Name>Query` classes set `table` and `row_type`. Called on a thread inside
    a transaction of the same store (a projection or saga handler, a unit of work), a
    query joins that transaction and sees its changes.
    """

    table: ClassVar[TableSpec]
    row_type: ClassVar[type[BaseModel]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        seal_table(cls)

    def __init__(self, store: EventStore) -> None:
        self._store = store
        self._access = read_models(store)
        self._progress: ProgressStorage | None = None

    def _rows(self, backend: TableBackend) -> Rows[RowT, KeyT]:
        row_type = cast("type[RowT]", self.row_type)
        return Rows(self.table, row_type, backend, keyring=self._store.keyring)

    def wait_for(self, position_or_token: int | str | bytes, *, timeout: float) -> Self:
        """Wait until the read model has processed the global position (or consistency
        token, as text or as the bytes of an HTTP header) a command's result gave, so that
        what follows reads that command's effect; returns this query. `ReadModelBehind`
        after `timeout` seconds.

        Reads its projection's checkpoint, so the runner may be another process. Refused
        at once rather than waited for: a position beyond the store's head
        (`InvalidConsistencyToken`: another store's token), a read model no runner created
        here (`ReadModelNotFound`) or needing a rebuild (`ProjectionNeedsRebuild`).
        """
        wait_for_position(
            self._store,
            self._progress_storage,
            {self.table.name: self.table.layout},  # the read model is named as its projection
            position_or_token,
            timeout=timeout,
        )
        return self

    @contextmanager
    def _read(self) -> Iterator[TableBackend]:
        """The active generation's table in one read transaction (see `ReadModelAccess`)."""
        with self._access.read(self.table) as backend:
            yield backend

    def _progress_storage(self) -> ProgressStorage:
        if self._progress is None:
            # Found first through the read path, which creates nothing: opening the progress
            # storage of a store where no runner ran would set its tables up (a write).
            with self._access.read(self.table):
                pass
            self._progress = progress_storage(self._store)
        return self._progress

    def get(self, key: KeyT) -> RowT | None:
        """The row with this key, or None."""
        with self._read() as backend:
            return self._rows(backend).get(key)

    def list(
        self,
        *where: Condition[RowT],
        order_by: Order[RowT] | Sequence[Order[RowT]] = (),
        limit: int | None = None,
        offset: int = 0,
    ) -> builtins.list[RowT]:
        """Rows matching every condition, in the order asked (then by key), paged."""
        with self._read() as backend:
            return self._rows(backend).list(*where, order_by=order_by, limit=limit, offset=offset)

    def count(self, *where: Condition[RowT]) -> int:
        """How many rows match every condition."""
        with self._read() as backend:
            return self._rows(backend).count(*where)

    def exists(self, *where: Condition[RowT]) -> bool:
        """Whether any row matches every condition."""
        return self.count(*where) > 0
