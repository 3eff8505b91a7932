"""`AsyncReadModel`: a generated `<Name>Query` for asyncio code.

    balances = AsyncReadModel(AccountBalancesQuery, store)      # an asynchronous store
    row = await (await balances.wait_for(result.token, timeout=2.0)).get(account_id)

The queries are the synchronous ones, run on the asynchronous store's `sync_store` through
its `run_sync` (SQLite: the store's own worker threads; PostgreSQL: a worker thread), one
short read transaction apiece, counted among the store's calls under way. A wait for a
position holds no thread while it waits: it looks at the checkpoints the same way, and
pauses on the event loop between looks.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from typing import Any, Generic, ParamSpec, Protocol, Self

from pydantic import BaseModel
from typing_extensions import TypeVar

from esgen.runtime._consistency import wait_for_position_async
from esgen.runtime._ports import EventStore
from esgen.runtime._query import Condition, Order
from esgen.runtime._views import ReadModel

__all__ = ["AsyncReadModel"]

P = ParamSpec("P")
T = TypeVar("T")
RowT = TypeVar("RowT", bound=BaseModel)
KeyT = TypeVar("KeyT", default=Any)


class _AsyncStoreWithSync(Protocol):
    """What `AsyncSQLiteEventStore` and `AsyncPostgresEventStore` both are."""

    @property
    def sync_store(self) -> EventStore: ...

    async def head_position(self) -> int: ...

    async def run_sync(
        self, function: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> T: ...


class AsyncReadModel(Generic[RowT, KeyT]):
    """Typed queries on one projection's read model, awaited: `get`, `list`, `count`,
    `exists` and `wait_for`, with the same arguments, results and errors as the generated
    `<Name>Query` given (`AsyncReadModel(AccountBalancesQuery, store)`)."""

    def __init__(self, query: type[ReadModel[RowT, KeyT]], store: _AsyncStoreWithSync) -> None:
        sync_store = getattr(store, "sync_store", None)
        if not isinstance(sync_store, EventStore):
            raise TypeError(
                "AsyncReadModel reads through an asynchronous store's sync_store "
                f"(AsyncSQLiteEventStore, AsyncPostgresEventStore; got {type(store).__name__})"
            )
        if not (isinstance(query, type) and issubclass(query, ReadModel)):
            raise TypeError(f"AsyncReadModel takes a generated <Name>Query class (got {query!r})")
        self._store = store
        self._query = query(sync_store)

    async def wait_for(self, position_or_token: int | str | bytes, *, timeout: float) -> Self:
        """As `ReadModel.wait_for`: once the read model has processed the position (or
        consistency token) a command's result gave; `ReadModelBehind` after `timeout`."""
        query = self._query
        await wait_for_position_async(
            self._store.head_position,
            self._store.run_sync,
            query._progress_storage,
            {query.table.name: query.table.layout},
            position_or_token,
            timeout=timeout,
        )
        return self

    async def get(self, key: KeyT) -> RowT | None:
        """The row with this key, or None."""
        return await self._store.run_sync(self._query.get, key)

    async def list(
        self,
        *where: Condition[RowT],
        order_by: Order[RowT] | Sequence[Order[RowT]] = (),
        limit: int | None = None,
        offset: int = 0,
    ) -> builtins.list[RowT]:
        """Rows matching every condition, in the order asked (then by key), paged."""
        query = self._query
        return await self._store.run_sync(
            lambda: query.list(*where, order_by=order_by, limit=limit, offset=offset)
        )

    async def count(self, *where: Condition[RowT]) -> int:
        """How many rows match every condition."""
        return await self._store.run_sync(self._query.count, *where)

    async def exists(self, *where: Condition[RowT]) -> bool:
        """Whether any row matches every condition."""
        return await self.count(*where) > 0
