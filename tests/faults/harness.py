"""What the fault scenarios share: a store per scenario, worker processes, and the faults.

A scenario gets a fresh SQLite file or a fresh PostgreSQL schema (dropped afterwards), starts
worker processes (`worker.py`), and injects faults into them: SIGKILL, or on PostgreSQL the
server ending their sessions (`pg_terminate_backend`), picked among workers that have been
working for a moment. A worker that exits by itself, or not with 0 when asked to stop, is a
crash: its stderr is kept in the run folder.
"""

from __future__ import annotations

import os
import random
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from esgen.runtime import EventStore, PostgresEventStore, SQLiteEventStore

from .worker import DSN_VARIABLE, ROOT

__all__ = ["Backend", "Child", "Crew", "Fault"]

Fault = Literal["kill", "terminate"]
READY_TIMEOUT = 300.0  # a shared, busy machine can take long to start a Python process


@dataclass
class Backend:
    """Where one scenario's events live."""

    kind: Literal["sqlite", "postgres"]
    where: str  # the SQLite file, or the PostgreSQL schema
    dsn: str = ""
    drop: Callable[[str, str], None] | None = None

    @property
    def spec(self) -> str:
        return f"{self.kind}:{self.where}"

    def open(self) -> EventStore:
        if self.kind == "sqlite":
            return SQLiteEventStore(self.where, busy_timeout=30.0)
        return PostgresEventStore(self.dsn, schema=self.where)

    def query(self, text: str) -> list[tuple[Any, ...]]:
        """Rows of a query on the store's database, as any SQL client sees them; `{s}.`
        stands for the schema on PostgreSQL and for nothing on SQLite."""
        if self.kind == "sqlite":
            import sqlite3

            with sqlite3.connect(self.where) as conn:
                return conn.execute(text.replace("{s}.", "")).fetchall()
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            return conn.execute(text.replace("{s}", f'"{self.where}"')).fetchall()  # type: ignore[arg-type]

    def terminate(self, app: str) -> int:
        """End the server sessions of one worker; how many there were."""
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = %s AND datname = current_database()",
                (app,),
            ).fetchall()
        return sum(1 for (done,) in rows if done)

    def clean_up(self) -> None:
        if self.drop is not None:
            self.drop(self.dsn, self.where)


class Child:
    """One worker process."""

    def __init__(self, role: str, slot: str, backend: Backend, run_dir: Path) -> None:
        self.role = role
        self.slot = slot
        self.app = f"esgen_faults_{role}{slot}"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        if backend.dsn:
            env[DSN_VARIABLE] = backend.dsn
        self._log: IO[bytes] = (run_dir / f"{role}{slot}.stderr").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.faults.worker", role, backend.spec, str(run_dir), slot],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        self.ready_at: float | None = None
        self.code: int | None = None  # once finished

    def poll_ready(self, timeout: float = 0.0) -> bool:
        """Whether the worker said `ready` (waiting up to `timeout` seconds for it)."""
        if self.ready_at is None:
            stdout = self.process.stdout
            assert stdout is not None
            with selectors.DefaultSelector() as selector:
                selector.register(stdout, selectors.EVENT_READ)
                if selector.select(timeout) and stdout.readline() == b"ready\n":
                    self.ready_at = time.monotonic()
        return self.ready_at is not None

    def kill(self) -> int:
        self.process.send_signal(signal.SIGKILL)
        return self.finish(60)

    def finish(self, timeout: float) -> int:
        if self.code is not None:
            return self.code
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
            code = code if code != -signal.SIGKILL else 124  # hung: not a clean stop
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._log.close()
        self.code = code
        return code


@dataclass
class Crew:
    """The workers of one scenario: some are faulted and restarted, the rest only run."""

    backend: Backend
    run_dir: Path
    rng: random.Random
    deadline: float = float("inf")  # chaos ends here even if short of its kills
    victims: list[Child] = field(default_factory=list)
    others: list[Child] = field(default_factory=list)
    kills: int = 0
    crashes: list[str] = field(default_factory=list)

    def start(self, role: str, count: int, *, victim: bool) -> None:
        for n in range(count):
            child = Child(role, str(n), self.backend, self.run_dir)
            (self.victims if victim else self.others).append(child)
        for child in self.victims + self.others:
            if not child.poll_ready(READY_TIMEOUT):
                self._crashed(child, child.finish(10), "never became ready")

    def chaos(self, fault: Fault, kills: int, deadline: float) -> None:
        """Inject `kills` faults into working victims, restarting what was killed."""
        while self.kills < kills and time.monotonic() < deadline:
            time.sleep(self.rng.uniform(0.02, 0.25))
            self._replace_the_dead()
            ready = [c for c in self.victims if c.poll_ready()]
            if not ready:
                self.rng.choice(self.victims).poll_ready(READY_TIMEOUT)  # or find it dead
                continue
            victim = self.rng.choice(ready)
            if fault == "kill":
                code = victim.kill()
                if code != -signal.SIGKILL:
                    self._crashed(victim, code, "had exited before the kill")
                else:
                    self.kills += 1
                self.victims[self.victims.index(victim)] = Child(
                    victim.role, victim.slot, self.backend, self.run_dir
                )
            elif self.backend.terminate(victim.app):
                self.kills += 1

    def _replace_the_dead(self) -> None:
        for n, child in enumerate(self.victims):
            code = child.process.poll()
            if code is not None:
                self._crashed(child, child.finish(1), "exited by itself")
                self.victims[n] = Child(child.role, child.slot, self.backend, self.run_dir)
        for child in self.others:
            if child.code is None and child.process.poll() is not None:
                self._crashed(child, child.finish(1), "exited by itself")

    def stop(self) -> None:
        """Ask every worker to stop, and wait for it."""
        (self.run_dir / "stop").touch()
        for child in self.victims + self.others:
            if child.code is None:
                code = child.finish(300)
                if code != 0:
                    self._crashed(child, code, "did not stop cleanly")

    def _crashed(self, child: Child, code: int, what: str) -> None:
        log = self.run_dir / f"{child.role}{child.slot}.stderr"
        self.crashes.append(f"{child.app} {what} (exit code {code}; see {log})")
