"""The wire contract of integration events (esgen.runtime._integration), without a broker:
names, subjects, partitions, headers, and messages read back as the upstream's events."""

from __future__ import annotations

import re
import zlib
from datetime import UTC, datetime
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from esgen.runtime import RecordedEvent
from esgen.runtime._integration import (
    H_CAUSATION_ID,
    H_CORRELATION_ID,
    H_EVENT_VERSION,
    H_MSG_ID,
    H_POSITION,
    H_RECORDED_AT,
    MessageError,
    Wire,
    dead_letter_stream,
    dead_letter_subject,
    message_headers,
    partition_of,
    recorded_from_message,
    stream_name,
)

EVENT_ID = UUID("e0000000-0000-4000-8000-000000000001")
RECORDED = RecordedEvent(
    position=41,
    stream_id="Account-a0000000-0000-4000-8000-000000000001",
    stream_version=3,
    event_type="MoneyDeposited",
    event_version=1,
    data='{"amount": "5"}',
    event_id=EVENT_ID,
    metadata={"correlation_id": "c-1", "causation_id": "k-2", "user": "ada"},
    recorded_at=datetime(2026, 12, 5, 9, 30, tzinfo=UTC),
)


def test_stream_names_carry_the_prefix_so_deployments_never_share_a_stream() -> None:
    assert stream_name("bank") == "ESGEN_BANK" == Wire("bank").stream
    assert Wire("bank", prefix="staging.eu").stream == "STAGING_EU_BANK"
    assert dead_letter_stream("statements") == "ESGEN_DEADLETTER_STATEMENTS"
    assert dead_letter_stream("statements", "prod") == "PROD_DEADLETTER_STATEMENTS"
    assert dead_letter_subject("prod", "statements", "Feed") == "prod.deadletter.statements.Feed"


def test_subjects_name_context_partition_aggregate_and_event_type() -> None:
    wire = Wire("bank", partitions=16)
    partition = zlib.crc32(RECORDED.stream_id.encode()) % 16
    subject = wire.subject("Account", "MoneyDeposited", RECORDED.stream_id)
    assert subject == f"esgen.bank.{partition}.Account.MoneyDeposited"
    assert wire.all_subjects == "esgen.bank.>"
    assert wire.partition_subjects(partition) == f"esgen.bank.{partition}.>"
    with pytest.raises(ValueError, match=re.escape("partition 16 is not one of 0..15")):
        wire.partition_subjects(16)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"context": "bank.eu"}, "context 'bank.eu' cannot be a NATS subject token"),
        ({"context": "bank", "prefix": "a.>"}, "prefix '>' cannot"),
        ({"context": "bank", "prefix": ""}, "prefix '' cannot"),
        ({"context": "bank", "partitions": 0}, "partitions must be >= 1"),
    ],
)
def test_a_wire_refuses_what_would_break_subjects(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Wire(**kwargs)  # type: ignore[arg-type]


@given(st.text(min_size=1), st.integers(min_value=1, max_value=4096))
def test_every_event_of_a_stream_lands_in_one_partition(stream_id: str, partitions: int) -> None:
    partition = partition_of(stream_id, partitions)
    assert 0 <= partition < partitions
    assert partition == partition_of(stream_id, partitions)


def test_a_message_reads_back_as_the_recorded_event_in_the_version_sent() -> None:
    headers = message_headers("bank", "Account", RECORDED, event_version=2)
    assert headers[H_MSG_ID] == str(EVENT_ID)
    assert headers[H_EVENT_VERSION] == "2"
    assert headers[H_CORRELATION_ID] == "c-1"
    assert headers[H_CAUSATION_ID] == "k-2"
    assert "ada" not in headers.values()  # free-form metadata (the actor) stays home
    back = recorded_from_message(headers, b'{"amount": "5"}')
    assert (back.position, back.stream_id, back.stream_version) == (41, RECORDED.stream_id, 3)
    assert (back.event_type, back.event_version, back.event_id) == ("MoneyDeposited", 2, EVENT_ID)
    assert back.recorded_at == RECORDED.recorded_at
    assert dict(back.metadata) == {"correlation_id": "c-1", "causation_id": "k-2"}


@pytest.mark.parametrize(
    ("header", "value", "message"),
    [
        (H_MSG_ID, None, "no Nats-Msg-Id header"),
        (H_MSG_ID, "not-a-uuid", "not a UUID"),
        (H_EVENT_VERSION, "0", "below 1"),
        (H_EVENT_VERSION, "²", "not a whole number"),
        (H_POSITION, "-1", "not a whole number"),
        (H_RECORDED_AT, "yesterday", "not an ISO 8601 time"),
        (H_RECORDED_AT, "2026-12-05T09:30:00", "without a UTC offset"),
    ],
)
def test_a_malformed_message_is_refused_with_what_is_wrong(
    header: str, value: str | None, message: str
) -> None:
    headers = message_headers("bank", "Account", RECORDED, event_version=1)
    if value is None:
        del headers[header]
    else:
        headers[header] = value
    with pytest.raises(MessageError, match=message):
        recorded_from_message(headers, b"{}")


def test_a_payload_that_is_not_utf8_is_refused() -> None:
    headers = message_headers("bank", "Account", RECORDED, event_version=1)
    with pytest.raises(MessageError, match="not UTF-8"):
        recorded_from_message(headers, b"\xff\xfe")


def test_headers_are_the_same_whether_the_store_gave_text_or_values() -> None:
    """SQLite hands over the stored text, which the relay copies without parsing; memory
    and PostgreSQL hand over values: one header text either way."""
    as_text = RecordedEvent(
        41,
        RECORDED.stream_id,
        3,
        "MoneyDeposited",
        1,
        "{}",
        str(EVENT_ID),
        '{"correlation_id": "c-1", "causation_id": "k-2"}',
        "2026-12-05T09:30:00.000000+00:00",
    )
    assert message_headers("bank", "Account", as_text, 1) == message_headers(
        "bank", "Account", RECORDED, 1
    )
    assert message_headers("bank", "Account", RECORDED, 1)[H_RECORDED_AT] == (
        "2026-12-05T09:30:00.000000+00:00"
    )
