"""Hand-written traces in the shape of `Trace.to_json()`, for the trace page's tests."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

CORRELATION = "0b9e7c1e-5f2a-4c8e-9a51-6f3d2b7e4a10"
TRANSFER = "Transfer-7f3c9a2e"
ACCOUNT_A = "Account-1a2b3c4d"
ACCOUNT_B = "Account-9e8f7a6b"
START = datetime(2026, 1, 5, 9, 1, tzinfo=UTC)


def at(milliseconds: int) -> str:
    return (START + timedelta(milliseconds=milliseconds)).isoformat(timespec="microseconds")


def command(
    names: list[str],
    children: list[dict[str, Any]],
    *,
    saga: str | None = None,
    actor: str | None = None,
    causation_id: str = "",
) -> dict[str, Any]:
    return {
        "kind": "command",
        "causation_id": causation_id,
        "commands": names,
        "saga": saga,
        "actor": actor,
        "recorded_at": children[0]["recorded_at"] if children else at(0),
        "children": children,
    }


def event(
    position: int,
    stream_id: str,
    stream_version: int,
    event_type: str,
    milliseconds: int,
    children: list[dict[str, Any]] | None = None,
    *,
    command: str | None = None,
    saga: str | None = None,
    actor: str | None = None,
    stored_version: int = 1,
    current_version: int | None = None,
    decoded: bool = True,
) -> dict[str, Any]:
    return {
        "kind": "event",
        "position": position,
        "event_id": f"evt-{position:04d}",
        "stream_id": stream_id,
        "aggregate": stream_id.split("-", 1)[0],
        "stream_version": stream_version,
        "event_type": event_type,
        "stored_version": stored_version,
        "current_version": current_version,
        "recorded_at": at(milliseconds),
        "actor": actor,
        "command": command,
        "saga": saga,
        "decoded": decoded,
        "children": children or [],
    }


def money_transfer() -> dict[str, Any]:
    """A transfer the MoneyTransfer saga has to undo: the deposit is rejected, the
    withdrawal refunded and the transfer failed. Six events, three streams, four links."""
    saga = "MoneyTransfer"

    def sent(name: str, child: dict[str, Any], cause: str) -> dict[str, Any]:
        return command([name], [child], saga=saga, causation_id=cause)

    failed = event(6, TRANSFER, 2, "TransferFailed", 710, command="FailTransfer", saga=saga)
    refunded = event(
        5, ACCOUNT_A, 5, "MoneyRefunded", 560,
        [sent("FailTransfer", failed, "evt-0005")], command="RefundMoney", saga=saga,
    )  # fmt: skip
    rejected = event(
        4, ACCOUNT_B, 2, "DepositRejected", 380,
        [sent("RefundMoney", refunded, "evt-0004")], command="DepositMoney", saga=saga,
    )  # fmt: skip
    withdrawn = event(
        2, ACCOUNT_A, 4, "MoneyWithdrawn", 150,
        [sent("DepositMoney", rejected, "evt-0002")],
        command="WithdrawMoney", saga=saga, current_version=2,
    )  # fmt: skip
    requested = event(
        1, TRANSFER, 1, "TransferRequested", 0,
        [sent("WithdrawMoney", withdrawn, "evt-0001")],
        command="RequestTransfer", actor="teller-7",
    )  # fmt: skip
    # The teller also noted the transfer on the account: a second event of the first
    # command, at the very same moment, on another stream.
    noted = event(3, ACCOUNT_A, 3, "TransferNoted", 0, command="RequestTransfer", actor="teller-7")
    root = command(["RequestTransfer"], [requested, noted], actor="teller-7", causation_id="cmd-1")
    return {
        "query": CORRELATION,
        "matched": "correlation",
        "correlation_id": CORRELATION,
        "first_recorded_at": at(0),
        "last_recorded_at": at(710),
        "event_count": 6,
        "streams": [TRANSFER, ACCOUNT_A, ACCOUNT_B],
        "roots": [root],
    }


def crowded(streams: int, events: int, *, same_time: bool) -> dict[str, Any]:
    """Many events over many streams with long ids, each event reacting to the one before,
    all at one moment or a millisecond apart."""
    ids = [f"Ledger-{'x' * 60}-{i:03d}" for i in range(streams)]
    node: dict[str, Any] | None = None
    for position in range(events, 0, -1):
        stream = ids[(position - 1) % streams]
        children = [command(["Post"], [node], saga="Chain")] if node is not None else []
        node = event(
            position, stream, position, "EntryPostedWithAVeryLongName", 0 if same_time else position,
            children,
        )  # fmt: skip
    assert node is not None
    return {
        "query": "chain",
        "matched": "correlation",
        "correlation_id": "chain",
        "first_recorded_at": at(0),
        "last_recorded_at": at(0 if same_time else events),
        "event_count": events,
        "streams": ids,
        "roots": [command(["Start"], [node], actor="batch")],
    }


HOSTILE = [
    "</svg><script>alert(1)</script>",
    '"><img src=x onerror=alert(2)>',
    "' onmouseover='alert(3)",
    "&amp; &lt;b&gt; & <b>",
    "bell\x07 nul\x00 esc\x1b[31m line\nbreak\u2028sep \ud800 rtl\u202e",
    "]]><!-- --><![CDATA[",
    "W" * 5000,
]


def hostile_trace() -> dict[str, Any]:
    """The transfer with every string, list of names and null in it replaced by hostile text."""
    trace = money_transfer()
    evil = itertools.cycle(HOSTILE)
    nodes: list[dict[str, Any]] = [trace]
    stack = list(trace["roots"])
    while stack:
        node = stack.pop()
        nodes.append(node)
        stack.extend(node["children"])
    for node in nodes:
        for key, value in node.items():
            if key in ("kind", "children", "roots"):
                continue
            if isinstance(value, list):
                node[key] = [next(evil), next(evil)]
            elif isinstance(value, str) or value is None:
                node[key] = next(evil)
    return trace
