"""Sagas that correlate on the aggregate id, and refusal hooks, through the generated base
of golden case `saga_aggregate_id`: run by `SagaRunner` on a SQLite file, and by
`SagaScenario` without a store. Both share one code path (`react`, `send_outbox`), so
each policy of a refusal hook is checked on both and must agree."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar
from uuid import UUID

import pytest

from esgen.runtime import (
    Command,
    DecodeError,
    Event,
    NewEvent,
    SagaRunner,
    SQLiteEventStore,
)
from esgen.runtime.testing import SagaScenario

sys.path.insert(
    0, str(Path(__file__).parents[1] / "cases" / "saga_aggregate_id" / "expected" / "src")
)

from freight.commands.cargo import AssignRoute, MarkMisdirected, ReleaseRoute
from freight.events.cargo import CargoBooked, RouteAssigned
from freight.events.handling import HandlingLost, HandlingRegistered
from freight.registry import REGISTRY
from freight.sagas.cargo_routing import CargoRoutingBase, CargoRoutingState
from harness import run_pyright
from typing_extensions import override

FREIGHT = Path(__file__).parents[1] / "cases" / "saga_aggregate_id" / "expected" / "src"
HANDLING = UUID("00000000-0000-4000-8000-0000000000aa")


class Routing(CargoRoutingBase):
    """Routes a cargo; a handling at the wrong place reports it and reroutes."""

    @override
    def on_cargo_booked(self, event: CargoBooked) -> None:
        # No id in the payload: the correlation value is the Cargo stream's id, an int.
        self.state = CargoRoutingState(destination=event.destination)
        route = f"to-{event.destination}"
        self.send_assign_route(AssignRoute(tracking_id=self.correlation_value, route=route))

    @override
    def on_route_assigned(self, event: RouteAssigned) -> None:
        self.state = self.state.evolve(route=event.route)

    @override
    def on_handling_registered(self, event: HandlingRegistered) -> None:
        if event.location == self.state.destination:
            self.complete()
            return
        cargo = self.correlation_value
        self.send_mark_misdirected(
            MarkMisdirected(tracking_id=cargo, reason=f"at {event.location}")
        )
        reroute = f"{event.location}-{self.state.destination}"
        self.send_assign_route(AssignRoute(tracking_id=cargo, route=reroute))

    @override
    def on_handling_lost(self, event: HandlingLost) -> None:
        self.state = self.state.evolve(route=None)

    @override
    def compensate_assign_route(self, sent: AssignRoute) -> ReleaseRoute | None:
        return ReleaseRoute(tracking_id=sent.tracking_id)


class Waits(Routing):
    """A refused report is noted; the workflow goes on (the reroute is still sent)."""

    @override
    def on_mark_misdirected_refused(self, command: MarkMisdirected, error: Exception) -> None:
        self.state = self.state.evolve(route=f"unreported: {error}")


class FailsQuietly(Routing):
    """A refused report ends the workflow as failed, keeping the routes assigned."""

    @override
    def on_mark_misdirected_refused(self, command: MarkMisdirected, error: Exception) -> None:
        self.fail(f"could not report: {error}", compensate=False)


class Escalates(Routing):
    """A refused report routes the cargo by hand, which is refused too."""

    calls: ClassVar[list[str]] = []

    @override
    def on_mark_misdirected_refused(self, command: MarkMisdirected, error: Exception) -> None:
        self.calls.append(type(command).__name__)
        self.send_assign_route(AssignRoute(tracking_id=command.tracking_id, route="manual"))

    @override
    def on_assign_route_refused(self, command: AssignRoute, error: Exception) -> None:
        self.calls.append(type(command).__name__)  # never: the hook's command gets no hook
        super().on_assign_route_refused(command, error)


class Buggy(Routing):
    """A hook with a bug: what it raises is no refusal."""

    broken: ClassVar[bool] = True

    @override
    def on_mark_misdirected_refused(self, command: MarkMisdirected, error: Exception) -> None:
        if self.broken:
            raise ValueError("a bug in the hook")
        self.complete()


class Refusal(ValueError):
    """What the aggregates in these tests raise to refuse a command."""


class Dispatcher:
    """Records what is sent; refuses the command classes in `refused` (and any reroute
    named "manual")."""

    def __init__(self, *refused: type[Command]) -> None:
        self.refused = refused
        self.sent: list[Command] = []

    def __call__(self, command: Any) -> None:
        if isinstance(command, self.refused) or getattr(command, "route", None) == "manual":
            raise Refusal(f"{type(command).__name__} refused")
        self.sent.append(command)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteEventStore]:
    store = SQLiteEventStore(tmp_path / "events.sqlite")
    yield store
    store.close()


def record(store: SQLiteEventStore, stream: str, *events: Event) -> None:
    version = store.stream_version(stream)
    store.append(stream, [NewEvent.from_event(e) for e in events], version)


def runner(
    store: SQLiteEventStore, saga: type[Routing], dispatch: Dispatcher
) -> SagaRunner[Routing, int]:
    return SagaRunner(saga, store, REGISTRY, dispatch, start="beginning")


def routed_then_misplaced(store: SQLiteEventStore, cargo: int = 7) -> None:
    record(store, f"Cargo-{cargo}", CargoBooked(destination="Oslo"))
    record(store, f"Cargo-{cargo}", RouteAssigned(route="to-Oslo"))
    record(store, f"Handling-{HANDLING}", HandlingRegistered(tracking_id=cargo, location="Kiel"))


# -- correlation on the aggregate id ---------------------------------------------------


def test_the_saga_type_and_class_carry_the_correlation_aggregate() -> None:
    assert Routing.correlation_aggregate == "Cargo"
    assert Routing.correlation == "tracking_id"
    assert Routing.correlation_type is int


def test_events_of_the_aggregate_correlate_by_their_stream(store: SQLiteEventStore) -> None:
    dispatch = Dispatcher()
    routing = runner(store, Routing, dispatch)
    record(store, "Cargo-7", CargoBooked(destination="Oslo"))
    record(store, "Cargo-8", CargoBooked(destination="Bergen"))
    record(store, "Cargo-8", RouteAssigned(route="north"))
    record(store, "Cargo-99", RouteAssigned(route="nowhere"))  # no instance: ignored
    routing.catch_up()
    assert dispatch.sent == [
        AssignRoute(tracking_id=7, route="to-Oslo"),
        AssignRoute(tracking_id=8, route="to-Bergen"),
    ]
    seven, eight = routing.instance(7), routing.instance(8)
    assert seven is not None and seven.correlation_value == 7
    assert seven.state == CargoRoutingState(destination="Oslo")
    assert eight is not None and eight.state.route == "north"
    assert routing.instance(99) is None


def test_events_of_another_aggregate_correlate_by_the_id_field(store: SQLiteEventStore) -> None:
    dispatch = Dispatcher()
    routing = runner(store, Routing, dispatch)
    record(store, "Cargo-7", CargoBooked(destination="Oslo"))
    record(store, "Cargo-8", CargoBooked(destination="Bergen"))
    handling = f"Handling-{HANDLING}"
    record(store, handling, HandlingRegistered(tracking_id=7, location="Oslo"))
    record(store, handling, HandlingLost(tracking_id=None))  # names no cargo: ignored
    record(store, handling, HandlingLost(tracking_id=8))  # a failure event of cargo 8
    routing.catch_up()
    seven, eight = routing.instance(7), routing.instance(8)
    assert seven is not None and seven.status == "completed"
    assert eight is not None and eight.status == "compensated"
    assert eight.compensated == [ReleaseRoute(tracking_id=8)]
    assert dispatch.sent[-1] == ReleaseRoute(tracking_id=8)


def test_a_stream_id_that_is_not_an_id_is_skipped_and_the_rest_go_on(
    store: SQLiteEventStore, caplog: pytest.LogCaptureFixture
) -> None:
    dispatch = Dispatcher()
    routing = runner(store, Routing, dispatch)
    record(store, "Cargo-007", CargoBooked(destination="Oslo"))  # not how 7 is written
    record(store, "Cargo-8", CargoBooked(destination="Bergen"))
    with caplog.at_level("WARNING", logger="esgen.runtime"):
        routing.catch_up()
    # No instance can have it: stopping would stop cargo 8 too, for good.
    assert dispatch.sent == [AssignRoute(tracking_id=8, route="to-Bergen")]
    status = routing.status()
    assert (status.position, status.head) == (2, 2)
    problem = status.problem
    assert problem is not None and problem.error == "esgen.runtime._errors.DecodeError"
    assert (problem.position, problem.stream_id) == (1, "Cargo-007")
    assert problem.message == (
        "CargoRouting skipped this event: the Cargo id of stream 'Cargo-007' is the "
        "correlation of no instance that can exist ('007' is not an id of type int: "
        "expected a base-10 integer without sign '+', leading zeros, spaces or underscores)"
    )
    (warning,) = [r for r in caplog.records if r.levelname == "WARNING"]
    assert warning.getMessage() == problem.describe()
    routing.catch_up()  # a later pass that goes well leaves it behind
    assert routing.status().problem is None


# -- refusal hooks, through the runner on SQLite -----------------------------------------


def test_by_default_a_refusal_fails_compensates_and_drops_the_rest(
    store: SQLiteEventStore,
) -> None:
    dispatch = Dispatcher(MarkMisdirected)
    routing = runner(store, Routing, dispatch)
    routed_then_misplaced(store)
    routing.catch_up()
    instance = routing.instance(7)
    assert instance is not None and instance.status == "failed"
    assert instance.reason == "MarkMisdirected failed: MarkMisdirected refused"
    # The reroute queued after the refused report was not sent; the first route undone.
    assert dispatch.sent == [
        AssignRoute(tracking_id=7, route="to-Oslo"),
        ReleaseRoute(tracking_id=7),
    ]
    assert instance.compensated == [ReleaseRoute(tracking_id=7)]


def test_a_hook_that_leaves_the_workflow_running_lets_the_rest_go(
    store: SQLiteEventStore,
) -> None:
    dispatch = Dispatcher(MarkMisdirected)
    routing = runner(store, Waits, dispatch)
    routed_then_misplaced(store)
    routing.catch_up()
    instance = routing.instance(7)
    assert instance is not None and instance.status == "running"
    assert instance.state.route == "unreported: MarkMisdirected refused"
    assert dispatch.sent[-1] == AssignRoute(tracking_id=7, route="Kiel-Oslo")
    assert [type(c) for c in instance.steps] == [AssignRoute, AssignRoute]
    # Still running: the next event reaches it.
    record(store, f"Handling-{HANDLING}", HandlingRegistered(tracking_id=7, location="Oslo"))
    routing.catch_up()
    done = routing.instance(7)
    assert done is not None and done.status == "completed"


def test_a_hook_may_fail_without_compensating(store: SQLiteEventStore) -> None:
    dispatch = Dispatcher(MarkMisdirected)
    routing = runner(store, FailsQuietly, dispatch)
    routed_then_misplaced(store)
    routing.catch_up()
    instance = routing.instance(7)
    assert instance is not None and instance.status == "failed"
    assert instance.reason == "could not report: MarkMisdirected refused"
    assert instance.compensated == []
    assert dispatch.sent == [AssignRoute(tracking_id=7, route="to-Oslo")]


def test_a_refusal_of_a_hooks_own_command_fails_without_another_hook(
    store: SQLiteEventStore,
) -> None:
    Escalates.calls.clear()
    dispatch = Dispatcher(MarkMisdirected)
    routing = runner(store, Escalates, dispatch)
    routed_then_misplaced(store)
    routing.catch_up()
    assert Escalates.calls == ["MarkMisdirected"]
    instance = routing.instance(7)
    assert instance is not None and instance.status == "failed"
    assert instance.reason == "AssignRoute failed: AssignRoute refused"
    assert instance.compensated == [ReleaseRoute(tracking_id=7)]
    assert AssignRoute(tracking_id=7, route="Kiel-Oslo") not in dispatch.sent


def test_an_error_in_a_hook_stalls_the_instance_until_it_is_retried(
    store: SQLiteEventStore,
) -> None:
    dispatch = Dispatcher(MarkMisdirected)
    routing = runner(store, Buggy, dispatch)
    record(store, "Cargo-7", CargoBooked(destination="Oslo"), RouteAssigned(route="to-Oslo"))
    record(store, "Cargo-8", CargoBooked(destination="Bergen"))
    routing.catch_up()
    record(store, f"Handling-{HANDLING}", KIEL)
    record(store, f"Handling-{HANDLING}", HandlingRegistered(tracking_id=8, location="Bergen"))
    Buggy.broken = True
    routing.catch_up()  # no error: cargo 7 waits, cargo 8 goes on
    (stall,) = routing.take_stalls()
    assert (stall.saga, stall.correlation, stall.status) == ("CargoRouting", "7", "stalled")
    problem = stall.problem
    assert problem is not None and problem.error == "ValueError"
    assert problem.message == "a bug in the hook"
    assert (problem.event_type, problem.stream_id) == ("HandlingRegistered", f"Handling-{HANDLING}")
    # The user's own line, not the runner's.
    assert problem.where is not None
    assert problem.where.startswith(f"{os.path.abspath(__file__)}:")  # read from anywhere
    assert problem.where.endswith(" in on_mark_misdirected_refused")
    before = routing.instance(7)
    assert before is not None and before.status == "stalled" and before.state.route == "to-Oslo"
    eight = routing.instance(8)
    assert eight is not None and eight.status == "completed"
    assert routing.status().counts == {"running": 0, "completed": 1, "failed": 0,
                                       "compensated": 0, "timed_out": 0, "stalled": 1}  # fmt: skip
    Buggy.broken = False  # fixed and deployed: the event is handled again
    after = routing.retry(routing.parse_correlation(stall.correlation))
    assert after.status == "completed" and after.problem is None
    assert routing.retry_stalled() == []


def test_a_correlation_is_parsed_as_the_saga_writes_it(store: SQLiteEventStore) -> None:
    routing = runner(store, Routing, Dispatcher())
    assert (routing.name, routing.correlation_type) == ("CargoRouting", int)
    assert routing.parse_correlation("7") == 7
    with pytest.raises(DecodeError, match="'007' is not an id of type int"):
        routing.parse_correlation("007")


# -- the same policies through SagaScenario: no store, no correlation fields --------------


def scenario(saga: type[Routing]) -> SagaScenario[Routing, int]:
    return SagaScenario(saga, 7).given(
        CargoBooked(destination="Oslo"), RouteAssigned(route="to-Oslo")
    )


KIEL = HandlingRegistered(tracking_id=7, location="Kiel")
REPORT = MarkMisdirected(tracking_id=7, reason="at Kiel")
REROUTE = AssignRoute(tracking_id=7, route="Kiel-Oslo")
ROUTED = CargoRoutingState(destination="Oslo", route="to-Oslo")


def test_scenario_default_refusal() -> None:
    saga = (
        scenario(Routing)
        .when(KIEL, failing=(MarkMisdirected,))
        .then_sends()
        .then_compensates(ReleaseRoute(tracking_id=7))
        .then_state(ROUTED)
        .then_status("failed")
    )
    assert saga.reason is not None and saga.reason.startswith("MarkMisdirected failed: ")


def test_scenario_hook_that_waits() -> None:
    (
        scenario(Waits)
        .when(KIEL, failing={MarkMisdirected: Refusal("no such port")})
        .then_sends(REROUTE)
        .then_compensates()
        .then_state(ROUTED.evolve(route="unreported: no such port"))
        .then_status("running")
    )


def test_scenario_hook_that_fails_quietly() -> None:
    (
        scenario(FailsQuietly)
        .when(KIEL, failing=(MarkMisdirected,))
        .then_sends()
        .then_compensates()
        .then_status("failed")
    )


def test_scenario_hook_whose_command_is_refused() -> None:
    Escalates.calls.clear()
    (
        scenario(Escalates)
        .when(KIEL, failing=(MarkMisdirected, AssignRoute))
        .then_sends()
        .then_compensates(ReleaseRoute(tracking_id=7))
        .then_status("failed")
    )
    assert Escalates.calls == ["MarkMisdirected"]


def test_scenario_sends_everything_when_nothing_is_refused() -> None:
    scenario(Routing).when(KIEL).then_sends(REPORT, REROUTE).then_status("running")


def test_scenario_then_state_names_the_difference() -> None:
    with pytest.raises(AssertionError, match="state differs"):
        scenario(Routing).when(KIEL).then_state(CargoRoutingState(destination="Bergen"))


# -- what type checkers make of a hook override --------------------------------------------

HOOK_OK = """
from __future__ import annotations

from typing_extensions import override

from freight.commands.cargo import AssignRoute
from freight.sagas.cargo_routing import CargoRoutingBase


class Quiet(CargoRoutingBase):
    @override
    def on_assign_route_refused(self, command: AssignRoute, error: Exception) -> None:
        self.fail(f"{command.route}: {error}", compensate=False)
"""

HOOK_WRONG = """
from __future__ import annotations

from typing_extensions import override

from freight.commands.cargo import MarkMisdirected
from freight.sagas.cargo_routing import CargoRoutingBase


class Confused(CargoRoutingBase):
    @override
    def on_assign_route_refused(self, command: MarkMisdirected, error: Exception) -> None:  # WRONG
        self.fail(command.reason)
"""


def _wrong_lines() -> set[int]:
    lines = HOOK_WRONG.splitlines()
    return {number for number, line in enumerate(lines, 1) if line.endswith("# WRONG")}


def test_mypy_refuses_a_hook_for_another_command(tmp_path: Path) -> None:
    (tmp_path / "hook_ok.py").write_text(HOOK_OK)
    (tmp_path / "hook_wrong.py").write_text(HOOK_WRONG)
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", "--hide-error-context",
         "--cache-dir", str(tmp_path / ".mypy_cache"), "hook_ok.py", "hook_wrong.py"],
        cwd=tmp_path,
        env={**os.environ, "MYPYPATH": str(FREIGHT)},
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    errors = [line for line in run.stdout.splitlines() if ": error:" in line]
    assert [e for e in errors if e.startswith("hook_ok.py")] == [], run.stdout
    reported = {int(e.split(":")[1]) for e in errors if e.startswith("hook_wrong.py")}
    assert reported == _wrong_lines(), run.stdout


def test_pyright_refuses_a_hook_for_another_command(tmp_path: Path) -> None:
    (tmp_path / "hook_ok.py").write_text(HOOK_OK)
    (tmp_path / "hook_wrong.py").write_text(HOOK_WRONG)
    result = run_pyright(
        [tmp_path / "hook_ok.py", tmp_path / "hook_wrong.py"], tmp_path, extra_paths=[FREIGHT]
    )
    lines = result.report.splitlines()
    assert not [line for line in lines if "hook_ok.py" in line], result.report
    wrong = {
        int(line.split(":")[1]) for line in lines if "hook_wrong.py" in line and "error" in line
    }
    assert wrong == _wrong_lines(), result.report


RETRY = """
from __future__ import annotations

from esgen.runtime import Problem, SagaInstance, SagaRunner
from freight.sagas.cargo_routing import CargoRoutingBase


def operate(runner: SagaRunner[CargoRoutingBase, int]) -> Problem | None:
    seven: int = runner.parse_correlation("7")
    again: SagaInstance = runner.retry(seven)
    for stalled in runner.instances("stalled", limit=10):
        runner.retry(runner.parse_correlation(stalled.correlation))
    runner.retry("7")  # WRONG
    runner.instances("lost")  # WRONG
    return again.problem
"""


def test_mypy_types_retry_by_the_sagas_correlation(tmp_path: Path) -> None:
    (tmp_path / "retry.py").write_text(RETRY)
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", "--hide-error-context",
         "--cache-dir", str(tmp_path / ".mypy_cache"), "retry.py"],
        cwd=tmp_path,
        env={**os.environ, "MYPYPATH": str(FREIGHT)},
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    lines = RETRY.splitlines()
    wrong = {number for number, line in enumerate(lines, 1) if line.endswith("# WRONG")}
    reported = {int(e.split(":")[1]) for e in run.stdout.splitlines() if ": error:" in e}
    assert reported == wrong, run.stdout


# -- an explicit decision stands when a later refusal comes ---------------------------


class FailsQuietlyThenReports(Routing):
    """A refused reroute ends the workflow without compensating, then reports it by a
    command that is refused too: the explicit choice and the first cause stand."""

    @override
    def on_mark_misdirected_refused(self, command: MarkMisdirected, error: Exception) -> None:
        self.fail(f"could not report: {error}", compensate=False)
        self.send_assign_route(AssignRoute(tracking_id=command.tracking_id, route="manual"))


class GivesUpThenQueues(Routing):
    """A handler that ends the workflow without compensating and still queues a command,
    which is refused: the default refusal keeps the handler's choice."""

    @override
    def on_handling_registered(self, event: HandlingRegistered) -> None:
        self.fail("misplaced for good", compensate=False)
        self.send_mark_misdirected(MarkMisdirected(tracking_id=7, reason="lost"))


@pytest.mark.parametrize("saga", [FailsQuietlyThenReports, GivesUpThenQueues])
def test_a_later_refusal_keeps_fail_without_compensation_and_the_first_cause(
    store: SQLiteEventStore, saga: type[Routing]
) -> None:
    dispatch = Dispatcher(MarkMisdirected)
    routing = runner(store, saga, dispatch)
    routed_then_misplaced(store)
    routing.catch_up()
    instance = routing.instance(7)
    assert instance is not None and instance.status == "failed"
    assert instance.compensated == []
    assert ReleaseRoute(tracking_id=7) not in dispatch.sent
    first = "could not report" if saga is FailsQuietlyThenReports else "misplaced for good"
    assert instance.reason is not None and instance.reason.startswith(first)
    assert "refused" in instance.reason.partition(";")[2]
    # SagaScenario agrees with the runner.
    played = scenario(saga).when(KIEL, failing=(MarkMisdirected,)).then_compensates()
    played.then_status("failed")


# -- SagaScenario refuses what the runner would never do --------------------------------


def test_scenario_runs_no_deadline_the_runner_would_not() -> None:
    assert Routing.timeout is None
    with pytest.raises(AssertionError, match="declares no timeout"):
        scenario(Routing).when_deadline_passes()


def test_scenario_refuses_an_event_the_saga_does_not_handle() -> None:
    from freight.events.cargo import CargoMisdirected

    with pytest.raises(AssertionError, match="does not handle CargoMisdirected"):
        scenario(Routing).when(CargoMisdirected(reason="at Kiel"))
