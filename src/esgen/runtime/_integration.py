"""Integration events on the wire: how a published event travels between contexts.

The relay turns a recorded event into a message; a consumer in another context turns the
message back into a `RecordedEvent` of the upstream context and decodes it with the
upstream's registry (as that context knows it). Both sides use only this module, so they
agree on every subject, header and payload; nothing here talks to a broker.

- Stream: one JetStream stream per publishing context, `<PREFIX>_<CONTEXT>` (upper case,
  dots of the prefix as underscores: `ESGEN_BANK` with the default prefix), holding the
  subjects `<prefix>.<context>.>`. Deployments with their own prefixes (staging, prod) on one
  NATS account never share a stream.
- Subject: `<prefix>.<context>.<partition>.<Aggregate>.<EventType>`. The partition is
  `crc32(stream id) % partitions`: every event of one aggregate lands in one partition,
  so a consumer per partition keeps per-aggregate order while partitions run in parallel.
  A consumer of every partition filters `<prefix>.<context>.>`; of one partition,
  `<prefix>.<context>.<partition>.>`; of one event type, `<prefix>.<context>.*.<A>.<E>`.
- Payload: the event's fields as JSON, in the version named by the headers (the relay
  sends the latest version its code knows; older messages keep the version they were sent
  in, and consumers upcast them).
- Headers: `Nats-Msg-Id` is the event id (the broker drops a second publish of it within
  its duplicate window; consumers' inboxes drop it for good), the others below.
- Dead letters: `<prefix>.deadletter.<consumer context>.<consumer>` in the stream
  `<PREFIX>_DEADLETTER_<CONSUMER CONTEXT>`, with the original headers, subject and payload,
  and the reason.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from esgen.runtime._context import CAUSATION_ID, CORRELATION_ID
from esgen.runtime._records import RecordedEvent

__all__ = [
    "DEFAULT_PARTITIONS",
    "DEFAULT_PREFIX",
    "H_AGGREGATE",
    "H_CAUSATION_ID",
    "H_CONTEXT",
    "H_CORRELATION_ID",
    "H_DEAD_LETTER_REASON",
    "H_EVENT_TYPE",
    "H_EVENT_VERSION",
    "H_MSG_ID",
    "H_ORIGINAL_SUBJECT",
    "H_POSITION",
    "H_RECORDED_AT",
    "H_STREAM_ID",
    "H_STREAM_VERSION",
    "MessageError",
    "Wire",
    "dead_letter_stream",
    "dead_letter_subject",
    "message_headers",
    "partition_of",
    "recorded_from_message",
    "stream_name",
]

DEFAULT_PREFIX = "esgen"
DEFAULT_PARTITIONS = 16
"""Fixed for the life of a stream: changing it moves aggregates between partitions, so a
consumer could see an aggregate's new events before its old ones while both drain."""

H_MSG_ID = "Nats-Msg-Id"
H_CONTEXT = "Esgen-Context"
H_AGGREGATE = "Esgen-Aggregate"
H_EVENT_TYPE = "Esgen-Event-Type"
H_EVENT_VERSION = "Esgen-Event-Version"
H_STREAM_ID = "Esgen-Stream-Id"
H_STREAM_VERSION = "Esgen-Stream-Version"
H_POSITION = "Esgen-Position"
"""The event's position in the publishing context's store (its global order)."""
H_RECORDED_AT = "Esgen-Recorded-At"
"""ISO 8601, UTC."""
H_CORRELATION_ID = "Esgen-Correlation-Id"
H_CAUSATION_ID = "Esgen-Causation-Id"
H_DEAD_LETTER_REASON = "Esgen-Dead-Letter-Reason"
H_ORIGINAL_SUBJECT = "Esgen-Original-Subject"

# A subject token: no dots, wildcards or whitespace (NATS would read them as structure).
_TOKEN = re.compile(r"^[A-Za-z0-9_-]+$")


class MessageError(ValueError):
    """A message that is not an esgen integration event (a header missing or malformed)."""


def _token(value: str, what: str) -> str:
    if not _TOKEN.match(value):
        raise ValueError(f"{what} {value!r} cannot be a NATS subject token")
    return value


def _stream_prefix(prefix: str) -> str:
    return "_".join(_token(part, "prefix") for part in prefix.split(".")).upper()


def stream_name(context: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The JetStream stream holding a context's published events under `prefix`."""
    return f"{_stream_prefix(prefix)}_{_token(context, 'context').upper()}"


def dead_letter_stream(consumer_context: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The stream of a consuming context's dead letters under `prefix`."""
    return f"{_stream_prefix(prefix)}_DEADLETTER_{_token(consumer_context, 'context').upper()}"


def dead_letter_subject(prefix: str, consumer_context: str, consumer: str) -> str:
    return f"{prefix}.deadletter.{consumer_context}.{_token(consumer, 'consumer')}"


def partition_of(stream_id: str, partitions: int) -> int:
    """The partition of every event of a stream: stable across processes and versions."""
    if partitions < 1:
        raise ValueError(f"partitions must be >= 1 (got {partitions})")
    return zlib.crc32(stream_id.encode("utf-8")) % partitions


@dataclass(frozen=True, slots=True)
class Wire:
    """Where one publishing context's events go: the prefix, context and partition count
    that the relay and every consumer of the context must share."""

    context: str
    prefix: str = DEFAULT_PREFIX
    partitions: int = DEFAULT_PARTITIONS

    def __post_init__(self) -> None:
        _token(self.context, "context")
        for part in self.prefix.split("."):
            _token(part, "prefix")
        if self.partitions < 1:
            raise ValueError(f"partitions must be >= 1 (got {self.partitions})")

    @property
    def stream(self) -> str:
        return stream_name(self.context, self.prefix)

    @property
    def all_subjects(self) -> str:
        """The filter of every subject of the context (the stream's subject)."""
        return f"{self.prefix}.{self.context}.>"

    def partition_subjects(self, partition: int) -> str:
        """The filter of one partition's subjects."""
        if not 0 <= partition < self.partitions:
            raise ValueError(
                f"partition {partition} is not one of 0..{self.partitions - 1} "
                f"({self.context} is published in {self.partitions} partitions)"
            )
        return f"{self.prefix}.{self.context}.{partition}.>"

    def subject(self, aggregate: str, event_type: str, stream_id: str) -> str:
        partition = partition_of(stream_id, self.partitions)
        return (
            f"{self.prefix}.{self.context}.{partition}."
            f"{_token(aggregate, 'aggregate')}.{_token(event_type, 'event type')}"
        )


def message_headers(
    context: str, aggregate: str, recorded: RecordedEvent, event_version: int
) -> dict[str, str]:
    """The headers of the message for `recorded`, sent in `event_version` (the version of
    the payload, which may be later than the stored one: the relay upcasts)."""
    metadata = recorded.metadata
    headers = {
        H_MSG_ID: recorded.event_id_text,
        H_CONTEXT: context,
        H_AGGREGATE: aggregate,
        H_EVENT_TYPE: recorded.event_type,
        H_EVENT_VERSION: str(event_version),
        H_STREAM_ID: recorded.stream_id,
        H_STREAM_VERSION: str(recorded.stream_version),
        H_POSITION: str(recorded.position),
        H_RECORDED_AT: recorded.recorded_at_text,
    }
    correlation = metadata.get(CORRELATION_ID)
    if correlation is not None:
        headers[H_CORRELATION_ID] = str(correlation)
    causation = metadata.get(CAUSATION_ID)
    if causation is not None:
        headers[H_CAUSATION_ID] = str(causation)
    return headers


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None or value == "":
        raise MessageError(f"the message has no {name} header")
    return value


def _number(headers: Mapping[str, str], name: str) -> int:
    text = _header(headers, name)
    if not text.isascii() or not text.isdigit():
        raise MessageError(f"header {name} is {text!r}, not a whole number")
    return int(text)


def recorded_from_message(headers: Mapping[str, str], payload: bytes) -> RecordedEvent:
    """The upstream event a message carries, as a `RecordedEvent` of the upstream context:
    its `position` is the upstream store's, `event_version` the payload's version, and the
    metadata holds the correlation and causation ids. `MessageError` when a header is
    missing or malformed, or the payload is not UTF-8 text."""
    try:
        data = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MessageError(f"the payload is not UTF-8 text ({exc})") from None
    metadata: dict[str, str] = {}
    if (correlation := headers.get(H_CORRELATION_ID)) is not None:
        metadata[CORRELATION_ID] = correlation
    if (causation := headers.get(H_CAUSATION_ID)) is not None:
        metadata[CAUSATION_ID] = causation
    version = _number(headers, H_EVENT_VERSION)
    if version < 1:
        raise MessageError(f"header {H_EVENT_VERSION} is {version}, below 1")
    event_id_text = _header(headers, H_MSG_ID)
    try:
        event_id = UUID(event_id_text)
    except ValueError:
        raise MessageError(f"header {H_MSG_ID} is {event_id_text!r}, not a UUID") from None
    recorded_text = _header(headers, H_RECORDED_AT)
    try:
        recorded_at = datetime.fromisoformat(recorded_text)
    except ValueError:
        raise MessageError(
            f"header {H_RECORDED_AT} is {recorded_text!r}, not an ISO 8601 time"
        ) from None
    if recorded_at.utcoffset() is None:
        raise MessageError(f"header {H_RECORDED_AT} is {recorded_text!r}, without a UTC offset")
    return RecordedEvent(
        position=_number(headers, H_POSITION),
        stream_id=_header(headers, H_STREAM_ID),
        stream_version=_number(headers, H_STREAM_VERSION),
        event_type=_header(headers, H_EVENT_TYPE),
        event_version=version,
        data=data,
        event_id=event_id,
        metadata=metadata,
        recorded_at=recorded_at.astimezone(UTC),
    )
