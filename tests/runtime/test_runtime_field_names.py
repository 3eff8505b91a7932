"""Field names that cannot be attributes as they are (`from`, `class`, `json`, `str`) and
builtins that can (`id`, `type`, `all`, `any`) work end to end: commands, events stored
under the schema's keys, aggregate state, read-model columns (many are SQL keywords) and
saga state, on SQLite and on PostgreSQL; and the attributes type-check with and without
pydantic's mypy plugin.

The code is the golden case `field_names`, with its user modules filled in.
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

CASE = Path(__file__).parent.parent / "cases" / "field_names" / "expected" / "src"
# Names the case must cover: keywords, pydantic attributes, builtin types, other builtins.
COVERED = {"from", "class", "None", "json", "copy", "event_type", "str", "list", "dict"}
COVERED |= {"model_config", "model_fields", "model_name"}
COVERED |= {"id", "type", "all", "any", "format", "hash", "property", "super"}

GADGET = """
from __future__ import annotations

from collections.abc import Sequence

from ..aggregates.gadget import GadgetBase, GadgetState
from ..commands.gadget import MakeGadget
from ..events.gadget import GadgetMade, Moved


class Gadget(GadgetBase):
    def handle_make_gadget(self, command: MakeGadget) -> Sequence[GadgetMade]:
        return [GadgetMade(**command.model_dump())]

    def apply_gadget_made(self, event: GadgetMade) -> GadgetState:
        return GadgetState(**event.model_dump(exclude={"gadget_id"}))

    def apply_moved(self, event: Moved) -> GadgetState:
        return self.state
"""

GADGETS = """
from __future__ import annotations

from esgen.runtime import RecordedEvent

from ..events.gadget import GadgetMade
from ..projections.gadgets import GadgetsBase, GadgetsRow


class Gadgets(GadgetsBase):
    def on_gadget_made(self, event: GadgetMade, recorded: RecordedEvent) -> None:
        # The read model has no columns true and false (E405).
        row = GadgetsRow(**event.model_dump(exclude={"True_", "False_"}))
        self.rows.put(row)
        # Changes named by column (`from`) or by attribute (`from_`) both apply.
        self.rows.update(row.gadget_id, **row.model_dump())
        self.rows.update(row.gadget_id, **row.model_dump(by_alias=False))
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
from names.registry import REGISTRY
from names.types import Builtins, Stamps

keys = {
    name: info.serialization_alias or name
    for name, info in MakeGadget.model_fields.items()
    if name != "gadget_id"
}
kind, where = sys.argv[1], sys.argv[2]
if kind == "sqlite":
    store = SQLiteEventStore(where)
else:
    store = PostgresEventStore(where, schema=sys.argv[3])
service = NamesService(store)
(saga,) = service.sagas(start="beginning")
gadget_id = uuid4()
# By attribute, as code writes it.
service.dispatch(MakeGadget(gadget_id=gadget_id, **{a: f"v-{k}" for a, k in keys.items()}))
state = service.gadget_repository.load(gadget_id).state
(recorded,) = store.read_stream(service.gadget_repository.stream_id(gadget_id))
runner = service.projections()
runner.catch_up()
runner.rebuild("gadgets")
saga.catch_up()
print(json.dumps({
    "keys": sorted(keys.values()),
    "state": state.model_dump(),
    "attributes": {a: getattr(state, a) for a in keys},
    "stored": json.loads(recorded.data),
    "by_key": Builtins.model_validate({"from": 2, "str": 3, "id": 4}).model_dump(),
    "by_attribute": Builtins(from_=2, str_=3, id=4).model_dump_json(),
    "moved": REGISTRY.decode(
        "Moved", 1, json.dumps({"from": "a", "to": "b", "str": 3})
    ).model_dump(mode="json"),
    "stamps": Stamps().model_dump(mode="json"),
}))
store.close()
"""

# What users write: attributes with a trailing underscore, checked by mypy --strict.
TYPED = """
from names.types import Builtins

value = Builtins(from_=2, class_=3, json_=4, str_=5, id=6, type=7, None_=8)
total: int = value.from_ + value.class_ + value.json_ + value.str_ + value.id + value.None_
"""


@pytest.fixture
def package(tmp_path: Path) -> Iterator[Path]:
    src = tmp_path / "src"
    shutil.copytree(CASE, src)
    domain = src / "names" / "domain"
    for name, text in (("gadget", GADGET), ("gadgets", GADGETS), ("echo", ECHO)):
        (domain / f"{name}.py").write_text(textwrap.dedent(text).lstrip())
    yield src


def _run(src: Path, *args: str) -> list[str]:
    result = subprocess.run(
        # Warnings are errors: pydantic warns of fields in its protected namespaces.
        [sys.executable, "-W", "error::UserWarning", "-c", SCRIPT, *args],
        env={**os.environ, "PYTHONPATH": str(src)},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    keys: list[str] = report["keys"]
    assert set(keys) >= COVERED
    expected = {k: f"v-{k}" for k in keys}
    assert report["state"] == expected  # dumped by the schema's keys
    assert sorted(report["attributes"].values()) == sorted(expected.values())
    assert report["stored"] == {"gadget_id": report["stored"]["gadget_id"], **expected}
    assert report["by_key"]["from"] == 2 and report["by_key"]["str"] == 3
    assert report["by_key"]["id"] == 4 and report["by_key"]["json"] == 1
    # Stored as version 1, read through the derived upcaster: a rename to a keyword, a
    # default for one, a widening of another.
    leg = {"route": {"from": "here", "to": "there"}, "mode": "rail"}
    moved = {"from": "a", "import": "b", "class": "economy", "str": 3.0, "leg": leg}
    assert report["moved"] == {**moved, "date": None, "due": "2024-01-01"}
    assert report["stamps"] == {
        "date": None,
        "due": "2024-01-01",
        "datetime": None,
        "Decimal": "1.5",
        "price": "2.5",
        "UUID": None,
        "ref": "12345678-1234-5678-1234-567812345678",
        "AwareDatetime": "2024-01-01T00:00:00Z",
    }
    by_attribute = json.loads(report["by_attribute"])
    assert by_attribute == report["by_key"]
    return keys


def test_field_names_work_on_sqlite(package: Path, tmp_path: Path) -> None:
    import sqlite3

    database = tmp_path / "names.sqlite"
    keys = _run(package, "sqlite", str(database))
    with sqlite3.connect(database) as conn:
        conn.row_factory = sqlite3.Row
        (row,) = conn.execute("SELECT * FROM gadgets").fetchall()
        (saga_state,) = conn.execute("SELECT state FROM esgen_sagas").fetchall()
    columns = [k for k in keys if k not in ("True", "False")]
    assert {k: row[k] for k in columns} == {k: f"v-{k}" for k in columns}
    assert json.loads(saga_state[0]) == {k: f"v-{k}" for k in keys}


def test_field_names_work_on_postgres(package: Path) -> None:
    import psycopg
    from psycopg import sql
    from psycopg.rows import dict_row

    dsn = require_postgres()
    schema = new_schema()
    try:
        keys = _run(package, "postgres", dsn, schema)
        with psycopg.connect(dsn, row_factory=dict_row) as conn:
            query = sql.SQL("SELECT * FROM {}.gadgets").format(sql.Identifier(schema))
            (row,) = conn.execute(query).fetchall()
            query = sql.SQL("SELECT state FROM {}.esgen_sagas").format(sql.Identifier(schema))
            (saga_state,) = conn.execute(query).fetchall()
        columns = [k for k in keys if k not in ("True", "False")]
        assert {k: row[k] for k in columns} == {k: f"v-{k}" for k in columns}
        state = saga_state["state"]
        state = json.loads(state) if isinstance(state, str) else state
        assert state == {k: f"v-{k}" for k in keys}
    finally:
        drop_schema(dsn, schema)


@pytest.mark.parametrize("plugin", [False, True], ids=["plain", "pydantic-plugin"])
def test_attributes_type_check(package: Path, tmp_path: Path, plugin: bool) -> None:
    (tmp_path / "use.py").write_text(textwrap.dedent(TYPED).lstrip())
    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\n" + ("plugins = pydantic.mypy\n" if plugin else ""))
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--config-file", str(config),
         "--cache-dir", str(tmp_path / "cache"), str(tmp_path / "use.py")],
        env={**os.environ, "MYPYPATH": str(package)},
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
