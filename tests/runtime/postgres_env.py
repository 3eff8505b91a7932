"""Where the PostgreSQL tests find a server, and what they do without one.

`ESGEN_TEST_POSTGRES_DSN` names the server (default: the local one on 127.0.0.1:5432 as
user postgres). Without a reachable server a local run skips the PostgreSQL test modules,
summed up in one line saying how to enable them; with `ESGEN_REQUIRE_POSTGRES=1` or `CI`
set (as `.ci/run` does) they fail to collect instead, so CI never passes by skipping them.

Every test works in schemas of its own with random names, dropped afterwards, so runs in
parallel (or by several people) against one server do not collide."""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from esgen.runtime._postgres_calls import describe_dsn

DSN_VARIABLE = "ESGEN_TEST_POSTGRES_DSN"
REQUIRE_VARIABLE = "ESGEN_REQUIRE_POSTGRES"
DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def required() -> bool:
    ci = os.environ.get("CI", "").lower()
    return os.environ.get(REQUIRE_VARIABLE) == "1" or ci not in ("", "0", "false", "no")


@functools.cache
def _probe() -> tuple[str, str | None]:
    dsn = os.environ.get(DSN_VARIABLE) or DEFAULT_DSN
    try:
        psycopg.connect(dsn, connect_timeout=3).close()
    except psycopg.Error as exc:
        return dsn, " ".join(str(exc).split())
    return dsn, None


def require_postgres() -> str:
    """The DSN of a reachable server. Called at the top of each PostgreSQL test module: with
    no server the module is skipped (or, in CI, fails to collect), and since the skip is
    raised here, pytest sums every module's skip up in one line."""
    dsn, error = _probe()
    if error is None:
        return dsn
    message = (
        f"PostgreSQL tests skipped: cannot reach {describe_dsn(conninfo_to_dict(dsn))} "
        f"({error}); set {DSN_VARIABLE}=postgresql://user@host:port/db to run them"
    )
    if required():
        pytest.fail(
            f"{message.replace('skipped', 'failed', 1)} ({REQUIRE_VARIABLE}=1 or CI is set)",
            pytrace=False,
        )
    pytest.skip(message, allow_module_level=True)


def available_dsn() -> str | None:
    """The DSN of a reachable server, or None when there is none and the PostgreSQL tests
    may be skipped: for tests that also run without a server (the examples' own tests are
    handed it). Where the PostgreSQL tests are required, no server fails the caller."""
    _, error = _probe()
    if error is None or required():
        return require_postgres()
    return None


def new_schema() -> str:
    return f"esgen_test_{uuid.uuid4().hex[:12]}"


def drop_schema(dsn: str, schema: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def postgres_event_store(**options: Any) -> Iterator[Any]:
    """A PostgresEventStore in a schema of its own on the test server, dropped afterwards
    (the module is skipped when there is no server): for store fixtures, `yield from`."""
    from esgen.runtime import PostgresEventStore

    dsn = require_postgres()
    schema = new_schema()
    try:
        with PostgresEventStore(dsn, schema=schema, **options) as store:
            yield store
    finally:
        drop_schema(dsn, schema)


def connect(dsn: str) -> psycopg.Connection[tuple[object, ...]]:
    """A raw connection, for what the tests do behind the store's back."""
    return psycopg.connect(dsn, autocommit=True)


class Proxy:
    """A TCP relay in front of the server, so a test can make the server vanish (and come
    back) for one store without touching the server others are using."""

    def __init__(self, dsn: str) -> None:
        params = conninfo_to_dict(dsn)
        host = str(params.get("host") or os.environ.get("PGHOST") or "localhost")
        port = int(params.get("port") or os.environ.get("PGPORT") or 5432)
        if host.startswith("/"):
            self._upstream: tuple[int, Any] = (socket.AF_UNIX, f"{host}/.s.PGSQL.{port}")
        else:
            self._upstream = (socket.AF_INET, (host.split(",")[0], port))
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._black_hole = False
        self._listener: socket.socket | None = None
        self.port = 0
        self.dsn = ""
        self.start()
        params = {key: value for key, value in params.items() if key != "hostaddr"}
        self.dsn = make_conninfo("", **{**params, "host": "127.0.0.1", "port": str(self.port)})

    def start(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        """Drop every relayed connection, as a network failure would; new ones still work."""
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def black_hole(self) -> None:
        """The network is gone: connections dropped, new ones accepted and never answered,
        so a client waits for its connect timeout."""
        self._black_hole = True
        self.cut()

    def stop(self) -> None:
        """The server is gone: connections dropped, new ones refused."""
        if self._listener is not None:
            # shutdown() first: close() alone does not wake a thread blocked in accept(),
            # which would go on accepting.
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        self.cut()

    def __enter__(self) -> Proxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # stopped
            if self._black_hole:
                with self._lock:
                    self._sockets.append(client)  # held open, never answered
                continue
            try:
                server = socket.socket(self._upstream[0], socket.SOCK_STREAM)
                server.connect(self._upstream[1])
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, server]
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=_pump, args=(source, target), daemon=True).start()


def _pump(source: socket.socket, target: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            target.sendall(data)
    for sock in (source, target):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
