"""A rebuild stopped half-way by Ctrl-C (SIGINT) or killed outright (SIGKILL) in a real
process continues, when run again, from its last committed page: only the events after it
are handled, and the read model equals that of a rebuild never interrupted. On SQLite
files and on PostgreSQL (see postgres_env.py; skipped without a server).

The child (rebuild_child.py) stops inside a handler, its page half-written, and waits
there for the signal: the interruption always lands mid-transaction, with no timing.

It is continued because the same code runs it (`code_fingerprint`: the class's file, read
whatever the module is called); an unfinished rebuild whose code is unknown starts afresh."""

from __future__ import annotations

import importlib.util
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from esgen.runtime import (
    EventStore,
    ExpectedVersion,
    NewEvent,
    ProjectionRunner,
    RebuildStart,
    SQLiteEventStore,
)
from esgen.runtime._projection import code_fingerprint
from esgen.runtime.testing._domain import AccountOpened, MoneyDeposited, make_registry
from esgen.runtime.testing._fixtures import active_rows

from .postgres_env import drop_schema, new_schema, require_postgres
from .rebuild_child import Balances

CHILD = Path(__file__).with_name("rebuild_child.py")
ACCOUNTS = 200
DEPOSITS = 99  # per account: with its opening, 20,000 events
PAGE = 200  # a hundred pages


@dataclass(frozen=True)
class Backend:
    arguments: list[str]
    """What the child is told about the store."""
    open: Callable[[], EventStore]


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        path = tmp_path / "events.sqlite"
        yield Backend(["sqlite", str(path)], lambda: SQLiteEventStore(path))
        return
    dsn = require_postgres()  # skips (or, in CI, fails) without a server
    from esgen.runtime import PostgresEventStore

    schema = new_schema()
    try:
        yield Backend(["postgres", dsn, schema], lambda: PostgresEventStore(dsn, schema=schema))
    finally:
        drop_schema(dsn, schema)


def fill(store: EventStore) -> None:
    for n in range(ACCOUNTS):
        events = [NewEvent.from_event(AccountOpened(owner=f"owner{n}", currency="EUR"))]
        events += [NewEvent.from_event(MoneyDeposited(amount=n % 7 + 1)) for _ in range(DEPOSITS)]
        store.append(f"Account-{n}", events, ExpectedVersion.NO_STREAM)


def rows(store: EventStore) -> dict[str, tuple[int, int]]:
    return {r.account: (r.balance, r.events) for r in active_rows(store, Balances)}


EXPECTED = {str(n): (DEPOSITS * (n % 7 + 1), DEPOSITS + 1) for n in range(ACCOUNTS)}


def interrupt_child(backend: Backend, sig: signal.Signals, pause_at: int) -> tuple[list[int], int]:
    """Runs the child's rebuild, signals it while it handles the event at `pause_at`:
    (the positions of the pages it reported committed, its exit code)."""
    command = [sys.executable, str(CHILD), *backend.arguments, str(PAGE), str(pause_at)]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    try:
        pages: list[int] = []
        while (line := process.stdout.readline()).startswith("page "):
            pages.append(int(line.split()[1]))
        assert line == f"paused {pause_at}\n", f"the child did not stop as told: {line!r}"
        process.send_signal(sig)
        rest = process.stdout.read()
        code = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    # Ctrl-C reaches the rebuild as KeyboardInterrupt, which leaves it like a kill does.
    assert rest == ("interrupted\n" if sig == signal.SIGINT else "")
    return pages, code


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_an_interrupted_rebuild_handles_only_the_remaining_events(
    backend: Backend, sig: signal.Signals
) -> None:
    store = backend.open()
    fill(store)
    head = store.head_position()
    assert head == ACCOUNTS * (DEPOSITS + 1)
    registry = make_registry()
    ProjectionRunner(store, registry, [Balances()], page_size=PAGE).catch_up()
    pause_at = head // 2 + PAGE // 2  # half-way through the page after the middle

    pages, code = interrupt_child(backend, sig, pause_at)

    assert code == (130 if sig == signal.SIGINT else -signal.SIGKILL)
    assert pages == list(range(PAGE, head // 2 + 1, PAGE))
    runner = ProjectionRunner(store, registry, [Balances()], page_size=PAGE)
    (status,) = runner.status()
    # The half-written page left nothing: the new generation stops at the last page the
    # child reported; readers still have the complete old one, and no error is recorded.
    assert status.rebuilding == (2, pages[-1]) == (2, head // 2)
    assert (status.generation, status.problem, status.rebuild_problem) == (1, None, None)
    assert rows(store) == EXPECTED

    assert runner.rebuild("balances") == head - head // 2
    # The child ran this same code (rebuild_child.py's Balances): so it is continued.
    assert runner.last_rebuild == RebuildStart(head // 2, "resumed")
    (status,) = runner.status()
    assert (status.generation, status.rebuilding, status.behind) == (2, None, 0)
    resumed = rows(store)
    assert resumed == EXPECTED
    # The same read model as a rebuild from the first event, uninterrupted.
    assert runner.rebuild("balances", restart=True) == head
    assert rows(store) == resumed
    store.close()


def test_the_code_fingerprint_reads_the_class_s_file_or_else_its_names_and_handlers() -> None:
    source = CHILD.read_text()
    # The same file loaded under another module's name: the same code. (The test above
    # has the child run it as `__main__` and this process continue its rebuild.)
    spec = importlib.util.spec_from_file_location("child_by_another_name", CHILD)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        assert code_fingerprint(module.Balances) == code_fingerprint(Balances)
    finally:
        del sys.modules[spec.name]
    # No source to read (compiled from a string): names and handlers only, still stable,
    # and not the same as the class whose file can be read.
    made: list[str] = []
    for _ in range(2):
        unread: dict[str, object] = {"__name__": "made"}
        exec(compile(source, "<made at run time>", "exec"), unread)
        made.append(code_fingerprint(unread["Balances"]))  # type: ignore[arg-type]
    assert made[0] == made[1] != code_fingerprint(Balances)


def test_an_unfinished_rebuild_whose_code_was_not_recorded_starts_afresh(tmp_path: Path) -> None:
    store = SQLiteEventStore(tmp_path / "events.sqlite")
    fill(store)
    registry = make_registry()
    runner = ProjectionRunner(store, registry, [Balances()], page_size=PAGE)

    class Stop(Exception):
        pass

    def stop(name: str, position: int, head: int) -> None:
        if position >= PAGE * 2:
            raise Stop

    with pytest.raises(Stop):
        runner.rebuild("balances", stop)
    # As left by an esgen that did not record the code of a rebuild.
    with store.transaction() as conn:
        conn.execute("DELETE FROM esgen_rebuilds")
    runner = ProjectionRunner(store, registry, [Balances()], page_size=PAGE)
    assert runner.rebuild("balances") == store.head_position()
    assert runner.last_rebuild == RebuildStart(None, "code changed")
    assert rows(store) == EXPECTED
    store.close()
