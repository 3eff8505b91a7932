"""The inspection part of the contract: what `esgen inspect` asks a store (streams,
lookups by correlation, causation and event id, the position at a moment), answered the
same by every backend, whether from indexes or by scanning."""

from __future__ import annotations

import json
import uuid
import zoneinfo
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from esgen.runtime import EventStore, NewEvent, RecordedEvent, StreamAppend
from esgen.runtime.testing._clock import ManualClock
from esgen.runtime.testing._fixtures import StoreFixtures

__all__ = ["InspectionContract"]

_START = datetime(2024, 1, 1, tzinfo=UTC)  # ManualClock's first time: one second per append

# Ids as users and attackers write them: quotes, SQL, JSON and LIKE syntax, non-ASCII,
# control characters, NUL (storable in metadata), and text that looks like an escape.
_ODD_IDS = (
    'it\'s "quoted"',
    "x' OR '1'='1",
    '{"correlation_id": "c"}',
    "50%_off\\",
    "über-\U0001f600-\u200b",
    "line\nbreak\ttab\x7f",
    "nul\x00inside",
    "\\u0000 looks escaped",
    "\\\x00",
    "\ufffd",
)


def _event(**metadata: Any) -> NewEvent:
    return NewEvent("Thing", 1, "{}", metadata)


def _positions(events: list[RecordedEvent]) -> list[int]:
    return [e.position for e in events]


class InspectionContract(StoreFixtures):
    # -- correlation and causation -------------------------------------------------------

    def test_events_of_a_correlation_in_global_order(self, store: EventStore) -> None:
        store.append("a-1", [_event(correlation_id="c1", causation_id="k1")], 0)
        store.append("b-1", [_event(correlation_id="c2", causation_id="k2")], 0)
        store.append(
            "a-1",
            [_event(correlation_id="c1", causation_id="k3")] * 2,
            1,
        )
        store.append("c-1", [_event(correlation_id="c1", causation_id="k1")], 0)
        assert _positions(store.read_correlation("c1")) == [1, 3, 4, 5]
        assert _positions(store.read_correlation("c2")) == [2]
        assert _positions(store.read_causation("k1")) == [1, 5]
        assert _positions(store.read_causation("k3")) == [3, 4]
        found = store.read_correlation("c1")[1]
        assert (found.stream_id, found.stream_version, found.causation_id) == ("a-1", 2, "k3")

    def test_ids_not_present_find_nothing(self, store: EventStore) -> None:
        assert store.read_correlation("c1") == []
        store.append("a-1", [_event(correlation_id="c1", causation_id="k1"), _event()], 0)
        for absent in ("c", "c1 ", "C1", "", "k1", "%", "c_"):
            assert store.read_correlation(absent) == []
        assert store.read_causation("c1") == []
        assert store.read_causation("\ud800") == []  # a lone surrogate: nothing can hold it

    @pytest.mark.parametrize("odd", _ODD_IDS)
    def test_odd_ids_are_found_exactly(self, store: EventStore, odd: str) -> None:
        store.append("s", [_event(correlation_id=odd, causation_id=odd, other="\x00")], 0)
        store.append("s", [_event(correlation_id=odd + "x", note="plain")], 1)
        store.append("s", [_event(correlation_id="plain", causation_id=odd[:-1] or "y")], 2)
        assert _positions(store.read_correlation(odd)) == [1]
        assert _positions(store.read_causation(odd)) == [1]
        assert store.read_correlation(odd).pop().metadata["other"] == "\x00"

    def test_only_string_ids_match(self, store: EventStore) -> None:
        store.append(
            "s",
            [
                _event(correlation_id=5),
                _event(correlation_id={"id": "c"}),
                _event(correlation_id=["c"]),
                _event(correlation_id=None),
                _event(correlation_id="5"),
                _event(nested={"correlation_id": "c"}),
            ],
            0,
        )
        assert _positions(store.read_correlation("5")) == [5]
        for text in ('{"id":"c"}', '{"id": "c"}', '["c"]', "c", "null", "None"):
            assert store.read_correlation(text) == []

    # -- events by id --------------------------------------------------------------------

    def test_an_event_is_found_by_its_id(self, store: EventStore) -> None:
        ids = [uuid.uuid4() for _ in range(3)]
        store.append("a-1", [NewEvent("Thing", 1, '{"n": 1}', event_id=ids[0])], 0)
        store.append(
            "b-1", [NewEvent("Thing", 1, '{"n": 2}', {"k": "v"}, event_id=i) for i in ids[1:]], 0
        )
        found = store.find_event(str(ids[2]))
        assert found is not None
        assert (found.position, found.stream_id, found.stream_version) == (3, "b-1", 2)
        assert (found.data, dict(found.metadata), found.event_id) == (
            '{"n": 2}',
            {"k": "v"},
            ids[2],
        )
        first = store.find_event(str(ids[0]))
        assert first is not None and first.position == 1

    def test_ids_of_no_event_find_none(self, store: EventStore) -> None:
        known = uuid.uuid4()
        store.append("a-1", [NewEvent("Thing", 1, "{}", event_id=known)], 0)
        assert store.find_event(str(uuid.uuid4())) is None
        # The text form the store gives is the only one: no other spelling, no fragments.
        for other in (
            str(known).upper(),
            known.hex,
            f"{{{known}}}",
            str(known)[:-1],
            "",
            "x' OR '1'='1",
            "nul\x00",
            "\ud800",
        ):
            assert store.find_event(other) is None

    # -- streams -------------------------------------------------------------------------

    def test_streams_by_id_with_versions_and_times(
        self, store: EventStore, clock: ManualClock
    ) -> None:
        assert list(store.streams()) == []
        # Ids whose order is the same in code points and in common collations.
        store.append("Transfer-1", [_event()], 0)  # at _START
        store.append("Account-2", [_event(), _event()], 0)  # +1 s
        store.append("Account-1", [_event()], 0)  # +2 s
        store.append_streams(
            [StreamAppend("Account-2", [_event()], 2), StreamAppend("Accountant-1", [_event()], 0)]
        )  # +3 s
        clock.advance(timedelta(hours=1))
        store.append("Transfer-1", [_event()] * 3, 1)  # +1 h 4 s
        summaries = list(store.streams())
        assert [(s.stream_id, s.version) for s in summaries] == [
            ("Account-1", 1),
            ("Account-2", 3),
            ("Accountant-1", 1),
            ("Transfer-1", 4),
        ]
        times = {s.stream_id: (s.first_recorded_at, s.last_recorded_at) for s in summaries}
        later = _START + timedelta(hours=1, seconds=4)
        assert times == {
            "Account-1": (_START + timedelta(seconds=2), _START + timedelta(seconds=2)),
            "Account-2": (_START + timedelta(seconds=1), _START + timedelta(seconds=3)),
            "Accountant-1": (_START + timedelta(seconds=3), _START + timedelta(seconds=3)),
            "Transfer-1": (_START, later),
        }
        assert all(s.last_recorded_at.utcoffset() == timedelta(0) for s in summaries)

    def test_streams_with_a_prefix(self, store: EventStore) -> None:
        for stream_id in ("Account-1", "Account-2", "Accountant-1", "Acc", "B-1", "über-1"):
            store.append(stream_id, [_event()], 0)
        assert [s.stream_id for s in store.streams("Account-")] == ["Account-1", "Account-2"]
        assert [s.stream_id for s in store.streams("Account")] == [
            "Account-1",
            "Account-2",
            "Accountant-1",
        ]
        assert next(s.stream_id for s in store.streams("Acc")) == "Acc"
        assert [s.stream_id for s in store.streams("über")] == ["über-1"]
        assert [s.stream_id for s in store.streams("B-1")] == ["B-1"]
        for none in ("C", "Account-3", "account", "%", "_", "\ud800", "B-1-"):
            assert list(store.streams(none)) == []
        assert len(list(store.streams())) == 6

    def test_streams_run_past_a_page(self, store: EventStore) -> None:
        count = 1234  # more than a page of every SQL backend
        appends = [StreamAppend(f"s-{n:05d}", [_event()], 0) for n in range(count)]
        store.append_streams(appends)
        store.append("s-00007", [_event(), _event()], 1)
        summaries = list(store.streams("s-"))
        assert [s.stream_id for s in summaries] == [a.stream_id for a in appends]
        assert summaries[7].version == 3
        assert {s.version for s in summaries[:7] + summaries[8:]} == {1}
        assert len(list(store.streams("s-001"))) == 100

    # -- the position at a moment --------------------------------------------------------

    def test_position_at_an_empty_store_is_zero(self, store: EventStore) -> None:
        assert store.position_at(_START) == 0
        assert store.position_at(datetime(9999, 1, 1, tzinfo=UTC)) == 0

    def test_position_at_a_moment(self, store: EventStore, clock: ManualClock) -> None:
        for n in range(1, 8):  # event n (position n) at _START + (n - 1) s
            store.append(f"s-{n % 3}", [_event()], store.stream_version(f"s-{n % 3}"))
        store.append("t", [_event(), _event()], 0)  # positions 8 and 9 share +7 s

        def at(seconds: float) -> datetime:
            return _START + timedelta(seconds=seconds)

        assert store.position_at(at(-1)) == 0
        assert store.position_at(_START - timedelta(microseconds=1)) == 0
        assert store.position_at(at(0)) == 1
        assert store.position_at(at(0.5)) == 1
        assert store.position_at(at(3)) == 4
        assert store.position_at(at(4) - timedelta(microseconds=1)) == 4
        assert store.position_at(at(7)) == 9
        assert store.position_at(at(7) - timedelta(microseconds=1)) == 7
        assert store.position_at(at(3600)) == 9
        # Any time zone: the same moment.
        paris = at(3).astimezone(zoneinfo.ZoneInfo("Europe/Paris"))
        assert store.position_at(paris) == 4

    def test_position_at_follows_own_recorded_times(self, store: EventStore) -> None:
        moments = [_START + timedelta(days=d) for d in (0, 0, 1, 5, 5, 5, 30)]
        for n, moment in enumerate(moments):
            store.append(f"s-{n}", [NewEvent("Thing", 1, "{}", recorded_at=moment)], 0)
        for probe, expected in (
            (_START - timedelta(days=1), 0),
            (_START, 2),
            (_START + timedelta(days=2), 3),
            (_START + timedelta(days=5), 6),
            (_START + timedelta(days=29), 6),
            (_START + timedelta(days=30), 7),
            (_START + timedelta(days=31), 7),
        ):
            assert store.position_at(probe) == expected, probe

    def test_position_at_refuses_a_naive_time(self, store: EventStore) -> None:
        with pytest.raises((ValueError, TypeError)):
            store.position_at(datetime(2024, 1, 1))

    def test_lookups_agree_with_a_scan(self, store: EventStore) -> None:
        for n in range(40):
            metadata = {"correlation_id": f"c{n % 4}", "causation_id": f"k{n % 7}"}
            store.append(f"s-{n % 5}", [_event(**metadata)], store.stream_version(f"s-{n % 5}"))
        every = list(store.iter_all())
        for n in range(4):
            expected = [e.position for e in every if e.correlation_id == f"c{n}"]
            assert _positions(store.read_correlation(f"c{n}")) == expected
        for n in range(7):
            expected = [e.position for e in every if e.causation_id == f"k{n}"]
            assert _positions(store.read_causation(f"k{n}")) == expected
        for recorded in every[::9]:
            found = store.find_event(recorded.event_id_text)
            assert found is not None
            assert (found.position, json.loads(found.data)) == (recorded.position, {})
