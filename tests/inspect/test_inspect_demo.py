"""The bank demo ends by printing `esgen inspect` commands: each one runs as printed, on the
store the demo wrote, and says what the demo did (the transfer saga's trace included, with
its compensation). Each command's --json output is also compared with a golden file.

`ESGEN_UPDATE_GOLDENS=1 pytest tests/inspect/test_inspect_demo.py` (run by `make goldens`)
rewrites the golden files; review their diff like any other change.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from harness import EXAMPLES
from inspect_run import run_esgen as esgen

BANK = EXAMPLES / "bank"
GOLDENS = Path(__file__).parent / "goldens"
UPDATE = os.environ.get("ESGEN_UPDATE_GOLDENS") == "1"
ADA = "Account-a0000000-0000-4000-8000-000000000001"
TO_GRACE_REQUEST = "c0000000-0000-4000-8000-000000000002"


@dataclass(frozen=True)
class Demo:
    folder: Path
    output: str
    commands: list[list[str]]

    @property
    def store(self) -> str:
        return str(self.folder / "bank.sqlite")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    folder = tmp_path_factory.mktemp("bank-demo")
    result = subprocess.run(
        [sys.executable, "demo.py", str(folder)],
        cwd=BANK,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    commands = [
        shlex.split(line.strip())[1:]
        for line in result.stdout.splitlines()
        if line.strip().startswith("esgen inspect ")
    ]
    return Demo(folder, result.stdout, commands)


def _printed(demo: Demo, name: str) -> list[str]:
    found = [c for c in demo.commands if c[1] == name]
    assert len(found) == 1, (name, demo.commands)
    return found[0]


def test_the_demo_prints_an_inspect_command_for_each_question(demo: Demo) -> None:
    names = [command[1] for command in demo.commands]
    assert names == ["streams", "events", "history", "state", "replay", "trace", "audit"]
    assert "What happened to the transfer to Grace, traced through the saga:" in demo.output
    story = demo.output.partition("traced through the saga:")[2]
    for step in ("RequestTransfer (by ada)", "WithdrawMoney (by saga MoneyTransfer)",
                 "-> DepositRejected on Account", "FailTransfer, RefundMoney (by saga MoneyTransfer)",
                 "-> MoneyRefunded on Account"):  # fmt: skip
        assert step in story, story


def test_streams(demo: Demo) -> None:
    result = esgen(_printed(demo, "streams"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 6
    assert lines[0].startswith(f"{ADA}  Account  8 events  2026-01-05 09:02:00.000000Z")
    assert sum("  Transfer  2 events" in line for line in lines) == 2

    def listed(*options: str) -> list[str]:
        found = esgen(["inspect", "streams", "--store", demo.store, *options])
        assert found.returncode == 0, found.stderr
        return [line.split()[0] for line in found.stdout.splitlines()]

    assert len(listed("--aggregate", "Transfer")) == 2
    assert len(listed("--prefix", "Account-a0000000-0000-4000-8000-00000000000")) == 4
    assert listed("--since", "2026-01-05T09:25Z") == [
        "Account-a0000000-0000-4000-8000-000000000003",
        "Account-a0000000-0000-4000-8000-000000000004",
    ]
    assert listed("--until", "2026-01-05T09:01") == ["Account-a0000000-0000-4000-8000-000000000002"]


def test_events_are_typed_and_upcast(demo: Demo) -> None:
    result = esgen(_printed(demo, "events"))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.count(f"  {ADA} v") == 8
    assert "AccountOpened (v2)" in out and "by teller-7, via OpenAccount" in out
    assert "saga MoneyTransfer, via RefundMoney" in out
    grace = esgen(
        ["inspect", "events", "--store", demo.store, "Account-a0000000-0000-4000-8000-000000000002"]
    )
    assert "AccountOpened (v2, stored as v1)" in grace.stdout
    stored = esgen(["inspect", "events", "--store", demo.store, "--as-stored",
                    "Account-a0000000-0000-4000-8000-000000000002"])  # fmt: skip
    assert 'stored: {"owner": "Grace"}' in stored.stdout


def test_history_is_field_by_field(demo: Demo) -> None:
    result = esgen(_printed(demo, "history"))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert 'balance.amount: "0" -> "100.00"' in out
    assert 'balance.amount: "100.00" -> "70.00"' in out
    assert "WithdrawalRejected (v1)  by teller-7, via WithdrawMoney\n    (no change)" in out


def test_state_at_a_time(demo: Demo) -> None:
    result = esgen(_printed(demo, "state"))
    assert result.returncode == 0, result.stderr
    assert "as of 2026-01-05 09:04:00.000000Z: version 3" in result.stdout
    assert json.loads(result.stdout.partition("\n")[2])["balance"]["amount"] == "70.00"


def test_replay_stops_in_the_users_apply_method_under_pdb(demo: Demo) -> None:
    command = _printed(demo, "replay")
    assert "--pdb" in command
    result = esgen(command, stdin="p event.amount.amount\np self.state.balance.amount\nc\n")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    # Stopped on the first line of apply_money_withdrawn in the example's own domain code,
    # with event 5 and the state of version 4 at hand.
    assert re.search(r"bank/domain/account\.py\(\d+\)apply_money_withdrawn\(\)", out), out
    assert "(Pdb) Decimal('25.00')" in out
    assert "(Pdb) Decimal('70.00')" in out
    assert f"state of {ADA} at version 5:" in out
    assert '"amount": "45.00"' in out


def test_trace_shows_the_saga_and_its_compensation(demo: Demo) -> None:
    command = _printed(demo, "trace")
    page = Path(command[command.index("--html") + 1])
    page = page if page.is_absolute() else BANK / page
    result = esgen(command)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith(f"conversation {TO_GRACE_REQUEST}: 5 events in 3 streams")
    expected = [
        "RequestTransfer (by ada)",
        "-> TransferRequested  Transfer-b0000000-0000-4000-8000-000000000002 v1",
        "WithdrawMoney (sent by saga MoneyTransfer)",
        f"-> MoneyWithdrawn  {ADA} v6",
        "DepositMoney (sent by saga MoneyTransfer)",
        "-> DepositRejected  Account-a0000000-0000-4000-8000-000000000002 v4",
        "FailTransfer, RefundMoney (sent by saga MoneyTransfer)",
        "-> TransferFailed  Transfer-b0000000-0000-4000-8000-000000000002 v2",
        f"-> MoneyRefunded  {ADA} v7",
    ]
    lines = out.splitlines()[1:]
    for line, wanted in zip(lines, expected, strict=False):
        assert line.strip().startswith(wanted), (line, wanted)
    assert len(lines) == len(expected)
    # Each level of the causation tree is indented deeper than its cause.
    depths = [len(line) - len(line.lstrip()) for line in lines]
    assert depths == sorted(depths)
    html = page.read_text(encoding="utf-8")
    assert "<svg" in html and "MoneyRefunded" in html and "<script" not in html


def test_trace_by_event_id_and_by_command_id_finds_the_same_conversation(demo: Demo) -> None:
    document = json.loads(
        esgen(["inspect", "trace", "--store", demo.store, "--json", TO_GRACE_REQUEST]).stdout
    )
    root = document["roots"][0]
    refund = root
    for _ in range(6):  # event, command, event, command, event, command
        refund = refund["children"][0]
    assert refund["commands"] == ["FailTransfer", "RefundMoney"]
    event_id = refund["children"][1]["event_id"]
    by_event = json.loads(
        esgen(["inspect", "trace", "--store", demo.store, "--json", event_id]).stdout
    )
    by_command = json.loads(
        esgen(["inspect", "trace", "--store", demo.store, "--json", root["causation_id"]]).stdout
    )
    assert by_event["matched"] == "event" and by_command["matched"] == "causation"
    for other in (by_event, by_command):
        assert other["correlation_id"] == TO_GRACE_REQUEST
        assert other["roots"] == document["roots"]


def test_audit_by_actor(demo: Demo) -> None:
    result = esgen(_printed(demo, "audit"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 4
    assert all("  teller-7  " in line for line in lines)
    window = esgen(["inspect", "audit", "--store", demo.store, "--actor", "teller-7",
                    "--since", "2026-01-05T09:03:00Z", "--until", "2026-01-05T09:04:00"])  # fmt: skip
    assert [line.split()[5] for line in window.stdout.splitlines()] == [
        "MoneyDeposited",
        "MoneyWithdrawn",
    ]


# -- golden JSON, one per command --------------------------------------------------------------

_KEPT = re.compile(r"[abc]0000000-0000-4000-8000-0000000000\d\d")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def normalise(text: str, demo: Demo) -> str:
    """Random ids (event ids, command ids) become <id-1>, <id-2>... in order of first
    appearance; the demo's own fixed ids and times stay as they are."""
    names: dict[str, str] = {}

    def name(match: re.Match[str]) -> str:
        found = match.group(0)
        if _KEPT.fullmatch(found):
            return found
        return names.setdefault(found, f"<id-{len(names) + 1}>")

    return _UUID.sub(name, text.replace(demo.store, "<store>"))


GOLDEN_COMMANDS = {
    "streams": ["streams"],
    "events": ["events", ADA],
    "events-as-stored": ["events", "--as-stored", "Account-a0000000-0000-4000-8000-000000000002"],
    "history": ["history", ADA],
    "state-at": ["state", ADA, "--at", "2026-01-05T09:04:00Z"],
    "state-version": ["state", ADA, "--version", "6"],
    "replay": ["replay", ADA, "--until", "5"],
    "trace": ["trace", TO_GRACE_REQUEST],
    "audit": ["audit", "--actor", "teller-7"],
}


@pytest.mark.parametrize("name", sorted(GOLDEN_COMMANDS))
def test_json_output_matches_its_golden_file(demo: Demo, name: str) -> None:
    command, *rest = GOLDEN_COMMANDS[name]
    result = esgen(["inspect", command, "--store", demo.store, "--json", *rest])
    assert result.returncode == 0, result.stderr
    for line in result.stdout.splitlines() if command not in ("state", "replay", "trace") else []:
        json.loads(line)  # a listing prints JSON lines
    text = normalise(result.stdout, demo)
    golden = GOLDENS / f"{name}.json"
    if UPDATE:
        GOLDENS.mkdir(exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert golden.is_file(), f"no golden file {golden}; run `make goldens`"
    assert text == golden.read_text(encoding="utf-8")
