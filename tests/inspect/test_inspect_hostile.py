"""`esgen inspect` on stores that hold what an attacker, a foreign program or a very long
saga wrote: nothing forges a line or reaches the terminal, nothing is overwritten, nothing
overflows, and exact values stay exact."""

from __future__ import annotations

import json
import sqlite3
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import pytest
from harness import EXAMPLES
from inspect_run import inspect as esgen

from esgen.runtime import NewEvent, SQLiteEventStore, command_context
from esgen.runtime.testing import ManualClock

sys.path.insert(0, str(EXAMPLES / "bank" / "src"))

from bank.commands.account import DepositMoney, OpenAccount
from bank.service import BankService
from bank.types import Money

ADA = UUID(int=1)
ADA_STREAM = f"Account-{ADA}"
EVIL = "mallory\n2026-01-05 09:02:00.000000Z  teller-7  FORGED\x1b[2J\x1b]0;pwned\x07\u202e"
REQUEST = "5b6a1c9e-0c1d-4e8f-9a7b-3c2d1e0f9a8b"


@pytest.fixture
def store(tmp_path: Path) -> str:
    clock = ManualClock(datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC))
    path = tmp_path / "bank.sqlite"
    with SQLiteEventStore(path, clock=clock) as opened:
        service = BankService(opened, clock=clock)
        with command_context(actor=EVIL, correlation_id=REQUEST):
            service.dispatch(OpenAccount(account_id=ADA, owner="Ada", currency="EUR"))
        clock.advance(timedelta(hours=1))
        with command_context(actor="teller-1"):
            service.dispatch(
                DepositMoney(account_id=ADA, amount=Money(amount=Decimal("5"), currency="EUR"))
            )
    return str(path)


def test_store_text_never_forges_lines_or_reaches_the_terminal(store: str) -> None:
    for args in (
        ("events", ADA_STREAM),
        ("history", ADA_STREAM),
        ("audit", "--correlation", REQUEST),
        ("trace", REQUEST),
    ):
        result = esgen(args[0], "--store", store, *args[1:])
        assert result.returncode == 0, result.stderr
        assert (
            "\x1b" not in result.stdout
            and "\u202e" not in result.stdout
            and "\x07" not in result.stdout
        )
        assert "by mallory\\n2026-01-05" in result.stdout or "mallory\\n2026-01-05" in result.stdout
        assert not any(line.startswith("2026-01-05 09:02") for line in result.stdout.splitlines())
    audit = esgen("audit", "--store", store, "--correlation", REQUEST)
    assert len(audit.stdout.splitlines()) == 1


def test_html_never_replaces_the_store_or_a_file_it_did_not_write(
    store: str, tmp_path: Path
) -> None:
    before = Path(store).read_bytes()
    onto_store = esgen("trace", "--store", store, REQUEST, "--html", store)
    assert onto_store.returncode == 2 and "is the event store itself" in onto_store.stderr
    assert Path(store).read_bytes() == before
    notes = tmp_path / "notes.html"
    notes.write_text("my notes", encoding="utf-8")
    refused = esgen("trace", "--store", store, REQUEST, "--html", str(notes))
    assert refused.returncode == 2 and "is not a trace page esgen wrote" in refused.stderr
    assert notes.read_text(encoding="utf-8") == "my notes"
    folder = esgen("trace", "--store", store, REQUEST, "--html", str(tmp_path))
    assert folder.returncode == 2 and "is a directory" in folder.stderr
    page = tmp_path / "trace.html"
    for _ in range(2):  # a page esgen wrote is replaced by the next one
        written = esgen("trace", "--store", store, REQUEST, "--html", str(page))
        assert written.returncode == 0, written.stderr
    html = page.read_text(encoding="utf-8")
    assert "\x1b" not in html and "<script" not in html


def test_a_version_past_the_end_is_an_error(store: str) -> None:
    result = esgen("state", "--store", store, ADA_STREAM, "--version", "9")
    assert result.returncode == 1
    assert "has no version 9 (it ends at 2)" in result.stderr


def test_times_as_listed_and_as_typed(store: str) -> None:
    listed = esgen("events", "--store", store, ADA_STREAM).stdout
    assert "2026-03-01 12:00:00.123456Z" in listed  # to the microsecond, as recorded
    pasted = esgen("state", "--store", store, ADA_STREAM, "--at", "2026-03-01 12:00:00.123456Z")
    assert pasted.returncode == 0 and ": version 1," in pasted.stdout
    # --until takes in the whole unit typed: a day, a minute, a second, a millisecond.
    for until in (
        "2026-03-01",
        "2026-03-01T12:00",
        "2026-03-01T12:00:00",
        "2026-03-01T12:00:00.123",
    ):
        day = esgen("audit", "--store", store, "--correlation", REQUEST, "--until", until)
        assert day.returncode == 0 and len(day.stdout.splitlines()) == 1, (until, day.stdout)
    too_early = esgen(
        "audit", "--store", store, "--correlation", REQUEST, "--until", "2026-03-01T12:00:00.122"
    )
    assert too_early.stdout.strip() == "no events"
    before = esgen("events", "--store", store, ADA_STREAM, "--until", "2026-02-28")
    assert before.returncode == 1 and "has no events until" in before.stderr
    inverted = esgen("events", "--store", store, ADA_STREAM, "--since", "9", "--until", "5")
    assert inverted.returncode == 2 and "before --since" in inverted.stderr
    for extreme in ("0001-01-01T00:30:00+01:00", "9999-12-31T23:30:00-01:00"):
        result = esgen("audit", "--store", store, "--actor", "x", "--until", extreme)
        assert result.returncode == 2 and "out of the range" in result.stderr, result.stderr
    oldest = esgen(
        "audit", "--store", store, "--actor", "teller-1", "--since", "0001-01-01T00:00:00Z"
    )
    assert oldest.returncode == 0 and len(oldest.stdout.splitlines()) == 1
    digits = esgen("events", "--store", store, ADA_STREAM, "--since", "\u00b2")
    assert digits.returncode == 2 and "not a time" in digits.stderr


def test_unknown_ids_are_one_line_and_uuids_match_in_any_case(store: str) -> None:
    unknown = esgen("audit", "--store", store, "--correlation", "nope")
    assert unknown.returncode == 1 and "no event has the correlation id 'nope'" in unknown.stderr
    upper = esgen("trace", "--store", store, REQUEST.upper())
    assert upper.returncode == 0 and upper.stdout.startswith(f"conversation {REQUEST}:")
    pdb_json = esgen("replay", "--store", store, ADA_STREAM, "--until", "1", "--pdb", "--json")
    assert pdb_json.returncode == 2 and "without --json" in pdb_json.stderr


def test_stored_payloads_stay_exact_and_the_json_valid(store: str) -> None:
    with SQLiteEventStore(store) as opened:
        opened.append(
            ADA_STREAM,
            [NewEvent("Mystery", 1, '{"fee": 12345678901234567890.12, "n": 1e400}')],
            2,
        )
    # A row another program wrote, with a lone surrogate the runtime would refuse.
    with sqlite3.connect(store) as raw:
        raw.execute(
            "INSERT INTO esgen_events VALUES (4, ?, 4, 'Mystery', 1, '{}', ?, ?, ?)",
            (
                ADA_STREAM,
                "0000-bad",
                '{"actor": "bad\\ud800x"}',
                "2026-03-01T13:00:00.000000+00:00",
            ),
        )
    text = esgen("events", "--store", store, ADA_STREAM)
    assert text.returncode == 0, text.stderr
    assert 'stored: {"fee": 12345678901234567890.12, "n": 1e400}' in text.stdout
    assert "by bad\\ud800x" in text.stdout
    lines = esgen("events", "--store", store, "--json", ADA_STREAM)
    assert lines.returncode == 0, lines.stderr
    mystery = [json.loads(line, parse_constant=pytest.fail) for line in lines.stdout.splitlines()][
        2
    ]
    assert mystery["stored_data"] == '{"fee": 12345678901234567890.12, "n": 1e400}'
    assert mystery["data"]["n"] == "1e400" and not mystery["decoded"]


def test_a_causation_chain_deeper_than_the_recursion_limit(tmp_path: Path) -> None:
    """A saga that ran for thousands of steps: each event caused by the one before."""
    hops = 3000
    path = tmp_path / "deep.sqlite"
    with SQLiteEventStore(path) as opened:
        events, cause = [], "request"
        for _ in range(hops):
            event = NewEvent(
                "Mystery",
                1,
                "{}",
                {"correlation_id": "deep", "causation_id": cause, "saga": "Loop"},
            )
            events.append(event)
            cause = str(event.event_id)
        opened.append("Loop-1", events, 0)
    from esgen.docs import render_trace_html
    from esgen.runtime import Inspector, MemoryEventStore

    with SQLiteEventStore(path, read_only=True) as reader:
        registry = BankService(MemoryEventStore()).inspect().registry
        document = Inspector(reader, registry, []).trace("deep").to_json()
    depth, node = 0, document["roots"][0]
    while node["children"]:
        node, depth = node["children"][0], depth + 1
    assert depth == 2 * hops - 1
    assert "Mystery" in render_trace_html(document)
    result = esgen("trace", "--store", str(path), "deep")
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(result.stdout.splitlines()) == 1 + 2 * hops
