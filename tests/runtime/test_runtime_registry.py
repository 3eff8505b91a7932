"""The event registry: registration rules, completeness check, decoding and upcast chains."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import create_model

from esgen.runtime import (
    DecodeError,
    Event,
    EventRegistry,
    RecordedEvent,
    RegistryError,
    UnknownEventType,
    UpcastError,
)


class OpenedV1(Event):
    event_type = "Opened"
    event_version = 1
    owner: str


class OpenedV2(Event):
    event_type = "Opened"
    event_version = 2
    owner: str
    currency: str


class Opened(Event):
    event_type = "Opened"
    event_version = 3
    holder: str
    currency: str


def v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "currency": "EUR"}


def v2_to_v3(data: dict[str, Any]) -> dict[str, Any]:
    data = dict(data)
    return {"holder": data.pop("owner"), **data}


@pytest.fixture
def registry() -> EventRegistry:
    registry = EventRegistry([OpenedV1, OpenedV2, Opened])
    registry.register_upcaster("Opened", 1, v1_to_v2)
    registry.register_upcaster("Opened", 2, v2_to_v3)
    return registry


def _recorded(event_type: str, version: int, data: str) -> RecordedEvent:
    return RecordedEvent(
        7, "acc-1", 3, event_type, version, data, "0" * 32, "{}", "2024-01-01T00:00:00+00:00"
    )


def test_every_stored_version_decodes_to_the_latest_class(registry: EventRegistry) -> None:
    expected = Opened(holder="ann", currency="EUR")
    assert registry.decode("Opened", 1, '{"owner":"ann"}') == expected
    assert registry.decode("Opened", 2, '{"owner":"ann","currency":"EUR"}') == expected
    assert registry.decode("Opened", 3, b'{"holder":"ann","currency":"EUR"}') == expected
    assert registry.latest("Opened") is Opened
    assert registry.is_latest(Opened) and not registry.is_latest(OpenedV2)
    registry.check()


def test_decoders_are_built_once_per_type_and_version(registry: EventRegistry) -> None:
    registry.decode("Opened", 1, '{"owner":"ann"}')
    first = registry._decoders[("Opened", 1)]
    registry.decode("Opened", 1, '{"owner":"bob"}')
    assert registry._decoders[("Opened", 1)] is first
    registry.register(OpenedV1)  # registering again is a no-op ...
    registry.register_upcaster("Opened", 1, v1_to_v2)
    assert registry.decode("Opened", 1, '{"owner":"ann"}').holder == "ann"  # type: ignore[attr-defined]


def test_a_missing_step_names_the_type_and_the_versions() -> None:
    registry = EventRegistry([OpenedV1, OpenedV2, Opened])
    registry.register_upcaster("Opened", 1, v1_to_v2)
    with pytest.raises(
        UpcastError, match=r"'Opened' from version 1 to 3: no upcaster from version 2 to 3"
    ):
        registry.decode("Opened", 1, '{"owner":"ann"}')
    assert registry.decode("Opened", 3, '{"holder":"a","currency":"EUR"}').currency == "EUR"  # type: ignore[attr-defined]
    with pytest.raises(RegistryError, match="'Opened': no upcaster from version 2 to 3"):
        registry.check()


def test_check_lists_every_gap_and_stray_upcaster() -> None:
    registry = EventRegistry([Opened])
    registry.register_upcaster("Opened", 3, v1_to_v2)
    registry.register_upcaster("Closed", 1, v1_to_v2)
    with pytest.raises(RegistryError) as caught:
        registry.check()
    message = str(caught.value)
    assert "'Opened': no upcaster from version 1 to 2" in message
    assert "'Opened': no upcaster from version 2 to 3" in message
    assert "upcaster from version 3 to 4, but the latest registered version is 3" in message
    assert "'Closed': upcasters registered but no event class" in message


def test_a_version_newer_than_the_code_is_refused(registry: EventRegistry) -> None:
    with pytest.raises(UpcastError, match="stored at version 4, newer than the latest"):
        registry.decode("Opened", 4, "{}")


def test_an_unknown_type_is_refused(registry: EventRegistry) -> None:
    with pytest.raises(UnknownEventType, match="'Closed'") as caught:
        registry.decode("Closed", 1, "{}")
    assert isinstance(caught.value, LookupError) and isinstance(caught.value, DecodeError)
    with pytest.raises(UnknownEventType):
        registry.latest("Closed")
    assert "Closed" not in registry and "Opened" in registry
    assert registry.event_types == {"Opened"}


def test_invalid_stored_data_is_a_decode_error(registry: EventRegistry) -> None:
    with pytest.raises(DecodeError, match="does not validate as Opened"):
        registry.decode("Opened", 3, '{"holder":"ann"}')
    with pytest.raises(DecodeError) as caught:
        registry.decode_all(
            [
                _recorded("Opened", 3, '{"holder":"a","currency":"E"}'),
                _recorded("Opened", 3, "not json"),
            ]
        )
    assert "stream 'acc-1'" in "".join(caught.value.__notes__)
    with pytest.raises(DecodeError) as caught:
        registry.decode_recorded(_recorded("Opened", 3, "{}"))
    assert "global position 7" in "".join(caught.value.__notes__)
    with pytest.raises(DecodeError):
        registry.decoder("Opened", 3)("{}")


def test_invalid_json_of_an_old_version_is_a_decode_error(registry: EventRegistry) -> None:
    with pytest.raises(DecodeError, match="'Opened' version 1 is not valid JSON"):
        registry.decode("Opened", 1, "{not json")


def test_upcast_failures_are_upcast_errors() -> None:
    def broken(data: dict[str, Any]) -> dict[str, Any]:
        raise KeyError("owner")

    def not_a_dict(data: dict[str, Any]) -> dict[str, Any]:
        return [data]  # type: ignore[return-value]

    for step, message in [
        (broken, "failed in the step from version 1 to 2 .*broken.*KeyError"),
        (not_a_dict, "must return a mapping"),
        (lambda data: data, "upcast from version 1 to 2 does not validate as OpenedV2"),
    ]:
        registry = EventRegistry([OpenedV1, OpenedV2])
        registry.register_upcaster("Opened", 1, step)
        with pytest.raises(UpcastError, match=message):
            registry.decode("Opened", 1, '{"owner":"ann"}')


def test_upcasting_never_changes_the_stored_event(registry: EventRegistry) -> None:
    recorded = _recorded("Opened", 1, '{"owner":"ann"}')
    registry.decode_recorded(recorded)
    assert (recorded.event_version, recorded.data) == (1, '{"owner":"ann"}')


def test_upcaster_decorator(registry: EventRegistry) -> None:
    fresh = EventRegistry([OpenedV1, OpenedV2])

    @fresh.upcaster("Opened", 1)
    def add_currency(data: dict[str, Any]) -> dict[str, Any]:
        return {**data, "currency": "SEK"}

    assert fresh.decode("Opened", 1, '{"owner":"x"}') == OpenedV2(owner="x", currency="SEK")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda r: r.register(int), "only Event subclasses"),
        (lambda r: r.register(type("NoType", (Event,), {"event_version": 1})), "event_type"),
        (lambda r: r.register(type("NoVersion", (Event,), {"event_type": "X"})), "event_version"),
        (
            lambda r: r.register(type("Zero", (Event,), {"event_type": "X", "event_version": 0})),
            "event_version",
        ),
        (
            lambda r: r.register(
                type("Twin", (Event,), {"event_type": "Opened", "event_version": 1})
            ),
            "already registered as",
        ),
        (lambda r: r.register_upcaster("Opened", 1, v2_to_v3), "already has a step"),
        (lambda r: r.register_same_payload("Opened", 1), "already has a step .*v1_to_v2"),
        (lambda r: r.register_same_payload("Opened", 0), "from_version"),
        (lambda r: r.register_upcaster("Opened", 0, v2_to_v3), "from_version"),
        (lambda r: r.register_upcaster("Opened", 5, "nope"), "callable"),
    ],
)
def test_conflicting_registrations_are_refused(
    registry: EventRegistry, make: Any, message: str
) -> None:
    with pytest.raises(RegistryError, match=message):
        make(registry)


# -- upcast chains of any length ---------------------------------------------------------


def _version_class(k: int) -> type[Event]:
    """Version k of 'Grown' has fields f1..fk; each upcaster adds the next field."""
    fields: dict[str, Any] = {f"f{i}": (int, ...) for i in range(1, k + 1)}
    cls = create_model(f"GrownV{k}", __base__=Event, **fields)
    cls.event_type = "Grown"  # type: ignore[attr-defined]
    cls.event_version = k  # type: ignore[attr-defined]
    return cls


def _add_field(k: int) -> Any:
    def step(data: dict[str, Any]) -> dict[str, Any]:
        return {**data, f"f{k + 1}": data[f"f{k}"] * 2 + 1}

    return step


@settings(max_examples=60, deadline=None)
@given(
    length=st.integers(min_value=1, max_value=12),
    data=st.data(),
)
def test_random_upcast_chains(length: int, data: st.DataObject) -> None:
    classes = [_version_class(k) for k in range(1, length + 1)]
    registry = EventRegistry(data.draw(st.permutations(classes)))
    for k in data.draw(st.permutations(range(1, length))):
        registry.register_upcaster("Grown", k, _add_field(k))
    registry.check()
    stored = data.draw(st.integers(min_value=1, max_value=length))
    seed = data.draw(st.integers(min_value=-1000, max_value=1000))
    payload = {f"f{i}": seed for i in range(1, stored + 1)}
    event = registry.decode("Grown", stored, json.dumps(payload))
    assert type(event) is classes[-1]
    expected = dict(payload)
    for k in range(stored, length):
        expected[f"f{k + 1}"] = expected[f"f{k}"] * 2 + 1
    assert event.model_dump() == expected


@settings(max_examples=60, deadline=None)
@given(
    length=st.integers(min_value=2, max_value=10),
    data=st.data(),
)
def test_random_chains_with_a_missing_step_never_decode(length: int, data: st.DataObject) -> None:
    registry = EventRegistry([_version_class(k) for k in range(1, length + 1)])
    missing = data.draw(st.integers(min_value=1, max_value=length - 1))
    for k in range(1, length):
        if k != missing:
            registry.register_upcaster("Grown", k, _add_field(k))
    stored = data.draw(st.integers(min_value=1, max_value=length))
    payload = json.dumps({f"f{i}": 1 for i in range(1, stored + 1)})
    if stored <= missing:
        with pytest.raises(
            UpcastError, match=f"no upcaster from version {missing} to {missing + 1}"
        ):
            registry.decode("Grown", stored, payload)
    else:
        assert type(registry.decode("Grown", stored, payload)).__name__ == f"GrownV{length}"


class _Marker(Event):
    event_type: ClassVar[str] = "Marker"
    event_version: ClassVar[int] = 1


def test_classvar_annotations_are_accepted_too() -> None:
    assert EventRegistry([_Marker]).decode("Marker", 1, "{}") == _Marker()


# -- steps that read old data as it is, and typed upcasters ------------------------------


class Level(Event):
    event_type = "Level"
    event_version = 3
    value: float | None
    label: str


class LevelV2(Event):
    event_type = "Level"
    event_version = 2
    value: float
    label: str


class LevelV1(Event):
    event_type = "Level"
    event_version = 1
    value: int


def test_a_chain_of_widenings_decodes_the_stored_text_directly() -> None:
    registry = EventRegistry([LevelV1, LevelV2, Level])
    registry.register_same_payload("Level", 2)
    registry.register_upcaster("Level", 1, lambda data: {**data, "label": "old"})
    registry.check()
    assert registry.decode("Level", 2, '{"value": 3, "label": "x"}') == Level(value=3.0, label="x")
    # Only widenings from version 2 on: pydantic's JSON validator reads the stored text,
    # as for the latest version, with no json.loads and no dict built per event...
    assert registry.decode("Level", 1, '{"value": 3}') == Level(value=3.0, label="old")
    with pytest.raises(DecodeError, match="'Level' version 2 does not validate as Level"):
        registry.decode("Level", 2, '{"value": "high", "label": "x"}')
    # ... and where it is stricter than the Python validator (pydantic 2.11 refuses, in
    # JSON only, an int beyond 2**53 for a float), the data reads as a dict copy read it.
    big = 10**18
    stored = f'{{"value": {big}, "label": "x"}}'
    assert registry.decode("Level", 2, stored) == Level(value=float(big), label="x")


def test_a_same_payload_step_may_be_declared_twice_and_fills_a_gap() -> None:
    registry = EventRegistry([LevelV1, LevelV2, Level])
    registry.register_same_payload("Level", 2)
    registry.register_same_payload("Level", 2)
    with pytest.raises(RegistryError, match="'Level': no upcaster from version 1 to 2"):
        registry.check()
    with pytest.raises(RegistryError, match="read as the next version unchanged"):
        registry.register_upcaster("Level", 2, lambda data: data)


def test_an_upcaster_may_return_any_mapping() -> None:
    registry = EventRegistry([LevelV1, LevelV2])
    registry.register_upcaster(
        "Level", 1, lambda data: MappingProxyType({**data, "label": "proxy"})
    )
    assert registry.decode("Level", 1, '{"value": 1}') == LevelV2(value=1.0, label="proxy")


_TYPED_REGISTRATIONS = """
from typing import Literal, NotRequired, TypedDict

from esgen.runtime import EventRegistry, Upcaster


class V1Payload(TypedDict):
    value: int


class V2Payload(TypedDict):
    value: float
    label: NotRequired[Literal["a", "b"]]


def v1_to_v2(data: V1Payload) -> V2Payload:
    return {"value": data["value"], "label": "a"}


REGISTRY = EventRegistry()
REGISTRY.register_upcaster("Level", 1, v1_to_v2)
step: Upcaster[V1Payload, V2Payload] = v1_to_v2


@REGISTRY.upcaster("Level", 2)
def v2_to_v3(data: V2Payload) -> dict[str, object]:
    return {**data, "more": 1}


reveal_type(v2_to_v3)
"""


def _mypy(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    module = tmp_path / "typed.py"
    module.write_text(code)
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache"),
         str(module)],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip


def test_upcasters_typed_by_their_payloads_register_without_casts(tmp_path: Path) -> None:
    result = _mypy(_TYPED_REGISTRATIONS, tmp_path)
    # The decorator hands the function back with its own type.
    assert "Success: no issues found" in result.stdout, result.stdout
    # The decorator hands the function back with its own type, not a wider one.
    assert "'label'?: Literal['a'] | Literal['b']})) -> dict[str, object]\"" in result.stdout
    wrong = _TYPED_REGISTRATIONS + "\nREGISTRY.register_upcaster('Level', 3, len)\n"
    assert "error:" in _mypy(wrong, tmp_path).stdout
