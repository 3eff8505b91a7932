"""The fault scenarios and their checks: each runs workers against one fresh store, faults
them, lets what is left finish, and counts what went wrong.

- writers: 3 processes append to own and shared streams (optimistic concurrency, some
  appends to two streams at once, some inside a transaction held open a moment) and are
  killed. Every acknowledged event must be stored (lost), no event id twice (duplicated),
  positions 1..N and each stream's versions 1..n without a hole (skipped): both stores
  promise positions in commit order without gaps (docs/postgres.md, _sqlite.py). An append
  cut short must be all there or not at all (counted as lost).
- readers: 2 processes tail the global order (read_all + wait_for_events) and are killed
  while 2 writers append; each resumes after the last event it logged. Every position
  1..head logged once, with the event id the store holds there.
- projections: 2 projection runners (tests/runtime's Balances, counting its events per
  account) are killed while deposits arrive; after a final catch-up each account's count
  equals its events, and the rows equal a from-scratch rebuild.
- sagas: 2 runners of the bank example's MoneyTransfer saga are killed while transfers are
  requested, a third of them to closed accounts (refunded by compensation). Each command,
  and each compensation, is sent exactly once (counted by markers committed with them).

On PostgreSQL the same scenarios also run with server-side terminations of the victims'
sessions instead of kills.
"""

from __future__ import annotations

import json
import random
import sys
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

from esgen.runtime import EventStore, ExpectedVersion, NewEvent, ProjectionRunner

from .harness import Backend, Crew, Fault
from .journal import Journal, read_lines
from .worker import BANK, ROOT, saga_runner, tail

__all__ = ["SCENARIOS", "Tally", "run_scenario"]


@dataclass
class Tally:
    scenario: str
    backend: str
    fault: Fault
    wanted: int  # faults asked for
    kills: int = 0
    events: int = 0  # acknowledged (writers), seen (readers), applied (projections)
    lost: int = 0
    duplicated: int = 0
    skipped: int = 0
    sent: tuple[int, int] | None = None  # saga commands sent, expected
    compensations: tuple[int, int] | None = None  # saga compensations sent, expected
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.kills >= self.wanted
            and not (self.lost or self.duplicated or self.skipped or self.problems)
            and all(p is None or p[0] == p[1] for p in (self.sent, self.compensations))
        )


def writers(crew: Crew, store: EventStore, tally: Tally) -> None:
    crew.start("writer", 3, victim=True)
    crew.chaos(tally.fault, tally.wanted, crew.deadline)
    crew.stop()
    records = list(store.iter_all())
    stored = Counter(str(r.event_id) for r in records)
    tally.duplicated = sum(count - 1 for count in stored.values())
    tally.skipped = _holes(records)
    acked: set[str] = set()
    intended: list[list[str]] = []
    for path in sorted(crew.run_dir.glob("writer*.journal")):
        for line in read_lines(path):
            kind, ids = line.split(" ", 1)
            if kind == "A":
                acked.update(ids.split(","))
            else:
                intended.append(ids.split(","))
    tally.events = len(acked)
    tally.lost = len(acked - stored.keys())
    for ids in intended:
        present = sum(1 for i in ids if i in stored)
        if 0 < present < len(ids):
            tally.lost += len(ids) - present
            tally.problems.append(f"an append was stored in part: {present} of {len(ids)}")
    known = {i for ids in intended for i in ids}
    strangers = stored.keys() - known
    if strangers:
        tally.problems.append(f"{len(strangers)} stored event(s) no writer meant to append")


def _holes(records: list[Any]) -> int:
    """Positions missing from 1..N, plus stream versions missing from 1..n (a record out of
    order counts as one too)."""
    holes = 0
    last: dict[str, int] = defaultdict(int)
    for record in records:
        for key, number in (("", record.position), (record.stream_id, record.stream_version)):
            holes += number - last[key] - 1 if number > last[key] else 1
            last[key] = max(last[key], number)
    return holes


def readers(crew: Crew, store: EventStore, tally: Tally) -> None:
    crew.start("writer", 2, victim=False)
    crew.start("reader", 2, victim=True)
    crew.chaos(tally.fault, tally.wanted, crew.deadline)
    crew.stop()
    at = {r.position: str(r.event_id) for r in store.iter_all()}
    for path in sorted(crew.run_dir.glob("reader*.journal")):
        journal = Journal(path)
        tail(store, journal, lambda: True)  # the last restart: read up to the head
        journal.close()
        seen = Counter()
        for line in read_lines(path):
            position, event_id = line.split()
            seen[int(position)] += 1
            if at.get(int(position)) != event_id:
                tally.problems.append(f"{path.name}: position {position} is not {event_id}")
        tally.events += sum(seen.values())
        tally.duplicated += sum(count - 1 for count in seen.values())
        tally.skipped += len(at.keys() - seen.keys())


def _balances_projection() -> Any:
    # The workers import it the same way: the test module that defines it, from the root.
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.runtime.test_runtime_projection import Balances

    return Balances()


def projections(crew: Crew, store: EventStore, tally: Tally) -> None:
    from esgen.runtime.testing._domain import AccountOpened, make_registry

    accounts = 12
    for n in range(accounts):
        opened = NewEvent.from_event(AccountOpened(owner=f"owner{n}", currency="EUR"))
        store.append(f"Account-{n}", [opened], ExpectedVersion.NO_STREAM)
    (crew.run_dir / "plan.json").write_text(json.dumps({"accounts": accounts}))
    runner = ProjectionRunner(store, make_registry(), [_balances_projection()], page_size=20)
    crew.start("deposits", 1, victim=False)
    crew.start("projector", 2, victim=True)
    crew.chaos(tally.fault, tally.wanted, crew.deadline)
    crew.stop()
    runner.catch_up()
    expected: dict[str, list[int]] = {}
    for record in store.iter_all():
        account = record.stream_id.partition("-")[2]
        if record.event_type == "AccountOpened":
            expected[account] = [0, 1]
        else:
            expected[account][0] += json.loads(record.data)["amount"]
            expected[account][1] += 1
    live = {a: [int(b), int(e)] for a, b, e in crew.backend.query(_BALANCES)}
    for account, (balance, events) in expected.items():
        got_balance, got_events = live.get(account, [0, 0])
        tally.events += got_events
        tally.duplicated += max(0, got_events - events)
        tally.skipped += max(0, events - got_events)
        if got_balance != balance and got_events == events:
            tally.problems.append(f"account {account}: balance {got_balance}, not {balance}")
    runner.rebuild("balances")
    if {a: [int(b), int(e)] for a, b, e in crew.backend.query(_BALANCES)} != live:
        tally.problems.append("the live read model differs from a rebuild from scratch")


_BALANCES = "SELECT account, balance, events FROM {s}.balances"
_CLOSED_SHARE = 3  # one target in three is a closed account


def sagas(crew: Crew, store: EventStore, tally: Tally) -> None:
    if str(BANK) not in sys.path:
        sys.path.insert(0, str(BANK))
    from bank.commands.account import CloseAccount, DepositMoney, OpenAccount
    from bank.service import BankService
    from bank.types import Money

    bank = BankService(store)
    plan: dict[str, list[str]] = {"sources": [], "targets": [], "closed": []}
    for n in range(9):
        account = UUID(int=n + 1)
        kind = "sources" if n < 4 else "closed" if n % _CLOSED_SHARE == 0 else "targets"
        plan[kind].append(str(account))
        bank.dispatch(OpenAccount(account_id=account, owner=f"owner{n}", currency="EUR"))
        if kind == "sources":
            money = Money(amount=10**9, currency="EUR")
            bank.dispatch(DepositMoney(account_id=account, amount=money))
        elif kind == "closed":
            bank.dispatch(CloseAccount(account_id=account, reason="gone"))
    (crew.run_dir / "plan.json").write_text(json.dumps(plan))
    saga_runner(store)  # deployed now: it follows what comes after this
    crew.start("transfers", 1, victim=False)
    crew.start("saga", 2, victim=True)
    crew.chaos(tally.fault, tally.wanted, crew.deadline)
    crew.stop()
    saga_runner(store).catch_up()
    sent: Counter[tuple[str, str]] = Counter()
    refunds: Counter[str] = Counter()
    wanted: Counter[tuple[str, str]] = Counter()
    for record in store.iter_all():
        data = json.loads(record.data)
        kind, _, key = record.stream_id.partition("-")
        if record.event_type == "TransferRequested":
            closed = data["target_account"] in plan["closed"]
            steps = ("FailTransfer", "RefundMoney") if closed else ("CompleteTransfer",)
            for command in ("WithdrawMoney", "DepositMoney", *steps):
                wanted[key, command] += 1
        elif record.event_type == "CommandSent":
            sent[key, data["command"]] += 1
        elif record.event_type == "MoneyRefunded":
            refunds[data["transfer_id"]] += 1
    commands = {k for k in wanted.keys() | sent.keys() if k[1] != "RefundMoney"}
    undo = {k for k in wanted.keys() | sent.keys() if k[1] == "RefundMoney"}
    tally.sent = (sum(sent[k] for k in commands), sum(wanted[k] for k in commands))
    tally.compensations = (sum(sent[k] for k in undo), sum(wanted[k] for k in undo))
    tally.events = sum(sent.values())
    for key in wanted.keys() | sent.keys():
        tally.duplicated += max(0, sent[key] - wanted[key])
        tally.skipped += max(0, wanted[key] - sent[key])
    doubled = [t for t, count in refunds.items() if count > 1]
    if doubled:
        tally.problems.append(f"{len(doubled)} transfer(s) refunded more than once")


SCENARIOS: dict[str, Callable[[Crew, EventStore, Tally], None]] = {
    "writers": writers,
    "readers": readers,
    "projections": projections,
    "sagas": sagas,
}


def run_scenario(
    name: str, backend: Backend, fault: Fault, kills: int, seed: int, run_dir: Path
) -> Tally:
    """Run one scenario on a fresh store; the store is removed afterwards, the run folder
    (journals, workers' stderr) is left for the caller."""
    tally = Tally(name, backend.kind, fault, kills)
    run_dir.mkdir(parents=True)
    began = time.monotonic()
    crew = Crew(backend, run_dir, random.Random(seed), deadline=began + 120 + 10 * kills)
    try:
        with backend.open() as store:
            SCENARIOS[name](crew, store, tally)
    except Exception:
        tally.problems.append(traceback.format_exc())
    finally:
        crew.stop()
        tally.kills = crew.kills
        tally.problems += crew.crashes
        backend.clean_up()
        tally.seconds = time.monotonic() - began
    return tally
