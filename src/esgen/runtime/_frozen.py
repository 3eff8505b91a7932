"""Read-only mappings for the `dict[str, T]` fields of generated models.

A frozen pydantic model stays mutable through its containers: `state.items["a"] = x`
changes a value everyone shares, and `hash(state)` fails on the dict. Generated models
therefore hold lists as tuples and maps as `FrozenDict`: a dict (so pydantic serialises
it natively, as fast as a dict and to the same JSON) that refuses every change and
hashes by its items.

Fields are annotated `FrozenMap[K, V]`: type checkers see a `Mapping`, so no mutating
method type-checks and a plain dict literal is accepted where the field is set; pydantic
validates the dict and freezes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar, get_args, overload

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

__all__ = ["FrozenDict", "FrozenMap"]

K = TypeVar("K")
V = TypeVar("V")


def _refuse(self: Any, *args: Any, **kwargs: Any) -> NoReturn:
    raise TypeError(f"{type(self).__name__} cannot be changed; build a new one instead")


if TYPE_CHECKING:
    # What type checkers see: a Mapping, so `d["k"] = v`, `d.update(...)` and friends do
    # not type-check. At run time it is the dict subclass below.
    class FrozenDict(Mapping[K, V]):
        @overload
        def __init__(self) -> None: ...
        @overload
        def __init__(self, items: Mapping[K, V], /) -> None: ...
        @overload
        def __init__(self, items: Iterable[tuple[K, V]], /) -> None: ...
        def __init__(self, *items: Any) -> None: ...
        def __getitem__(self, key: K, /) -> V: ...
        def __iter__(self) -> Iterator[K]: ...
        def __len__(self) -> int: ...
        def __hash__(self) -> int: ...
        def copy(self) -> dict[K, V]: ...
        def __or__(self, other: Mapping[K, V], /) -> dict[K, V]: ...

else:

    class FrozenDict(dict):
        """A dict that refuses every change, and hashes by its items.

        Copies (`copy()`, `|`) are plain dicts, to change and freeze again. Only the
        dict's own C methods called on it explicitly (`dict.__setitem__(d, k, v)`,
        `d.__init__(...)`) get past it: refusing those would put a Python call into
        every construction, which pydantic makes for each validated map.
        """

        __slots__ = ()

        __setitem__ = __delitem__ = _refuse
        clear = pop = popitem = setdefault = update = _refuse
        __ior__ = _refuse

        def __hash__(self) -> int:
            return hash(frozenset(self.items()))

        def __repr__(self) -> str:
            return f"FrozenDict({dict.__repr__(self)})"

        # dict's own reduce rebuilds the copy item by item, which this class refuses.
        def __reduce__(self) -> tuple[Any, ...]:
            return (type(self), (dict(self),))

        def __copy__(self) -> FrozenDict:
            return self

        def __deepcopy__(self, memo: dict[int, Any]) -> FrozenDict:
            from copy import deepcopy

            return type(self)({deepcopy(k, memo): deepcopy(v, memo) for k, v in self.items()})

        @classmethod
        def fromkeys(cls, keys: Iterable[Any], value: Any = None) -> FrozenDict:
            return cls(dict.fromkeys(keys, value))

        @classmethod
        def __get_pydantic_core_schema__(
            cls, source: Any, handler: GetCoreSchemaHandler
        ) -> core_schema.CoreSchema:
            # A dict, frozen after validation; serialised by pydantic's own dict code.
            key, value = get_args(source) or (Any, Any)
            return core_schema.no_info_after_validator_function(
                cls, handler.generate_schema(dict[key, value])
            )


FrozenMap = Annotated[Mapping[K, V], FrozenDict]
"""A `dict[K, V]` field of a frozen model: a `Mapping` to type checkers, validated from
any mapping (a dict literal, JSON) and held as a `FrozenDict`."""
