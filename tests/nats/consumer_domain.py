"""A hand-written consumer of a `bank` context's published events, as generated code would
write one, and a way to publish bank messages straight to JetStream (the wire contract of
esgen.runtime._integration, without a relay).

The `statements` consumer keeps one row per account: the stream versions and event ids it
handled, in the order it handled them, so a test can count each event's effects and check
each account's order.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import BaseModel

from esgen.runtime import Column, Event, EventRegistry, RecordedEvent, TableSpec, ValueObject
from esgen.runtime._consumer import Consumer
from esgen.runtime._integration import Wire, message_headers


class MoneyDepositedV1(Event):
    event_type = "MoneyDeposited"
    event_version = 1
    amount: int


class MoneyDeposited(Event):
    event_type = "MoneyDeposited"
    event_version = 2
    amount: int
    currency: str


class MoneyWithdrawn(Event):
    event_type = "MoneyWithdrawn"
    event_version = 1
    amount: int


class AccountClosed(Event):
    """Published by the bank; the statements consumer does not handle it."""

    event_type = "AccountClosed"
    event_version = 1


def _deposited_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    if data.get("amount") == -1:
        raise ValueError("a v1 deposit of -1 cannot be upcast")
    return {**data, "currency": "EUR"}


def bank_registry() -> EventRegistry:
    """The bank's published events as the statements context knows them."""
    registry = EventRegistry([MoneyDepositedV1, MoneyDeposited, MoneyWithdrawn, AccountClosed])
    registry.register_upcaster("MoneyDeposited", 1, _deposited_v1_to_v2)
    return registry


class Line(ValueObject):
    account: str
    balance: int
    versions: str
    """The stream versions handled, in the order handled: "1,2,3"."""
    event_ids: str


class Statements(Consumer[Line]):
    name: ClassVar[str] = "statements"
    table: ClassVar[TableSpec] = TableSpec(
        "statements",
        key="account",
        columns=(
            Column("account", "text"),
            Column("balance", "integer"),
            Column("versions", "text"),
            Column("event_ids", "text"),
        ),
    )
    row_type: ClassVar[type[BaseModel]] = Line
    handlers: ClassVar[Mapping[type[Event], str]] = {
        MoneyDeposited: "on_money_deposited",
        MoneyWithdrawn: "on_money_withdrawn",
    }
    subscriptions: ClassVar[Mapping[str, EventRegistry]] = {"bank": bank_registry()}
    upstream_of: ClassVar[Mapping[type[Event], str]] = {
        MoneyDeposited: "bank",
        MoneyWithdrawn: "bank",
    }

    def __init__(self) -> None:
        super().__init__()
        self.fail_on: set[int] = set()
        """Amounts whose handling raises (a bug), while they are in the set."""
        self.currencies: list[str] = []

    def on_money_deposited(self, event: MoneyDeposited, recorded: RecordedEvent) -> None:
        self.currencies.append(event.currency)
        self._line(recorded, event.amount)

    def on_money_withdrawn(self, event: MoneyWithdrawn, recorded: RecordedEvent) -> None:
        self._line(recorded, -event.amount)

    def _line(self, recorded: RecordedEvent, amount: int) -> None:
        if abs(amount) in self.fail_on:
            raise RuntimeError(f"cannot book {amount}")
        account = self.aggregate_id(recorded)
        row = self.rows.get(account) or Line(account=account, balance=0, versions="", event_ids="")
        self.rows.put(
            Line(
                account=account,
                balance=row.balance + amount,
                versions=_joined(row.versions, str(recorded.stream_version)),
                event_ids=_joined(row.event_ids, str(recorded.event_id)),
            )
        )


def _joined(text: str, item: str) -> str:
    return f"{text},{item}" if text else item


# -- publishing -------------------------------------------------------------------------


@dataclass
class Sent:
    """One bank event as the relay would send it."""

    account: str
    stream_version: int
    event_type: str = "MoneyDeposited"
    version: int = 2
    payload: dict[str, Any] = field(default_factory=lambda: {"amount": 1, "currency": "EUR"})
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)
    position: int = 0

    def headers(self, context: str = "bank") -> dict[str, str]:
        recorded = RecordedEvent(
            position=self.position,
            stream_id=f"Account-{self.account}",
            stream_version=self.stream_version,
            event_type=self.event_type,
            event_version=self.version,
            data=json.dumps(self.payload),
            event_id=self.event_id,
            metadata={},
            recorded_at=datetime.now(UTC),
        )
        return message_headers(context, "Account", recorded, self.version)

    def subject(self, wire: Wire) -> str:
        return wire.subject("Account", self.event_type, f"Account-{self.account}")


def deposits(accounts: int, per_account: int, start: int = 1) -> list[Sent]:
    """Interleaved: each round one event of every account, as a busy bank records them."""
    return [
        Sent(f"a{a}", version, payload={"amount": version, "currency": "EUR"})
        for version in range(start, start + per_account)
        for a in range(accounts)
    ]


async def _ensure_stream(js: Any, wire: Wire, duplicate_window: float | None) -> None:
    from nats.js.api import StreamConfig
    from nats.js.errors import NotFoundError

    try:
        await js.stream_info(wire.stream)
    except NotFoundError:
        config = StreamConfig(name=wire.stream, subjects=[wire.all_subjects])
        if duplicate_window is not None:
            config.duplicate_window = duplicate_window
        await js.add_stream(config)


def publish(
    url: str | Sequence[str],
    wire: Wire,
    messages: Sequence[Sent | tuple[str, dict[str, str], bytes]],
    *,
    duplicate_window: float | None = None,
) -> None:
    """Publish with acks (creating the bank's stream if missing): `Sent` events, or raw
    (subject, headers, payload) messages for the bad cases."""
    import nats

    async def main() -> None:
        nc = await nats.connect(url)
        try:
            js = nc.jetstream()
            await _ensure_stream(js, wire, duplicate_window)
            for item in messages:
                if isinstance(item, Sent):
                    subject, headers = item.subject(wire), item.headers(wire.context)
                    data = json.dumps(item.payload).encode()
                else:
                    subject, headers, data = item
                await js.publish(subject, data, headers=headers)
        finally:
            await nc.close()

    asyncio.run(main())


def read_stream(url: str, stream: str) -> list[tuple[str, dict[str, str], bytes]]:
    """Every message a stream holds: (subject, headers, payload)."""
    import nats

    async def main() -> list[tuple[str, dict[str, str], bytes]]:
        nc = await nats.connect(url)
        try:
            js = nc.jetstream()
            info = await js.stream_info(stream)
            found = []
            for seq in range(info.state.first_seq, info.state.last_seq + 1):
                msg = await js.get_msg(stream, seq)
                found.append((msg.subject, dict(msg.headers or {}), msg.data or b""))
            return found
        finally:
            await nc.close()

    return asyncio.run(main())
