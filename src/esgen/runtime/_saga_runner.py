"""The saga runner: follows the store's global order like a projection, one instance per
correlation.

Handling an event, the commands it causes (and the events they record), the instance's
new state and the checkpoint commit in one transaction, so redelivery never sends a
command twice. An instance whose code fails (an error that is no refusal) stalls alone
and waits for `retry`; the store failing stops the runner (see `SagaRunner`).
"""

from __future__ import annotations

import json
import logging
import threading
import typing
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any, Generic, Literal, cast

from pydantic import BaseModel

from esgen.runtime._context import command_context
from esgen.runtime._errors import (
    AggregateDefinitionError,
    BackendError,
    ConcurrencyError,
    DecodeError,
    EventStoreError,
    ReadOnlyStore,
    UnstorableText,
)
from esgen.runtime._finite import dump_json
from esgen.runtime._health import Problem, SagaInstance, SagaRunnerStatus
from esgen.runtime._ids import AnyId, check_id, decode_id, encode_id
from esgen.runtime._messages import Command, Event
from esgen.runtime._personal import PersonalFields, model_opener, personal_fields
from esgen.runtime._ports import EventStore
from esgen.runtime._progress_store import (
    ProgressStorage,
    ProgressUnit,
    SagaRecord,
    is_looking,
    progress_storage,
    saga_steps,
)
from esgen.runtime._projection import Progress
from esgen.runtime._records import Clock, RecordedEvent, to_utc, utc_now
from esgen.runtime._registry import EventRegistry
from esgen.runtime._saga import (
    CorrT,
    Dispatch,
    Saga,
    SagaError,
    SagaFactory,
    SagaStatus,
    SagaT,
    react,
    time_out,
)
from esgen.runtime._saga_records import (
    ended_by_deadline,
    ended_by_event,
    instance_of,
    metadata_of,
    park,
    restall,
    resume_point,
    stall,
    unstalled_metadata,
)
from esgen.runtime._saga_steps import SagaSteps
from esgen.runtime._sealed import seal_derived
from esgen.runtime._text import check_key

__all__ = ["SagaInstanceNotFound", "SagaRunner"]

logger = logging.getLogger("esgen.runtime")


STALL_LOG = {"esgen_stall": True}
"""The `extra` of the log records that tell a stall (see `LogRecord.esgen_stall`)."""


class SagaInstanceNotFound(EventStoreError, LookupError):
    """No stored instance of the saga has that correlation."""


class _NotStalled(SagaError):
    """Only a stalled instance can be retried."""


class _InstanceFailed(Exception):
    """An instance's handler, hook, command or deadline raised an error that is neither a
    refusal nor the store failing. Raised out of the transaction (so that it rolls back)
    to the runner, which stalls that instance and goes on."""

    def __init__(
        self,
        error: Exception,
        correlation: str,
        recorded: RecordedEvent | None,
        after: int = 0,
        before: int | None = None,
    ) -> None:
        super().__init__(str(error))
        self.error = error
        self.correlation = correlation
        self.recorded = recorded  # None: its deadline
        self.after = after  # the checkpoint the failed page started from
        self.before = before  # the position of the page's event before the failed one


class _Uncorrelated(Exception):
    """An event of the saga whose correlation no instance can have (NUL in it, an
    aggregate id that is not of the correlation type, ...): skipped, not stopped on."""

    def __init__(self, error: Exception, what: str) -> None:
        super().__init__(str(error))
        self.error = error
        self.what = what  # where the correlation was taken from


# The store failing (or refusing every write): the runner stops, and the page is handled
# again on the next run. Stalling instances for these would stall every one of them.
_STORE_ERRORS = (BackendError, ConcurrencyError, ReadOnlyStore)
_STATUSES: tuple[str, ...] = typing.get_args(SagaStatus)


class SagaRunner(Generic[SagaT, CorrT]):
    """Runs one saga class over an event store that supports transactions.

    An error that is neither a refusal nor the store failing (a bug in a handler, a hook
    or a compensation; a command whose aggregate cannot be loaded) stalls the instance it
    happened in, and only that one: its effects roll back, it waits with the error
    (`instances("stalled")`), its later events are kept in order, and `retry` handles
    them after the fix. The store failing, or an event this code cannot read, stops the
    runner instead (`status().problem`): its page is handled again on the next run.
    """

    def __init__(
        self,
        saga_class: SagaFactory[SagaT, CorrT],
        store: EventStore,
        registry: EventRegistry,
        dispatch: Dispatch,
        *,
        clock: Clock = utc_now,
        page_size: int = 500,
        storage: ProgressStorage | None = None,
        start: Literal["now", "beginning"] = "now",
    ) -> None:
        """`start` matters only the first time the saga runs against a store: "now" (the
        default) ignores the events already there, as a saga deployed onto a running
        system must; "beginning" handles every event ever recorded, sending commands for
        history (only for a store the saga has followed from its first event)."""
        self._class = cast("type[SagaT]", saga_class)
        self._store = store
        self._registry = registry
        self._dispatch = dispatch
        self._clock = clock
        self._page_size = page_size
        self._storage = storage or progress_storage(store)
        saga = self._class
        self._handles = saga._handles()
        self._start_type = saga.starts_with.event_type
        self._checkpoint = f"saga:{saga.name}"
        self._state_personal, self._read_state = _state_sealing(saga, store)
        self._steps = SagaSteps(saga, store)
        self._stalls: dict[str, SagaInstance] = {}
        self._stalls_lock = threading.Lock()
        if self._start_type not in self._handles:
            raise AggregateDefinitionError(
                f"{saga.name} has no handler for its starting event {self._start_type}"
            )
        # Where a saga that never ran here starts: decided now, as it is deployed (one
        # deployed onto a running system ignores what is already there), and stored at
        # once, unless the runner is only built to look (`looking()`): `esgen sagas status`
        # before a deploy must not decide where the saga will start.
        self._start = store.head_position() if start == "now" else 0
        if not is_looking():
            with self._storage.unit() as unit:
                self._position(unit)

    @property
    def name(self) -> str:
        return self._class.name

    @property
    def correlation_type(self) -> type[CorrT]:
        return cast("type[CorrT]", self._class.correlation_type)

    # -- following the store ----------------------------------------------------------

    def catch_up(self, *, until: int | None = None, progress: Progress | None = None) -> int:
        """Handle every event recorded so far (or up to position `until`), then run due
        deadlines; returns how many events were handled. `progress` is called after each
        committed page with the saga's name, the position reached and the store's head."""
        handled = 0
        bound = until
        # The events this pass skipped (no instance can have them); the last one stays the
        # runner's problem until the next pass, which otherwise clears it when it succeeds.
        skipped: list[Problem] = []
        while True:
            try:
                count, done = self._page(bound, progress, skipped)
            except _InstanceFailed as failed:
                if failed.before is None:
                    try:
                        self._stall_on_event(failed, progress, skipped)
                    except Exception as exc:
                        self._record_problem(exc, failed.recorded)
                        raise
                    bound = until
                else:
                    # No savepoints (the memory store has none): the events before the
                    # failed one commit as a page of their own, then the failed one is
                    # tried alone, and stalls its instance if it fails again.
                    bound = failed.before if until is None else min(until, failed.before)
                continue
            handled += count
            if done and bound == until:
                break
            bound = until
        self._run_deadlines(skipped)
        return handled

    def run(
        self,
        stop: threading.Event,
        *,
        poll_interval: float = 0.25,
        progress: Progress | None = None,
    ) -> None:
        wait: Callable[[int, float], bool] | None = getattr(self._store, "wait_for_events", None)
        while not stop.is_set():
            self.catch_up(progress=progress)
            if wait is not None:
                wait(self._store.head_position(), poll_interval)
            else:
                stop.wait(poll_interval)

    def _page(
        self, until: int | None, progress: Progress | None, skipped: list[Problem]
    ) -> tuple[int, bool]:
        recorded: RecordedEvent | None = None  # the event being handled, for a problem
        skips: list[Problem] = []  # this page's, kept only if it commits
        try:
            with self._storage.unit() as unit:
                position = self._position(unit)
                limit = self._page_size if until is None else min(self._page_size, until - position)
                records = self._store.read_all(after=position, limit=limit) if limit > 0 else []
                if not records:
                    self._settle_problem(unit, skipped)  # read fine: whatever stopped it is over
                    return 0, True
                handled = 0
                # Events stored under a former name of a renamed type are handled as that type.
                handles = self._registry.by_stored_type(self._handles)
                before: int | None = None
                for recorded in records:
                    if recorded.event_type in handles and self._handle(
                        unit, recorded, position, before, skips
                    ):
                        handled += 1
                    before = recorded.position
                recorded = None
                reached = records[-1].position
                unit.set_checkpoint(self._checkpoint, 1, reached, active=True)
                self._settle_problem(unit, [*skipped, *skips])  # it moves again
        except _InstanceFailed:
            raise
        except Exception as exc:
            self._record_problem(exc, recorded)
            raise
        for skip in skips:
            logger.warning("%s", skip.describe())
        skipped += skips
        self._report(progress, reached)
        # Not done even after a short page: the commands just sent recorded new events
        # (the saga's own included), and the next page should see them.
        return handled, False

    def _position(self, unit: ProgressUnit) -> int:
        """The checkpoint, stored on the first page of a saga that never ran here."""
        generations = unit.generations(self._checkpoint)
        if not generations:
            unit.set_checkpoint(self._checkpoint, 1, self._start, active=True)
            return self._start
        return generations[1][0]

    def _handle(
        self,
        unit: ProgressUnit,
        recorded: RecordedEvent,
        after: int,
        before: int | None,
        skips: list[Problem],
    ) -> bool:
        event = self._registry.decode_recorded(recorded, self._store.keyring)
        try:
            correlation = self._correlation_of(event, recorded)
        except _Uncorrelated as uncorrelated:
            # Stopping would stop every instance for good, for an event none of them has.
            skips.append(self._skip(uncorrelated, recorded))
            return False
        if correlation is None:
            return False  # not part of any instance (e.g. a deposit outside a transfer)
        record = unit.saga(self._class.name, correlation)
        starting = event.event_type == self._start_type  # the current name, if renamed
        if record is None and not starting:
            return False
        if record is not None and starting:
            return False  # started already: a second starting event changes nothing
        if record is not None and record.status == "stalled":
            # Kept for its retry, in order; marked, so that redelivery keeps it only once.
            if unit.mark_handled(self._class.name, str(recorded.event_id)):
                unit.save_saga(park(record, recorded), self._now())
            return False
        if record is not None and record.status != "running":
            return False
        if not unit.mark_handled(self._class.name, str(recorded.event_id)):
            return False  # already handled: redelivery changes nothing
        saga: SagaT | None = None
        if record is None:
            saga = self._new_instance(correlation, recorded)
            record = self._new_record(correlation, recorded)
        try:
            if saga is None:
                saga = self._restore(record)
            with command_context(caused_by=recorded, saga=self._class.name):
                react(saga, event, self._dispatch)
            self._save(unit, record, saga, recorded)
        except _STORE_ERRORS as exc:
            # Which event and instance: the traceback shows only the handler's code.
            exc.add_note(
                f"{self._class.name} {correlation}: handling {recorded.event_type} "
                f"(event {recorded.event_id}) at position {recorded.position} of stream "
                f"{recorded.stream_id!r}"
            )
            raise
        except Exception as exc:
            raise _InstanceFailed(exc, correlation, recorded, after, before) from exc
        return True

    def _new_instance(self, correlation: str, recorded: RecordedEvent) -> SagaT:
        try:
            return self._class(decode_id(self._class.correlation_type, correlation))
        except DecodeError as exc:
            # The event's field is declared with another type than the correlation: the
            # code disagrees with itself, and fixing the event class makes the event
            # readable, so the runner stops rather than skip it.
            exc.add_note(
                f"{self._class.name}: the {self._class.correlation!r} of "
                f"{recorded.event_type} at position {recorded.position} is its "
                "correlation, so it must be of the saga's correlation type"
            )
            raise

    def _new_record(self, correlation: str, recorded: RecordedEvent) -> SagaRecord:
        started = recorded.recorded_at
        deadline = None if self._class.timeout is None else started + self._class.timeout
        conversation = recorded.correlation_id or str(recorded.event_id)
        return SagaRecord(self._class.name, correlation, "running", None, saga_steps([], []),
                          json.dumps({"correlation_id": conversation}), started.isoformat(),
                          None if deadline is None else deadline.isoformat())  # fmt: skip

    def _correlation_of(self, event: Event, recorded: RecordedEvent) -> str | None:
        """The stored correlation of the instance an event belongs to, or None for none;
        `_Uncorrelated` for a value that no instance can have, whatever the code: NUL or
        a lone surrogate (no store keeps it), empty text, or a stream id that holds no id
        of the correlation type (stream ids never change)."""
        saga = self._class
        aggregate = saga.correlation_aggregate
        # Aggregate types are never renamed (they are in every stream id), so the prefix
        # is the one the aggregate writes; renamed event types were read as the new ones.
        if aggregate is not None and recorded.stream_id.startswith(f"{aggregate}-"):
            text = recorded.stream_id[len(aggregate) + 1 :]
            try:
                decode_id(saga.correlation_type, text)
                return self._stored_correlation(text)
            except (DecodeError, UnstorableText) as exc:
                what = f"the {aggregate} id of stream {recorded.stream_id!r}"
                raise _Uncorrelated(exc, what) from exc
        value = getattr(event, saga.correlation, None)
        if value is None:
            return None
        try:
            return self._stored_correlation(value)
        except ValueError as exc:  # UnstorableText, or empty text (encode_id)
            raise _Uncorrelated(exc, f"its {saga.correlation!r}") from exc

    def _skip(self, uncorrelated: _Uncorrelated, recorded: RecordedEvent) -> Problem:
        problem = Problem.of(uncorrelated.error, recorded, self._now())
        message = (
            f"{self._class.name} skipped this event: {uncorrelated.what} is the correlation "
            f"of no instance that can exist ({problem.message})"
        )
        return replace(problem, message=message)

    def _settle_problem(self, unit: ProgressUnit, skipped: list[Problem]) -> None:
        """After a pass (or page) that succeeded: no error stops the runner now; what it
        keeps is the last event this pass skipped, if any. Written only if it changed, as
        an idle follower settles it at every poll."""
        kept = skipped[-1].dumps() if skipped else None
        if unit.problem(self._checkpoint) != kept:
            unit.set_problem(self._checkpoint, kept)

    def _stall_on_event(
        self, failed: _InstanceFailed, progress: Progress | None, skipped: list[Problem]
    ) -> None:
        """Stall the instance whose event failed alone, in a transaction of its own that
        moves the checkpoint past the event; the runner goes on with the next."""
        recorded = failed.recorded
        assert recorded is not None  # pages fail on events; deadlines stall in expire()
        problem = Problem.of(failed.error, recorded, self._now())
        with self._storage.unit() as unit:
            if self._position(unit) != failed.after:
                return  # another runner moved on meanwhile: the next page reads from there
            record = unit.saga(self._class.name, failed.correlation)
            if record is None:  # its starting event failed: stalled, with no state yet
                record = self._new_record(failed.correlation, recorded)
            elif record.status != "running":
                return  # it changed meanwhile: the event is read again and goes where due
            stalled = stall(record, problem, recorded)
            # Marked: redelivery leaves it to the retry, which alone handles it again.
            unit.mark_handled(self._class.name, str(recorded.event_id))
            unit.save_saga(stalled, problem.at)
            unit.set_checkpoint(self._checkpoint, 1, recorded.position, active=True)
            self._settle_problem(unit, skipped)
        self._stalled(stalled, failed.error)
        self._report(progress, recorded.position)

    def _stalled(self, record: SagaRecord, error: Exception) -> None:
        instance = instance_of(record)
        assert instance.problem is not None
        # Tagged, so that a caller that reports stalls itself (the command line, through
        # take_stalls) can leave these out without reading the words; with the error's
        # traceback, which nothing stores, for whoever wants all of it (`-v`).
        logger.warning("%s %s stalled: %s", record.saga, record.correlation,
                       instance.problem.describe(), exc_info=error,
                       extra=STALL_LOG)  # fmt: skip
        with self._stalls_lock:
            self._stalls[record.correlation] = instance

    def take_stalls(self) -> list[SagaInstance]:
        """The instances this runner stalled since the last call, as they were then."""
        with self._stalls_lock:
            stalls, self._stalls = self._stalls, {}
        return list(stalls.values())

    def _record_problem(self, exc: Exception, recorded: RecordedEvent | None) -> None:
        """Keep the error that stopped the runner, for `status`, in a transaction of its
        own (the failed one rolled back)."""
        try:
            problem = Problem.of(exc, recorded, self._now())
            with self._storage.unit() as unit:
                unit.set_problem(self._checkpoint, problem.dumps())
        except Exception:  # the store itself may be what failed: its error is the one raised
            logger.warning("%s: the error that stopped the runner could not be stored",
                           self._class.name, exc_info=True)  # fmt: skip

    def _report(self, progress: Progress | None, position: int) -> None:
        if progress is not None:
            progress(self._class.name, position, self._store.head_position())

    def _now(self) -> datetime:
        return to_utc(self._clock(), "the saga clock")

    # -- deadlines --------------------------------------------------------------------

    def expire(self) -> int:
        """Run the deadline of every instance whose time is up; returns how many ran. A
        deadline that raises an error (not a refusal) stalls its instance."""
        return self._run_deadlines([])

    def _run_deadlines(self, skipped: list[Problem]) -> int:
        now = self._now()  # deadlines are stored in UTC
        while True:
            try:
                return self._expire(now, skipped)
            except _InstanceFailed as failed:
                self._stall_on_deadline(failed)
            except Exception as exc:
                self._record_problem(exc, None)
                raise

    def _expire(self, now: datetime, skipped: list[Problem]) -> int:
        count = 0
        with self._storage.unit() as unit:
            unit.generations(self._checkpoint)  # one runner of the saga at a time
            for record in unit.due_sagas(self._class.name, now):
                try:
                    saga = self._restore(record)
                    self._time_out(saga, record)
                    self._save(unit, record, saga, None)
                except _STORE_ERRORS:
                    raise
                except Exception as exc:
                    raise _InstanceFailed(exc, record.correlation, None) from exc
                count += 1
            self._settle_problem(unit, skipped)
        return count

    def _time_out(self, saga: SagaT, record: SagaRecord) -> None:
        with command_context(
            correlation_id=metadata_of(record).get("correlation_id"),
            causation_id=f"{self._class.name}:{record.correlation}:deadline",
            saga=self._class.name,
        ):
            time_out(saga, self._dispatch)

    def _stall_on_deadline(self, failed: _InstanceFailed) -> None:
        problem = Problem.of(failed.error, None, self._now())
        with self._storage.unit() as unit:
            unit.generations(self._checkpoint)
            record = unit.saga(self._class.name, failed.correlation)
            if record is None or record.status != "running":
                return
            stalled = stall(record, problem, None)
            unit.save_saga(stalled, problem.at)
        self._stalled(stalled, failed.error)

    # -- stalled instances --------------------------------------------------------------

    def parse_correlation(self, text: str) -> CorrT:
        """The correlation value written as `text` (as stored and listed); `DecodeError`
        if it is not one of the saga's correlation type."""
        value = decode_id(self._class.correlation_type, text)
        self._stored_correlation(value)
        return cast("CorrT", value)

    def retry(self, correlation: CorrT) -> SagaInstance:
        """Handle a stalled instance's failed event (or deadline) and its parked events
        again, in order, in one transaction, after its code was fixed. On success it goes
        on (running, completed, ...); on a new error it stays stalled with that error,
        attempts counted, and nothing of the retry kept.

        `SagaInstanceNotFound` if there is no such instance; `SagaError` if it is not
        stalled.
        """
        key = self._key(correlation)
        try:
            with self._storage.unit() as unit:
                unit.generations(self._checkpoint)  # one runner of the saga at a time
                record = unit.saga(self._class.name, key)
                if record is None:
                    raise SagaInstanceNotFound(f"{self._class.name} has no instance {key!r}")
                if record.status != "stalled":
                    raise _NotStalled(
                        f"{self._class.name} {key} is {record.status}: only a stalled "
                        "instance can be retried"
                    )
                saved = self._handle_again(unit, record)
        except _InstanceFailed as failed:
            return self._still_stalled(failed)
        logger.info("%s %s retried: %s", self._class.name, key, saved.status)
        return instance_of(saved)

    def retry_stalled(self) -> list[SagaInstance]:
        """Retry every stalled instance, the one whose error is oldest first (the time it
        stalled, or its last failed retry: `problem.at`); what became of each."""
        with self._storage.unit() as unit:
            stalled = unit.sagas_with_status(self._class.name, "stalled")
        # Not the listing's order: parking an event bumps an instance's last update.
        stalled.sort(key=_stalled_at)
        results = []
        for record in stalled:
            try:
                results.append(self.retry(self.parse_correlation(record.correlation)))
            except (SagaInstanceNotFound, _NotStalled):
                continue  # retried elsewhere meanwhile
        return results

    def _handle_again(self, unit: ProgressUnit, record: SagaRecord) -> SagaRecord:
        """Handle the instance's failed event (or deadline) and its parked events as a
        runner without the bug would have: the failed event first (the runner reached it
        before the deadline ran, or it would not have failed on it), and the deadline, if
        it passed meanwhile, before the first parked event recorded at or after it (a
        runner that keeps up runs a deadline as it passes), or at the end."""
        on_deadline, positions, _ = resume_point(record)
        deadline = None if record.deadline is None else datetime.fromisoformat(record.deadline)
        current: RecordedEvent | None = None
        try:
            saga = self._restore(record)
            saga.status = "running"  # as it was when it stalled
            if on_deadline:
                self._time_out(saga, record)
            ended_by: RecordedEvent | None = None  # None when ended: by its deadline
            for index, position in enumerate(positions):
                if saga.status != "running":
                    break  # ended: its later events are ignored, as they would have been
                current = self._event_at(position)
                parked = on_deadline or index > 0
                if parked and deadline is not None and current.recorded_at >= deadline:
                    current = None
                    self._time_out(saga, record)
                    break
                event = self._registry.decode_recorded(current, self._store.keyring)
                with command_context(caused_by=current, saga=self._class.name):
                    react(saga, event, self._dispatch)
                if saga.status != "running":
                    ended_by = current
                current = None
            if saga.status == "running" and deadline is not None and deadline <= self._now():
                self._time_out(saga, record)
            return self._save(unit, record, saga, ended_by, unstall=True)
        except _STORE_ERRORS:
            raise
        except Exception as exc:
            raise _InstanceFailed(exc, record.correlation, current) from exc

    def _event_at(self, position: int) -> RecordedEvent:
        found = self._store.read_all(after=position - 1, limit=1)
        if not found or found[0].position != position:
            raise SagaError(f"{self._class.name}: no event at position {position} to retry")
        return found[0]

    def _still_stalled(self, failed: _InstanceFailed) -> SagaInstance:
        """Keep the retry's error (attempts + 1) on the instance, in a transaction of its
        own: the retry's one rolled back."""
        with self._storage.unit() as unit:
            unit.generations(self._checkpoint)
            record = unit.saga(self._class.name, failed.correlation)
            if record is None or record.status != "stalled":  # retried elsewhere meanwhile
                if record is None:
                    raise SagaInstanceNotFound(
                        f"{self._class.name} has no instance {failed.correlation!r}"
                    )
                return instance_of(record)
            _, _, attempts = resume_point(record)
            problem = Problem.of(failed.error, failed.recorded, self._now(), attempts + 1)
            record = restall(record, problem)
            unit.save_saga(record, problem.at)
        logger.warning("%s %s still stalled: %s", record.saga, record.correlation,
                       problem.describe(), exc_info=failed.error,
                       extra=STALL_LOG)  # fmt: skip
        return instance_of(record)

    # -- what operators see ---------------------------------------------------------------

    def status(self) -> SagaRunnerStatus:
        """Where the runner is, how long ago the oldest event it has not handled was
        recorded, its instances by status, and the error that last stopped it."""
        with self._storage.look() as unit:  # at once, even while a page is handled
            generations = unit.generations(self._checkpoint)
            position = generations[1][0] if generations else self._start
            counts = unit.saga_counts(self._class.name)
            problem = unit.problem(self._checkpoint)
            first = self._store.read_all(after=position, limit=1)
        head = self._store.head_position()
        lag = 0.0
        if first:
            lag = max(0.0, (self._now() - first[0].recorded_at).total_seconds())
        return SagaRunnerStatus(
            name=self._class.name,
            position=position,
            head=max(head, position),
            lag_seconds=lag,
            counts={**dict.fromkeys(_STATUSES, 0), **counts},
            problem=None if problem is None else Problem.loads(problem),
        )

    def instances(self, status: SagaStatus, *, limit: int | None = None) -> list[SagaInstance]:
        """The stored instances with that status, the most recently updated first."""
        _check_limit(limit)
        if status not in _STATUSES:
            raise ValueError(
                f"{status!r} is not a saga status (expected one of: {', '.join(_STATUSES)})"
            )
        with self._storage.look() as unit:
            records = unit.sagas_with_status(self._class.name, status, limit)
        return [instance_of(record) for record in records]

    # -- persistence ------------------------------------------------------------------

    def _restore(self, record: SagaRecord) -> SagaT:
        saga = self._class(decode_id(self._class.correlation_type, record.correlation))
        if record.state is not None:
            saga.state_or_none = self._read_state(record.state)
        saga.status = cast(SagaStatus, record.status)
        saga.reason = metadata_of(record).get("reason")
        steps = json.loads(record.steps)
        saga.steps = [self._command(kind, data) for kind, data in steps["sent"]]
        saga.compensated = [self._command(kind, data) for kind, data in steps["compensated"]]
        return saga

    def _command(self, kind: str, data: str) -> Command:
        return self._steps.read(kind, data)

    def _save(
        self,
        unit: ProgressUnit,
        record: SagaRecord,
        saga: Saga[Any, Any],
        ended_by: RecordedEvent | None,
        *,
        unstall: bool = False,
    ) -> SagaRecord:
        """Store the instance as the saga left it; if it ended, what ended it: the event
        `ended_by`, or with None its deadline."""
        now = self._now()  # UTC: listings order by this text
        state = saga.state_or_none
        metadata = metadata_of(record)
        if unstall:
            metadata = unstalled_metadata(metadata)
        metadata["reason"] = saga.reason
        if saga.status != "running" and "ended" not in metadata:
            metadata["ended"] = (
                ended_by_deadline(now) if ended_by is None else ended_by_event(ended_by, now)
            )
        saved = SagaRecord(
            record.saga,
            record.correlation,
            saga.status,
            None if state is None else self._state_text(state, record.saga),
            saga_steps(saga.steps, saga.compensated, self._steps.writer(state)),
            json.dumps(metadata, separators=(",", ":")),
            record.started_at,
            record.deadline,
        )
        unit.save_saga(saved, now)
        return saved

    def _state_text(self, state: BaseModel, saga: str) -> str:
        """The state as stored: its personal values sealed, if it has any."""
        what = f"the state of saga {saga}"
        text = dump_json(state, what)
        if self._state_personal is None:
            return text
        data = json.loads(text)
        # The subject is the state's `data_subject` field (checked when the runner was
        # made); one forgotten keeps the placeholders, and the saga goes on.
        data = seal_derived(self._store.keyring, self._state_personal, data, None, what)
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))

    def instance(self, correlation: CorrT) -> SagaT | None:
        """The stored instance for a correlation value, to inspect its state and status."""
        key = self._key(correlation)
        with self._storage.unit() as unit:
            record = unit.saga(self._class.name, key)
        return None if record is None else self._restore(record)

    def _key(self, correlation: CorrT) -> str:
        saga = self._class
        check_id(saga.correlation_type, correlation, saga.__qualname__, "correlations")
        return self._stored_correlation(correlation)

    def _stored_correlation(self, value: AnyId) -> str:
        # Stored as text, in the one form per id type (str(UUID) for a uuid, as always),
        # checked before the store sees it: SQLite takes NUL that PostgreSQL refuses, and a
        # lone surrogate would fail either driver with a bare UnicodeEncodeError.
        correlation = encode_id(value)
        check_key(correlation, f"the correlation of saga {self._class.name}")
        return correlation


def _state_sealing(
    saga: type[Saga[Any, Any]], store: EventStore
) -> tuple[PersonalFields | None, Callable[[str], Any]]:
    """The personal fields of the saga's state (None without any), and how a stored
    state is read: its envelope opened with the store's keyring, so a forgotten subject's
    fields read as their placeholders. A state with personal fields names its subject
    (`data_subject`): a saga follows several aggregates, so no id is the obvious one."""
    state_type = saga.state_type
    personal = personal_fields(state_type)
    if personal is not None and personal.subject is None:
        raise AggregateDefinitionError(
            f"saga {saga.name}: its state {state_type.__name__} has personal fields "
            f"({', '.join(personal.paths)}) but names no data subject: set "
            "`data_subject: ClassVar[str]` to the field that identifies the person"
        )
    return personal, model_opener(state_type, store.keyring)


def _check_limit(limit: object) -> None:
    """Refuse a listing's `limit` that is not a non-negative int or None, before any store
    sees it (each would take another one its own way, or fail with a driver's error)."""
    if limit is None or (isinstance(limit, int) and not isinstance(limit, bool) and limit >= 0):
        return
    raise ValueError(f"limit must be a non-negative int or None (got {limit!r})")


def _stalled_at(record: SagaRecord) -> tuple[datetime, str]:
    instance = instance_of(record)
    at = instance.started_at if instance.problem is None else instance.problem.at
    return at, record.correlation
