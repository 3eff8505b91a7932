"""`esgen forget`, `esgen master-key` and the master key of the read-side commands, as an
operator runs them: the installed `esgen` in a subprocess, on real SQLite files (and a
PostgreSQL schema of its own), a terminal made with a pty where one is needed."""

from __future__ import annotations

import base64
import getpass
import json
import os
import pty
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest
from harness import EXAMPLES

from esgen.runtime import EventStore, MasterKey, SQLiteEventStore

ESGEN = Path(sys.executable).parent / "esgen"
TIMEOUT = 120
KEY = base64.b64encode(bytes(range(32))).decode()
OTHER_KEY = base64.b64encode(bytes(range(1, 33))).decode()
FORGOTTEN_STREAM = "esgen-forgotten-subjects"


def esgen(
    cwd: Path, *args: str, stdin: int | None = subprocess.DEVNULL, **extra: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "ESGEN_MASTER_KEY"}
    return subprocess.run(
        [str(ESGEN), *args],
        cwd=cwd,
        env={**env, "PYTHONDONTWRITEBYTECODE": "1", "COLUMNS": "200", **extra},
        stdin=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=TIMEOUT,
    )


def one_error(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("esgen: error: "), result.stderr
    return lines[0].removeprefix("esgen: error: ")


# -- esgen forget on a SQLite store ---------------------------------------------------------


class Sealed:
    """A store holding sealed data of ada and bob, as the application wrote it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with SQLiteEventStore(path, master_key=MasterKey.from_text(KEY)) as store:
            assert store.keyring is not None
            self.ada = store.keyring.seal("ada", b"Ada Lovelace")
            self.bob = store.keyring.seal("bob", b"Bob Stone")

    def read(self, subject: str) -> bytes | None:
        with SQLiteEventStore(self.path, master_key=MasterKey.from_text(KEY)) as store:
            assert store.keyring is not None
            return store.keyring.open(subject, getattr(self, subject))

    def audits(self) -> list[tuple[str, dict[str, str]]]:
        with SQLiteEventStore(self.path) as store:
            if store.stream_version(FORGOTTEN_STREAM) == 0:
                return []
            return [
                (json.loads(e.data)["subject"], dict(e.metadata))
                for e in store.read_stream(FORGOTTEN_STREAM)
            ]


@pytest.fixture
def sealed(tmp_path: Path) -> Sealed:
    return Sealed(tmp_path / "app.sqlite")


def test_forget_with_yes_erases_the_subject_and_records_who_asked(
    sealed: Sealed, tmp_path: Path
) -> None:
    result = esgen(
        tmp_path, "forget", "ada", "--store", "app.sqlite", "--yes",
        "--actor", "dpo@example.org", "--reason", "ticket 42",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == "forgot subject 'ada'\n"
    assert sealed.read("ada") is None  # the placeholder from now on
    assert sealed.read("bob") == b"Bob Stone"
    ((subject, metadata),) = sealed.audits()
    assert subject == "ada"
    assert metadata["actor"] == "dpo@example.org" and metadata["reason"] == "ticket 42"
    # No master key was given, none was needed: the key row is gone, not decrypted.
    with sqlite3.connect(sealed.path) as db:
        assert db.execute(
            "SELECT wrapped FROM esgen_subject_keys WHERE subject = 'ada'"
        ).fetchone() == (None,)


def test_forgetting_again_says_so_and_records_nothing(sealed: Sealed, tmp_path: Path) -> None:
    assert esgen(tmp_path, "forget", "ada", "--store", "app.sqlite", "-y").returncode == 0
    again = esgen(tmp_path, "forget", "ada", "--store", "app.sqlite", "-y")
    assert again.returncode == 0, again.stderr
    assert again.stdout == "subject 'ada' was forgotten before: nothing to do\n"
    assert len(sealed.audits()) == 1


def test_json_prints_one_object_per_subject(sealed: Sealed, tmp_path: Path) -> None:
    assert esgen(tmp_path, "forget", "ada", "--store", "app.sqlite", "-y").returncode == 0
    result = esgen(
        tmp_path, "forget", "ada", "bob", "carol", "bob", "--store", "app.sqlite", "-y", "--json"
    )
    assert result.returncode == 0, result.stderr
    assert [json.loads(line) for line in result.stdout.splitlines()] == [
        {"subject": "ada", "forgotten": False, "known": True},
        {"subject": "bob", "forgotten": True, "known": True},
        {"subject": "carol", "forgotten": True, "known": False},
    ]
    assert sealed.read("bob") is None
    # One run, one conversation: its audit events share their correlation id.
    (_, first), (_, second), (_, third) = sealed.audits()
    assert second["correlation_id"] == third["correlation_id"] != first["correlation_id"]


def test_a_subject_the_store_never_saw_is_forgotten_with_a_word_about_the_id(
    sealed: Sealed, tmp_path: Path
) -> None:
    result = esgen(tmp_path, "forget", "ada-typo", "--store", "app.sqlite", "-y")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "forgot subject 'ada-typo' (no personal data of it was stored: is the id right?)\n"
    )


def test_the_actor_is_the_os_user_unless_given(sealed: Sealed, tmp_path: Path) -> None:
    assert esgen(tmp_path, "forget", "ada", "--store", "app.sqlite", "-y").returncode == 0
    ((_, metadata),) = sealed.audits()
    assert metadata["actor"] == getpass.getuser()
    assert "reason" not in metadata


def test_without_a_terminal_forget_wants_yes_and_does_nothing(
    sealed: Sealed, tmp_path: Path
) -> None:
    result = esgen(tmp_path, "forget", "ada", "bob", "--store", "app.sqlite")
    assert one_error(result, 2) == (
        "forgetting cannot be undone: pass --yes to forget 2 subjects (standard input is not "
        "a terminal to ask on)"
    )
    assert sealed.read("ada") == b"Ada Lovelace"
    assert sealed.audits() == []


def on_terminal(cwd: Path, answer: str, *args: str) -> subprocess.CompletedProcess[str]:
    """esgen with its standard input on a terminal, where `answer` is typed."""
    leader, follower = pty.openpty()
    try:
        os.write(leader, answer.encode())
        return esgen(cwd, *args, stdin=follower)
    finally:
        os.close(follower)
        os.close(leader)


def test_on_a_terminal_forget_asks_first(sealed: Sealed, tmp_path: Path) -> None:
    refused = on_terminal(tmp_path, "n\n", "forget", "ada", "--store", "app.sqlite")
    assert refused.returncode == 1, refused.stderr
    assert "Forget subject 'ada' in app.sqlite? Their personal data can never be read again" in (
        refused.stderr
    )
    assert refused.stderr.endswith("esgen: error: nothing was forgotten\n")
    assert sealed.read("ada") == b"Ada Lovelace"
    agreed = on_terminal(tmp_path, "y\n", "forget", "ada", "--store", "app.sqlite")
    assert agreed.returncode == 0, agreed.stderr
    assert agreed.stdout == "forgot subject 'ada'\n"
    assert sealed.read("ada") is None


@pytest.mark.parametrize(
    ("store", "message"),
    [
        ("gone.sqlite", "no event store at 'gone.sqlite' (a SQLite file path, or a "
         "postgresql:// DSN)"),
        ("folder", "--store folder: a folder, not a SQLite file; give the store's file"),
        ("notes.txt", "notes.txt is not a SQLite database (file is not a database)"),
        ("other.sqlite", "other.sqlite holds no esgen event store (no esgen_events table); the "
         "application creates its tables the first time it opens the store"),
    ],
)  # fmt: skip
def test_a_store_that_is_not_there_is_one_line_and_nothing_is_created(
    tmp_path: Path, store: str, message: str
) -> None:
    (tmp_path / "folder").mkdir()
    (tmp_path / "notes.txt").write_text("not a database, but long enough to be read as one\n" * 4)
    with sqlite3.connect(tmp_path / "other.sqlite") as db:
        db.execute("CREATE TABLE t (x)")
    before = sorted(p.name for p in tmp_path.iterdir())
    result = esgen(tmp_path, "forget", "ada", "--store", store, "--yes")
    assert one_error(result, 2) == message
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_an_empty_subject_is_refused_before_anything_is_done(
    sealed: Sealed, tmp_path: Path
) -> None:
    result = esgen(tmp_path, "forget", "ada", " ", "--store", "app.sqlite", "-y")
    assert one_error(result, 2) == "an empty SUBJECT (' '): give each data subject's id"
    assert sealed.audits() == []


# -- esgen master-key -----------------------------------------------------------------------


def test_master_key_prints_a_new_key_that_the_runtime_reads(tmp_path: Path) -> None:
    first, second = esgen(tmp_path, "master-key"), esgen(tmp_path, "master-key")
    assert first.returncode == 0 and second.returncode == 0
    assert first.stdout != second.stdout
    text = first.stdout.strip()
    assert first.stdout == text + "\n" and len(base64.b64decode(text, validate=True)) == 32
    MasterKey.from_text(text)
    assert first.stderr.count("\n") == 1 and "ESGEN_MASTER_KEY" in first.stderr


# -- the master key of the read-side commands --------------------------------------------------


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The bank example as a project of its own, AccountOpened.owner marked personal, and
    an empty store."""
    root = tmp_path / "bank"
    for part in ("schemas", "src"):
        shutil.copytree(
            EXAMPLES / "bank" / part, root / part, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(EXAMPLES / "bank" / "pyproject.toml", root)
    events = root / "src" / "bank" / "events" / "account.py"
    text = events.read_text()
    text = text.replace("from esgen.runtime import Event\n", "from typing import Annotated\n"
                        "from esgen.runtime import Event, Personal\n", 1)  # fmt: skip
    text = text.replace(
        '    owner: str\n    currency: str = "EUR"\n',
        '    owner: Annotated[str, Personal(erased="<erased>")]\n    currency: str = "EUR"\n',
        1,
    )
    events.write_text(text)
    SQLiteEventStore(root / "bank.sqlite").close()
    return root


@pytest.fixture
def bank(project: Path) -> Path:
    """The project with a store where Ada opened an account under KEY."""
    root = project
    seed = (
        "import sys\n"
        "from uuid import UUID\n"
        "from esgen.runtime import MasterKey, SQLiteEventStore\n"
        "from bank.commands.account import OpenAccount\n"
        "from bank.service import BankService\n"
        "store = SQLiteEventStore(sys.argv[1], master_key=MasterKey.from_env())\n"
        "BankService(store).dispatch(\n"
        "    OpenAccount(account_id=UUID(int=1), owner='Ada Lovelace', currency='EUR'))\n"
        "store.close()\n"
    )
    subprocess.run(
        [sys.executable, "-c", seed, str(root / "bank.sqlite")],
        env={**os.environ, "PYTHONPATH": str(root / "src"), "ESGEN_MASTER_KEY": KEY},
        check=True,
        timeout=TIMEOUT,
    )
    with sqlite3.connect(root / "bank.sqlite") as db:
        stored = db.execute("SELECT data FROM esgen_events WHERE position = 1").fetchone()[0]
    assert "Ada Lovelace" not in stored and '"$personal"' in stored
    return root


ADA = f"Account-{UUID(int=1)}"


def test_inspect_reads_personal_data_with_the_master_key_from_the_environment(
    bank: Path,
) -> None:
    result = esgen(bank, "inspect", "events", ADA, "--store", "bank.sqlite", ESGEN_MASTER_KEY=KEY)
    assert result.returncode == 0, result.stderr
    assert "Ada Lovelace" in result.stdout
    named = esgen(
        bank, "inspect", "events", ADA, "--store", "bank.sqlite", "--master-key-env", "BANK_KEY",
        BANK_KEY=KEY,
    )  # fmt: skip
    assert named.returncode == 0, named.stderr
    assert "Ada Lovelace" in named.stdout


def test_without_the_master_key_personal_data_is_one_line_naming_the_variable(
    bank: Path,
) -> None:
    result = esgen(bank, "inspect", "events", ADA, "--store", "bank.sqlite")
    line = one_error(result, 1)
    assert "personal data of subject '00000000-0000-0000-0000-000000000001'" in line
    assert line.endswith(
        ": esgen reads the master key from the environment variable ESGEN_MASTER_KEY, which "
        "is not set"
    )
    assert "master_key=" not in line  # the runtime's advice is for code


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_projection_that_meets_personal_data_without_the_key_stops_with_one_line(
    bank: Path, log_format: str
) -> None:
    result = esgen(
        bank, "projections", "catch-up", "--store", "bank.sqlite", "--log-format", log_format
    )
    assert result.returncode == 1, result.stderr
    (line,) = result.stderr.splitlines()
    if log_format == "json":
        record = json.loads(line)
        assert (
            record["error"] == "KeyUnavailable"
            and record["runner"] == "projection account_balances"
        )
        line = "esgen: error: " + record["message"]
    assert line.startswith("esgen: error: projection account_balances stopped: stored data of ")
    assert line.endswith("the environment variable ESGEN_MASTER_KEY, which is not set")
    caught = esgen(bank, "projections", "catch-up", "--store", "bank.sqlite", ESGEN_MASTER_KEY=KEY)
    assert caught.returncode == 0, caught.stderr


def test_the_wrong_master_key_is_one_line(bank: Path) -> None:
    result = esgen(
        bank, "inspect", "events", ADA, "--store", "bank.sqlite", ESGEN_MASTER_KEY=OTHER_KEY
    )
    line = one_error(result, 1)
    assert "does not unwrap with this master key" in line
    assert line.endswith(
        "; esgen read the master key from the environment variable ESGEN_MASTER_KEY"
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not base64!", "the environment variable ESGEN_MASTER_KEY is not base64 text"),
        (base64.b64encode(b"short").decode(),
         "the environment variable ESGEN_MASTER_KEY holds 5 bytes; a master key is 32 (make "
         "one with `esgen master-key`)"),
    ],
)  # fmt: skip
def test_a_bad_master_key_is_one_line_before_anything_is_read(
    project: Path, value: str, message: str
) -> None:
    for command in (("inspect", "streams"), ("projections", "status"), ("sagas", "status")):
        result = esgen(project, *command, "--store", "bank.sqlite", ESGEN_MASTER_KEY=value)
        assert one_error(result, 2).startswith(message), command


def test_a_master_key_variable_named_but_not_set_is_one_line(project: Path) -> None:
    result = esgen(
        project, "projections", "status", "--store", "bank.sqlite", "--master-key-env", "BANK_KEY"
    )
    assert one_error(result, 2) == (
        "--master-key-env BANK_KEY: the environment variable BANK_KEY is not set"
    )


def test_after_forget_inspect_shows_the_placeholder(bank: Path) -> None:
    subject = str(UUID(int=1))
    assert esgen(bank, "forget", subject, "--store", "bank.sqlite", "-y").returncode == 0
    result = esgen(bank, "inspect", "events", ADA, "--store", "bank.sqlite", ESGEN_MASTER_KEY=KEY)
    assert result.returncode == 0, result.stderr
    assert "<erased>" in result.stdout and "Ada Lovelace" not in result.stdout


# -- PostgreSQL -------------------------------------------------------------------------------


@pytest.fixture
def pg_store() -> Iterator[tuple[str, str]]:
    from runtime.postgres_env import available_dsn, drop_schema, new_schema

    from esgen.runtime import PostgresEventStore

    dsn = available_dsn()
    if dsn is None:
        pytest.skip("no PostgreSQL server (see tests/runtime/postgres_env.py)")
    if PostgresEventStore.forget_subject is EventStore.forget_subject:
        pytest.skip("this PostgresEventStore keeps no personal-data keys yet")
    schema = new_schema()
    PostgresEventStore(dsn, schema=schema).close()
    yield dsn, schema
    drop_schema(dsn, schema)


def test_forget_on_postgresql(pg_store: tuple[str, str], tmp_path: Path) -> None:
    from esgen.runtime import PostgresEventStore

    dsn, schema = pg_store
    with PostgresEventStore(dsn, schema=schema, master_key=MasterKey.from_text(KEY)) as store:
        assert store.keyring is not None
        sealed = store.keyring.seal("ada", b"Ada Lovelace")
    args = ("forget", "ada", "--store", dsn, "--pg-schema", schema, "-y", "--json")
    first, second = esgen(tmp_path, *args), esgen(tmp_path, *args)
    assert json.loads(first.stdout) == {"subject": "ada", "forgotten": True, "known": True}
    assert json.loads(second.stdout) == {"subject": "ada", "forgotten": False, "known": True}
    with PostgresEventStore(dsn, schema=schema, master_key=MasterKey.from_text(KEY)) as store:
        assert store.keyring is not None
        assert store.keyring.open("ada", sealed) is None
        assert [e.event_type for e in store.read_stream(FORGOTTEN_STREAM)] == [
            "esgen.SubjectForgotten"
        ]
    missing = esgen(tmp_path, "forget", "ada", "--store", dsn, "--pg-schema", "nowhere", "-y")
    assert "PostgreSQL schema 'nowhere' holds no esgen event store" in one_error(missing, 2)


def test_the_question_never_shows_a_password(pg_store: tuple[str, str], tmp_path: Path) -> None:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    dsn, schema = pg_store
    # Trust authentication takes any password: the one in the DSN is only there to be hidden.
    with_password = make_conninfo(**{**conninfo_to_dict(dsn), "password": "S3cret-pw"})
    url = "postgresql://{user}:S3cret-pw@{host}:{port}/{dbname}".format(
        **{"host": "127.0.0.1", "port": "5432", **conninfo_to_dict(with_password)}
    )
    asked = on_terminal(tmp_path, "n\n", "forget", "ada", "--store", url, "--pg-schema", schema)
    assert "Forget subject 'ada' in PostgreSQL database" in asked.stderr, asked.stderr
    assert "S3cret-pw" not in asked.stderr + asked.stdout
