"""Personal data in read-model rows, saga state and steps on PostgreSQL (the cases in
personal_cases.py); the raw scan reads every row of every table of the store's schema as
text. Needs a server: see postgres_env.py."""

from __future__ import annotations

from pathlib import Path
from typing import cast

from psycopg import sql

from esgen.runtime import EventStore, MasterKey, PostgresEventStore

from .personal_cases import PersonalCases
from .postgres_env import connect, drop_schema, new_schema, require_postgres

DSN = require_postgres()


class TestPostgres(PersonalCases):
    def make_store(self, tmp_path: Path, master_key: MasterKey | None) -> EventStore:
        schema = new_schema()
        store = PostgresEventStore(DSN, schema=schema, master_key=master_key)
        close = store.close

        def closing() -> None:
            try:
                close()
            finally:
                drop_schema(DSN, schema)

        store.close = closing  # type: ignore[method-assign]
        return store

    def raw(self, store: EventStore) -> bytes:
        schema = cast(PostgresEventStore, store).schema
        found: list[str] = []
        with connect(DSN) as conn:
            tables = conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
                "AND table_type = 'BASE TABLE'",
                (schema,),
            ).fetchall()
            for (table,) in tables:
                rows = conn.execute(
                    sql.SQL("SELECT t::text FROM {} t").format(sql.Identifier(schema, str(table)))
                ).fetchall()
                found.extend(str(text) for (text,) in rows)
        assert found, "the scan found no rows: it would prove nothing"
        return "\n".join(found).encode()
