"""Integration events over NATS JetStream: the relay and the consumer runner.

Needs the `esgen[nats]` extra (nats-py); the rest of the runtime never imports this package.
"""

from esgen.runtime._integration import Wire, dead_letter_stream
from esgen.runtime.nats._consumer_runner import (
    ConsumerRunner,
    ConsumerStatus,
    DeadLetterFailed,
    DurableLost,
)
from esgen.runtime.nats._relay import Relay, RelayError, RelayStatus

__all__ = [
    "ConsumerRunner",
    "ConsumerStatus",
    "DeadLetterFailed",
    "DurableLost",
    "Relay",
    "RelayError",
    "RelayStatus",
    "Wire",
    "dead_letter_stream",
]
