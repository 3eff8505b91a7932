"""Test helpers for applications and backends built on `esgen.runtime`.

- `BackendContract` (and its parts): the suite every event store must pass; subclass it
  once per backend. The parts on read models and sagas (`ProjectionContract`,
  `SagaContract`, `QueryContract`, and the value and text rules) run on every store that
  keeps them, the in-memory one included.
- `AggregateScenario`: given / when / then for aggregates, without a store.
- `UpcasterScenario`: given a stored payload of an old version, then the latest event.
- `SagaScenario`: given past events, when an event (or the deadline), then the commands
  and compensations a saga sends.
- `BlockingEventStore`: an asynchronous store behind the synchronous ports, so the same
  contract suite checks asynchronous backends.
- `todo`: the failing placeholder of scaffolded tests.
- `ManualClock`: a clock tests move by hand, for stores and repositories.

Imports pytest and hypothesis, so only test code may import this package; `esgen.runtime`
itself never does.
"""

from esgen.runtime.testing._blocking import BlockingEventStore
from esgen.runtime.testing._clock import ManualClock
from esgen.runtime.testing._contract import (
    BackendContract,
    EventStoreContract,
    MultiProcessContract,
    RepositoryContract,
)
from esgen.runtime.testing._contract_decimals import DecimalValuesContract
from esgen.runtime.testing._contract_floats import FloatValuesContract
from esgen.runtime.testing._contract_projections import ProjectionContract
from esgen.runtime.testing._contract_query import QueryContract
from esgen.runtime.testing._contract_rows import RowTextContract
from esgen.runtime.testing._contract_sagas import SagaContract
from esgen.runtime.testing._saga import SagaScenario
from esgen.runtime.testing._scenario import AggregateScenario
from esgen.runtime.testing._todo import todo
from esgen.runtime.testing._upcasting import UpcasterScenario

__all__ = [
    "AggregateScenario",
    "BackendContract",
    "BlockingEventStore",
    "DecimalValuesContract",
    "EventStoreContract",
    "FloatValuesContract",
    "ManualClock",
    "MultiProcessContract",
    "ProjectionContract",
    "QueryContract",
    "RepositoryContract",
    "RowTextContract",
    "SagaContract",
    "SagaScenario",
    "UpcasterScenario",
    "todo",
]
