"""Fields named like Python builtins (`id`, `type`, `all`, `any`, `format`, ...) work end to
end: commands, events stored under those JSON keys, aggregate state, read-model columns
(some are SQL keywords) and saga state, on SQLite and on PostgreSQL.

The code is the golden case `builtin_names`, with its user modules filled in.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from .postgres_env import drop_schema, new_schema, require_postgres

CASE = Path(__file__).parent.parent / "cases" / "builtin_names" / "expected" / "src"

GADGET = """
from __future__ import annotations

from collections.abc import Sequence

from ..aggregates.gadget import GadgetBase, GadgetState
from ..commands.gadget import MakeGadget
from ..events.gadget import GadgetMade


class Gadget(GadgetBase):
    def handle_make_gadget(self, command: MakeGadget) -> Sequence[GadgetMade]:
        return [GadgetMade(**command.model_dump())]

    def apply_gadget_made(self, event: GadgetMade) -> GadgetState:
        return GadgetState(**event.model_dump(exclude={"gadget_id"}))
"""

GADGETS = """
from __future__ import annotations

from esgen.runtime import RecordedEvent

from ..events.gadget import GadgetMade
from ..projections.gadgets import GadgetsBase, GadgetsRow


class Gadgets(GadgetsBase):
    def on_gadget_made(self, event: GadgetMade, recorded: RecordedEvent) -> None:
        self.rows.put(GadgetsRow(**event.model_dump()))
"""

ECHO = """
from __future__ import annotations

from ..events.gadget import GadgetMade
from ..sagas.echo import EchoBase, EchoState


class Echo(EchoBase):
    def on_gadget_made(self, event: GadgetMade) -> None:
        self.state = EchoState(**event.model_dump(exclude={"gadget_id"}))
"""

# Runs in a subprocess on the filled-in package; prints what it read back as JSON.
SCRIPT = """
import json, sys
from uuid import uuid4

from esgen.runtime import PostgresEventStore, SQLiteEventStore
from names.commands.gadget import MakeGadget
from names.service import NamesService
from names.types import Builtins

names = [n for n in MakeGadget.model_fields if n != "gadget_id"]
values = {n: f"v-{n}" for n in names}
kind, where = sys.argv[1], sys.argv[2]
if kind == "sqlite":
    store = SQLiteEventStore(where)
else:
    store = PostgresEventStore(where, schema=sys.argv[3])
service = NamesService(store)
(saga,) = service.sagas(start="beginning")
gadget_id = uuid4()
service.dispatch(MakeGadget(gadget_id=gadget_id, **values))
state = service.gadget_repository.load(str(gadget_id)).state.model_dump()
(recorded,) = store.read_stream(service.gadget_repository.stream_id(str(gadget_id)))
runner = service.projections()
runner.catch_up()
runner.rebuild("gadgets")
saga.catch_up()
print(json.dumps({
    "names": names,
    "state": state,
    "stored_keys": sorted(json.loads(recorded.data)),
    "value_type": Builtins(id=7).model_dump(),
}))
store.close()
"""


@pytest.fixture
def package(tmp_path: Path) -> Iterator[Path]:
    src = tmp_path / "src"
    shutil.copytree(CASE, src)
    domain = src / "names" / "domain"
    for name, text in (("gadget", GADGET), ("gadgets", GADGETS), ("echo", ECHO)):
        (domain / f"{name}.py").write_text(textwrap.dedent(text).lstrip())
    yield src


def _run(src: Path, *args: str) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, *args],
        env={**os.environ, "PYTHONPATH": str(src)},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report: dict[str, object] = json.loads(result.stdout)
    names = report["names"]
    assert isinstance(names, list)
    assert {"id", "type", "all", "any", "format", "hash", "property", "super"} <= set(names)
    assert report["state"] == {n: f"v-{n}" for n in names}
    assert report["stored_keys"] == sorted(["gadget_id", *names])
    value_type = report["value_type"]
    assert isinstance(value_type, dict)
    assert value_type["id"] == 7
    assert value_type["type"] == 1
    return report


def test_builtin_field_names_work_on_sqlite(package: Path, tmp_path: Path) -> None:
    import sqlite3

    database = tmp_path / "names.sqlite"
    report = _run(package, "sqlite", str(database))
    names = report["names"]
    assert isinstance(names, list)
    with sqlite3.connect(database) as conn:
        conn.row_factory = sqlite3.Row
        (row,) = conn.execute("SELECT * FROM gadgets").fetchall()
        (saga_state,) = conn.execute("SELECT state FROM esgen_sagas").fetchall()
    assert {n: row[n] for n in names} == {n: f"v-{n}" for n in names}
    assert json.loads(saga_state[0]) == {n: f"v-{n}" for n in names}


def test_builtin_field_names_work_on_postgres(package: Path) -> None:
    import psycopg
    from psycopg import sql
    from psycopg.rows import dict_row

    dsn = require_postgres()
    schema = new_schema()
    try:
        report = _run(package, "postgres", dsn, schema)
        names = report["names"]
        assert isinstance(names, list)
        with psycopg.connect(dsn, row_factory=dict_row) as conn:
            query = sql.SQL("SELECT * FROM {}.gadgets").format(sql.Identifier(schema))
            (row,) = conn.execute(query).fetchall()
            query = sql.SQL("SELECT state FROM {}.esgen_sagas").format(sql.Identifier(schema))
            (saga_state,) = conn.execute(query).fetchall()
        assert {n: row[n] for n in names} == {n: f"v-{n}" for n in names}
        state = saga_state["state"]
        state = json.loads(state) if isinstance(state, str) else state
        assert state == {n: f"v-{n}" for n in names}
    finally:
        drop_schema(dsn, schema)
