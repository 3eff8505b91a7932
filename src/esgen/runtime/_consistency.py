"""Read-your-writes: waiting until read models have processed what a command recorded.

A command's result carries the global position of the last event it appended (and the
same as an opaque token a web API hands to its client). Projections follow the store's
global order, so a read model whose checkpoint has reached that position shows the
command's effect: the waiter polls the checkpoints (through `ProgressStorage.look()`, a
read that takes no lock, so the runner may be another process or another machine) until
they have, or the timeout passes.

    result = bank.dispatch(DepositMoney(...))
    response.headers["Esgen-Consistency"] = result.token
    ...
    AccountBalancesQuery(store).wait_for(request.headers["Esgen-Consistency"], timeout=2.0)
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from esgen.runtime._errors import (
    InvalidConsistencyToken,
    ProjectionNeedsRebuild,
    ReadModelBehind,
    ReadModelNotFound,
)
from esgen.runtime._health import Problem
from esgen.runtime._ports import EventStore
from esgen.runtime._progress_store import ProgressStorage

__all__ = [
    "InvalidConsistencyToken",
    "consistency_token",
    "parse_consistency_token",
    "wait_for_position",
    "wanted_position",
]

# "p" for position, "1" for the format's version: a later format (say, one per shard)
# gets another prefix, and tokens already handed out keep parsing. Only letters, digits
# and a dot: safe in a URL, a query string, a cookie and an HTTP header as they are.
_PREFIX = "p1."
# Positions are BIGINT in PostgreSQL; anything larger was never a position.
MAX_POSITION = 2**63 - 1
# ASCII digits only (`\d` would take other scripts' digits), no leading zeros, so each
# position has exactly one token; at most 19 digits, checked before the value is built.
_TOKEN = re.compile(r"p1\.(0|[1-9][0-9]{0,18})")
_LONGEST = len(_PREFIX) + 19
_SHOWN = 40  # characters of a bad token repeated in the error

# Pauses between looks at the checkpoints: the first ones short, since a runner that
# follows the store's notifications usually commits within milliseconds; then bounded,
# so a slow runner costs one cheap read per 50 ms.
_FIRST_PAUSE = 0.001
_LONGEST_PAUSE = 0.05
# How long an asynchronous wait gives its last look once its time is up.
_LAST_LOOK = 0.05


def consistency_token(position: int) -> str:
    """The token of a global position: opaque to clients, safe in URLs and headers."""
    return _PREFIX + str(_checked_position(position))


def parse_consistency_token(text: str) -> int:
    """The position in a token made by `consistency_token`; `InvalidConsistencyToken` for
    anything else (a client sent garbage: answer 400)."""
    if not isinstance(text, str):
        raise InvalidConsistencyToken(
            repr(text)[:_SHOWN],
            f"a consistency token is text (got {type(text).__name__})",
        )
    found = _TOKEN.fullmatch(text) if len(text) <= _LONGEST else None
    position = int(found.group(1)) if found is not None else -1
    if not 0 <= position <= MAX_POSITION:
        shown = text if len(text) <= _SHOWN else text[:_SHOWN] + "..."
        raise InvalidConsistencyToken(
            shown,
            f"not a consistency token: {shown!r} (expected one a command's result gave, "
            f"like 'p1.42')",
        )
    return position


def wanted_position(position_or_token: int | str | bytes) -> int:
    """A position given as itself or as its token (text, or the bytes of an HTTP header
    as ASGI servers hand them over), checked."""
    if isinstance(position_or_token, bytes):
        # Latin-1 reads any bytes; whatever is not a token is then refused as one.
        position_or_token = position_or_token.decode("latin-1")
    if isinstance(position_or_token, str):
        return parse_consistency_token(position_or_token)
    return _checked_position(position_or_token)


def _checked_position(position: int) -> int:
    if not isinstance(position, int) or isinstance(position, bool):
        raise TypeError(f"a position is an int (got {position!r})")
    if not 0 <= position <= MAX_POSITION:
        raise ValueError(f"a position is an int from 0 to {MAX_POSITION} (got {position})")
    return position


def wait_for_position(
    store: EventStore,
    storage: Callable[[], ProgressStorage],
    layouts: Mapping[str, str],
    position_or_token: int | str | bytes,
    *,
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Return once every projection named in `layouts` (name -> the layout its read model
    is read with) has processed the position; `ReadModelBehind` after `timeout` seconds.

    Returns at once for position 0 (nothing recorded). Refuses at once, without waiting,
    a position beyond the store's head (`InvalidConsistencyToken`: the token came from
    another store), a projection that never ran in this store (`ReadModelNotFound`) and
    one whose fields changed since its table was built (`ProjectionNeedsRebuild`): none of
    them would ever catch up. During a rebuild the live generation is the one read, so
    its checkpoint is the one that counts. `storage` is called only when there is
    something to wait for.
    """
    wanted = checked_wait(position_or_token, timeout)
    if wanted == 0:
        return
    check_issued(wanted, store.head_position())
    progress = storage()
    deadline = clock() + timeout
    pause = _FIRST_PAUSE
    while True:
        behind = _behind(progress, layouts, wanted)
        if behind is None:
            return
        left = deadline - clock()
        if left <= 0:
            name, reached, problem = behind
            raise ReadModelBehind(name, wanted, reached, timeout, problem)
        sleep(min(pause, left))
        pause = min(pause * 2, _LONGEST_PAUSE)


async def wait_for_position_async(
    head_position: Callable[[], Awaitable[int]],
    run: Callable[..., Awaitable[Any]],
    storage: Callable[[], ProgressStorage],
    layouts: Mapping[str, str],
    position_or_token: int | str | bytes,
    *,
    timeout: float,
) -> None:
    """`wait_for_position` for asyncio code: the same checks and errors. Each look at the
    checkpoints is a synchronous call handed to `run` (the store's `run_sync`, which
    runs it in a worker thread); the pauses between them are the loop's, so a waiting
    request holds no thread. After the first look, a look still queued or running when
    the time is up is given up, so the wait never runs long past its timeout."""
    wanted = checked_wait(position_or_token, timeout)
    if wanted == 0:
        return
    check_issued(wanted, await head_position())
    progress: ProgressStorage = await run(storage)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    pause = _FIRST_PAUSE
    behind = await run(_behind, progress, layouts, wanted)
    while behind is not None:
        left = deadline - loop.time()
        if left <= 0:
            name, reached, problem = behind
            raise ReadModelBehind(name, wanted, reached, timeout, problem)
        await asyncio.sleep(min(pause, left))
        pause = min(pause * 2, _LONGEST_PAUSE)
        # As the synchronous wait, one more look once the time is up; a short one.
        left = max(deadline - loop.time(), _LAST_LOOK)
        try:
            behind = await asyncio.wait_for(run(_behind, progress, layouts, wanted), left)
        except TimeoutError:
            # No thread to look with in time: reported with what the last look found.
            name, reached, problem = behind
            raise ReadModelBehind(name, wanted, reached, timeout, problem) from None


def checked_wait(position_or_token: int | str | bytes, timeout: float) -> int:
    """The position to wait for, once it and the timeout are checked."""
    wanted = wanted_position(position_or_token)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout is a number of seconds (got {timeout!r})")
    if not 0 <= timeout < math.inf:  # also refuses NaN
        raise ValueError(f"timeout must be a finite number of seconds >= 0 (got {timeout!r})")
    return wanted


def check_issued(wanted: int, head: int) -> None:
    """Refuse a position beyond the store's head: the token came from another store."""
    if wanted > head:
        raise InvalidConsistencyToken(
            consistency_token(wanted),
            f"position {wanted} is beyond this store's last event ({head}): the token "
            "was not issued by this store",
        )


def _behind(
    storage: ProgressStorage, layouts: Mapping[str, str], wanted: int
) -> tuple[str, int, str | None] | None:
    """The projection furthest behind `wanted` (name, position, its recorded error), or
    None when all have reached it."""
    furthest: tuple[str, int, str | None] | None = None
    with storage.look() as unit:
        for name, layout in layouts.items():
            active = [(g, p) for g, (p, on) in unit.generations(name).items() if on]
            if not active:
                raise ReadModelNotFound(name)
            generation, position = active[0]
            if unit.layout(name, generation) != layout:
                raise ProjectionNeedsRebuild([name])
            if position >= wanted or (furthest is not None and furthest[1] <= position):
                continue
            recorded = unit.problem(name)
            problem = None if recorded is None else Problem.loads(recorded).describe()
            furthest = (name, position, problem)
    return furthest
