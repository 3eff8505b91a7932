"""Where the PostgreSQL tests find a server, and what they do without one.

`ESGEN_TEST_POSTGRES_DSN` names the server (default: the local one on 127.0.0.1:5432 as
user postgres). Without a reachable server a local run skips the PostgreSQL tests with one
line saying how to enable them; with `ESGEN_REQUIRE_POSTGRES=1` or `CI` set (as `.ci/run`
does) they fail instead, so CI never passes by skipping them.

Every test works in schemas of its own with random names, dropped afterwards, so runs in
parallel (or by several people) against one server do not collide.
"""

from __future__ import annotations

import functools
import os
import uuid

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from esgen.runtime._postgres import describe_dsn

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


def postgres_dsn() -> str:
    """The DSN of a reachable server; otherwise skip the test, or fail it in CI."""
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
    pytest.skip(message)


def new_schema() -> str:
    return f"esgen_test_{uuid.uuid4().hex[:12]}"


def drop_schema(dsn: str, schema: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def connect(dsn: str) -> psycopg.Connection[tuple[object, ...]]:
    """A raw connection, for what the tests do behind the store's back."""
    return psycopg.connect(dsn, autocommit=True)
