"""The event registry: which class each stored (type, version) becomes, through which upcasters.

Generated code fills one registry with every version class of every event type, one step
per (type, from version), and the former names of renamed event types: a stored event keeps
the type name it was written under, so a renamed type reads its old name's events too, with
the same version numbers and upcasters. A step is an upcaster (a function from the stored
JSON data of version k to that of version k + 1, typed by the payloads it maps), or a
declaration that version k's data already is valid data of version k + 1 (a widening), which
costs nothing on read. Reading then costs one dict lookup per event: the decoder for each
stored (type, version) is built once, on first use, and kept until the registry changes.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar, cast

from pydantic import ValidationError

from esgen.runtime._errors import (
    DecodeError,
    EventStoreError,
    RegistryError,
    UnknownEventType,
    UpcastError,
)
from esgen.runtime._messages import Event
from esgen.runtime._personal import (
    ENVELOPE_KEY,
    ENVELOPE_TEXT,
    NoMasterKey,
    SubjectForgotten,
    no_master_key,
    open_text,
    personal_fields,
    without_values,
)
from esgen.runtime._records import RecordedEvent

if TYPE_CHECKING:
    from esgen.runtime._personal import Keyring, PersonalFields

__all__ = ["Decoder", "EventRegistry", "Upcaster", "upcast_events"]

EventT = TypeVar("EventT", bound=type[Event])
V = TypeVar("V")
_T = TypeVar("_T")
# The payloads an upcaster maps: TypedDicts in generated code (which are Mappings, not
# dicts, to a type checker), or plain dicts in hand-written registrations.
OldT = TypeVar("OldT", bound=Mapping[str, object])
NewT = TypeVar("NewT", bound=Mapping[str, object])

Upcaster: TypeAlias = Callable[[OldT], NewT]
"""Maps the JSON data of version k of an event type to the data of version k + 1, e.g.
`Upcaster[AccountOpenedV1Payload, AccountOpenedV2Payload]`."""

# How steps are kept: the registry cannot know the payload types, only that the data is
# a JSON object. None is a step whose old data reads as the new version unchanged.
_Step: TypeAlias = Callable[[dict[str, Any]], Mapping[str, object]]

OldEventT = TypeVar("OldEventT", bound=Event)
NewEventT = TypeVar("NewEventT", bound=Event)


def upcast_events(
    old: type[OldEventT], new: type[NewEventT], upcast: Callable[[OldEventT], NewEventT]
) -> Upcaster[Mapping[str, object], dict[str, object]]:
    """A step written on event classes rather than payloads: the stored data is read as
    `old`, `upcast` returns the `new` event, whose data the next step (or the latest
    class) reads. Hand-written upcasters take this form, so they work on typed, validated
    values (Decimal, UUID, datetime) and what they return is validated as they build it;
    passing both classes makes the type checker hold `upcast` to them."""

    def step(data: Mapping[str, object]) -> dict[str, object]:
        event = upcast(old.model_validate(data))
        if not isinstance(event, new):
            raise TypeError(
                f"the upcaster of {old.__qualname__} returned {type(event).__qualname__}, "
                f"not {new.__qualname__}"
            )
        return event.model_dump(mode="json", by_alias=True)

    step.__qualname__ = step.__name__ = getattr(upcast, "__name__", "upcast")
    return step


Decoder = Callable[[str | bytes], Event]
"""Turns the stored JSON text of one (type, version) into the latest class's event."""

# Events the runtime itself records: readable by every registry without being one of the
# application's types (they are not in `event_types`).
_BUILT_IN: Mapping[str, type[Event]] = {SubjectForgotten.event_type: SubjectForgotten}


class EventRegistry:
    """Every event class the application reads or writes, and the upcasters between versions."""

    def __init__(self, events: Iterable[type[Event]] = ()) -> None:
        self._classes: dict[str, dict[int, type[Event]]] = {}
        self._upcasters: dict[str, dict[int, _Step | None]] = {}
        self._latest: dict[str, type[Event]] = {}
        # Former type name -> the current one; stored rows keep the name they were written under.
        self._renamed: dict[str, str] = {}
        # Read by the repository's replay loop directly: (type, version) -> decoder.
        self._decoders: dict[tuple[str, int], Decoder] = {}
        # The same per store keyring: a decoder of a type with personal fields opens them
        # with one store's keys. Weak, so a closed store's keyring goes with it.
        self._keyed: weakref.WeakKeyDictionary[Keyring, dict[tuple[str, int], Decoder]] = (
            weakref.WeakKeyDictionary()
        )
        for cls in events:
            self.register(cls)

    # -- registration -------------------------------------------------------------------

    def register(self, cls: EventT) -> EventT:
        """Register one version class of an event type; usable as a class decorator."""
        if not (isinstance(cls, type) and issubclass(cls, Event)):
            raise RegistryError(f"only Event subclasses can be registered (got {cls!r})")
        event_type = getattr(cls, "event_type", None)
        version = getattr(cls, "event_version", None)
        if not isinstance(event_type, str) or not event_type:
            raise RegistryError(
                f"{cls.__qualname__} must set the class variable event_type to a non-empty str "
                f"(got {event_type!r})"
            )
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise RegistryError(
                f"{cls.__qualname__} must set the class variable event_version to an int >= 1 "
                f"(got {version!r})"
            )
        if event_type in self._renamed:
            raise RegistryError(
                f"cannot register {cls.__qualname__}: {event_type!r} is a former name of "
                f"{self._renamed[event_type]!r}, and its stored events are read as that type"
            )
        versions = self._classes.setdefault(event_type, {})
        existing = versions.get(version)
        if existing is cls:
            return cls
        if existing is not None:
            raise RegistryError(
                f"event type {event_type!r} version {version} is already registered as "
                f"{existing.__module__}.{existing.__qualname__}; cannot also register "
                f"{cls.__module__}.{cls.__qualname__}"
            )
        versions[version] = cls
        self._latest[event_type] = versions[max(versions)]
        self._clear_decoders()
        return cls

    def register_upcaster(
        self, event_type: str, from_version: int, upcaster: Upcaster[OldT, NewT]
    ) -> None:
        """Register the step from `from_version` to `from_version + 1` of `event_type`.

        `upcaster` gets the stored JSON object of the old version (or what the step before
        it returned) and returns the new version's; its payload types are its own business.
        """
        if not callable(upcaster):
            raise RegistryError(f"an upcaster must be callable (got {upcaster!r})")
        # Safe: every step is handed a dict decoded from JSON text, whatever it declares.
        self._register_step(event_type, from_version, cast(_Step, upcaster))

    def register_same_payload(self, event_type: str, from_version: int) -> None:
        """Read stored data of `from_version` as data of `from_version + 1`, as it is: for a
        step that only widens (int -> float, an enum with more values, T -> T | None), where
        every old payload already is a valid new one. No function runs, nor is data copied."""
        self._register_step(event_type, from_version, None)

    def _register_step(self, event_type: str, from_version: int, step: _Step | None) -> None:
        if not isinstance(from_version, int) or isinstance(from_version, bool) or from_version < 1:
            raise RegistryError(f"from_version must be an int >= 1 (got {from_version!r})")
        steps = self._upcasters.setdefault(event_type, {})
        if from_version in steps and steps[from_version] is not step:
            raise RegistryError(
                f"event type {event_type!r} already has a step from version {from_version} "
                f"to {from_version + 1} ({_step_name(steps[from_version])}); cannot also "
                f"register {_step_name(step)}"
            )
        steps[from_version] = step
        self._clear_decoders()

    def register_rename(self, old_type: str, event_type: str) -> None:
        """Read stored events of `old_type` as `event_type`: same version numbers, same
        upcasters. New events are always written under `event_type`.

        A type renamed twice registers each former name with the current one (A -> C and
        B -> C, not A -> B -> C), so every stored name is one lookup from its class.
        """
        for name, what in ((old_type, "the former type name"), (event_type, "the event type")):
            if not isinstance(name, str) or not name:
                raise RegistryError(f"{what} must be a non-empty str (got {name!r})")
        if old_type == event_type:
            raise RegistryError(f"event type {event_type!r} cannot be renamed from itself")
        if old_type in self._classes:
            raise RegistryError(
                f"cannot read {old_type!r} as {event_type!r}: {old_type!r} is itself a "
                "registered event type, and its stored events can be read as only one"
            )
        existing = self._renamed.get(old_type)
        if existing is not None and existing != event_type:
            raise RegistryError(
                f"{old_type!r} is already read as {existing!r}; cannot also read it as "
                f"{event_type!r}"
            )
        if event_type in self._renamed:
            raise RegistryError(
                f"cannot read {old_type!r} as {event_type!r}, itself a former name of "
                f"{self._renamed[event_type]!r}: register the rename to "
                f"{self._renamed[event_type]!r}"
            )
        if old_type in self._renamed.values():
            earlier = sorted(k for k, v in self._renamed.items() if v == old_type)
            raise RegistryError(
                f"cannot rename {old_type!r} to {event_type!r}: {', '.join(map(repr, earlier))} "
                f"already read as {old_type!r}; register each former name with the current "
                "type name"
            )
        self._renamed[old_type] = event_type
        self._clear_decoders()

    def upcaster(
        self, event_type: str, from_version: int
    ) -> Callable[[Upcaster[OldT, NewT]], Upcaster[OldT, NewT]]:
        """Decorator form of `register_upcaster`."""

        def decorate(fn: Upcaster[OldT, NewT]) -> Upcaster[OldT, NewT]:
            self.register_upcaster(event_type, from_version, fn)
            return fn

        return decorate

    def check(self) -> None:
        """Raise `RegistryError` listing every version below a latest one with no upcaster.

        Call once at start-up so a gap is found before the first old event is read.
        """
        problems: list[str] = []
        for event_type, latest in sorted(self._latest.items()):
            steps = self._upcasters.get(event_type, {})
            problems.extend(
                f"{event_type!r}: no upcaster from version {k} to {k + 1}"
                for k in range(1, latest.event_version)
                if k not in steps
            )
            problems.extend(
                f"{event_type!r}: upcaster from version {k} to {k + 1}, but the latest "
                f"registered version is {latest.event_version}"
                for k in sorted(steps)
                if k >= latest.event_version
            )
        problems.extend(
            f"{event_type!r}: upcasters registered but no event class"
            for event_type in sorted(self._upcasters.keys() - self._latest.keys())
        )
        problems.extend(
            f"{old!r}: renamed to {new!r}, which has no event class"
            for old, new in sorted(self._renamed.items())
            if new not in self._latest
        )
        if problems:
            raise RegistryError("incomplete event registry:\n  " + "\n  ".join(problems))

    def _clear_decoders(self) -> None:
        self._decoders.clear()
        self._keyed.clear()

    # -- lookups ------------------------------------------------------------------------

    def __contains__(self, event_type: object) -> bool:
        return event_type in self._latest

    @property
    def event_types(self) -> frozenset[str]:
        """The current type names; former names of renamed types are in `renamed`."""
        return frozenset(self._latest)

    @property
    def renamed(self) -> Mapping[str, str]:
        """Former type name -> the current one, for every renamed event type."""
        return MappingProxyType(self._renamed)

    def current_type(self, stored_type: str) -> str:
        """The type name a stored event is read as: its own, unless it is a former name."""
        return self._renamed.get(stored_type, stored_type)

    def by_stored_type(self, table: Mapping[str, V]) -> Mapping[str, V]:
        """A table keyed by current type names (a projection's handlers), extended so that
        events stored under a former name find the entry of the type they are read as."""
        if not self._renamed:
            return table
        extended = dict(table)
        for old, new in self._renamed.items():
            if new in table:
                extended[old] = table[new]
        return extended

    def latest(self, event_type: str) -> type[Event]:
        try:
            return self._latest[event_type]
        except KeyError:
            raise UnknownEventType(_unknown(event_type)) from None

    def is_latest(self, cls: type[Event]) -> bool:
        """True if `cls` is registered and is the newest version of its type: only those may
        be recorded, since events are always written at the latest version."""
        event_type = getattr(cls, "event_type", None)
        return isinstance(event_type, str) and self._latest.get(event_type) is cls

    # -- decoding -----------------------------------------------------------------------

    def decoder(
        self, event_type: str, event_version: int, keyring: Keyring | None = None
    ) -> Decoder:
        """The function turning stored JSON of this (type, version) into the latest class.
        `keyring` (the store's) opens personal fields.

        Raises `DecodeError` (or its subclasses) for anything that does not fit.
        """
        fast = self._fast_decoder(event_type, event_version, keyring)

        def decode(data: str | bytes) -> Event:
            try:
                return fast(data)
            except ValidationError as exc:
                raise self._invalid(event_type, event_version, exc) from exc

        return decode

    def decode(
        self,
        event_type: str,
        event_version: int,
        data: str | bytes,
        keyring: Keyring | None = None,
    ) -> Event:
        fast = self._fast_decoder(event_type, event_version, keyring)
        try:
            return fast(data)
        except ValidationError as exc:
            raise self._invalid(event_type, event_version, exc) from exc

    def decode_recorded(self, recorded: RecordedEvent, keyring: Keyring | None = None) -> Event:
        try:
            return self.decode(recorded.event_type, recorded.event_version, recorded.data, keyring)
        except DecodeError as exc:
            exc.add_note(_where(recorded))
            raise

    def raw_decoder(
        self, event_type: str, event_version: int, keyring: Keyring | None = None
    ) -> Decoder:
        """The cached decoder of one stored type and version, for loops over many events
        (projections): it raises pydantic's `ValidationError` on invalid data, which the
        caller turns into a `DecodeError` with `invalid_recorded`. `DecodeError` if the
        type or version is unknown."""
        return self._fast_decoder(event_type, event_version, keyring)

    def invalid_recorded(self, recorded: RecordedEvent, exc: ValidationError) -> DecodeError:
        """The `DecodeError` for a recorded event whose data its decoder refused."""
        error = self._invalid(recorded.event_type, recorded.event_version, exc)
        error.add_note(_where(recorded))
        return error

    def decode_all(
        self, records: Iterable[RecordedEvent], keyring: Keyring | None = None
    ) -> list[Event]:
        """Decode many recorded events: the loop projections and audits run."""
        decoders = self.decoders(keyring)
        fast_decoder = self._fast_decoder
        out: list[Event] = []
        append = out.append
        recorded = None
        try:
            for recorded in records:
                key = (recorded.event_type, recorded.event_version)
                append((decoders.get(key) or fast_decoder(*key, keyring))(recorded.data))
        except ValidationError as exc:
            assert recorded is not None
            error = self._invalid(recorded.event_type, recorded.event_version, exc)
            error.add_note(_where(recorded))
            raise error from exc
        except DecodeError as exc:
            assert recorded is not None
            exc.add_note(_where(recorded))
            raise
        return out

    def decoders(self, keyring: Keyring | None) -> dict[tuple[str, int], Decoder]:
        """The cache of decoders built for `keyring` (None: a store without one), read by
        hot loops directly; a miss is filled by `_fast_decoder(type, version, keyring)`."""
        if keyring is None:
            return self._decoders
        table = self._keyed.get(keyring)
        if table is None:
            table = self._keyed[keyring] = {}
        return table

    def _fast_decoder(
        self, event_type: str, event_version: int, keyring: Keyring | None = None
    ) -> Decoder:
        # Decoders in the cache are as fast as they can be: for the latest version it is
        # pydantic's own JSON validator, so invalid data surfaces as pydantic's
        # ValidationError; the public methods translate it (see `_invalid`).
        key = (event_type, event_version)
        table = self.decoders(keyring)
        decoder = table.get(key)
        if decoder is None:
            decoder = table[key] = self._build_decoder(event_type, event_version, keyring)
        return decoder

    def _invalid(self, event_type: str, event_version: int, exc: ValidationError) -> DecodeError:
        current = self.current_type(event_type)
        cls = self._latest.get(current) or _BUILT_IN[current]
        return DecodeError(
            f"stored data of {event_type!r} version {event_version} does not validate as "
            f"{cls.__qualname__}: {exc}"
        )

    def _build_decoder(
        self, stored_type: str, version: int, keyring: Keyring | None = None
    ) -> Decoder:
        # Everything below is about the type the stored one is read as; messages name both
        # when they differ, since the stored name is what an operator finds in the table.
        event_type = self.current_type(stored_type)
        latest = self._latest.get(event_type)
        if latest is None:
            built_in = _BUILT_IN.get(event_type)
            if built_in is not None and version == built_in.event_version:
                return _direct_decoder(built_in)
            if event_type != stored_type:
                raise UnknownEventType(
                    f"{_unknown(event_type, version)}; stored events of {stored_type!r} are "
                    "read as that type"
                )
            raise UnknownEventType(_unknown(event_type, version))
        target = latest.event_version
        if version > target:
            raise UpcastError(
                f"event type {_stored(stored_type, event_type)} is stored at version "
                f"{version}, newer than the latest registered version {target} "
                f"({latest.__qualname__}): the data was written by newer code; deploy it here too"
            )
        chain: list[tuple[int, _Step]] = []
        if version < target:
            steps = self._upcasters.get(event_type, {})
            for k in range(version, target):
                if k not in steps:
                    raise UpcastError(
                        f"cannot upcast event type {_stored(stored_type, event_type)} from "
                        f"version {version} to {target}: no upcaster from version {k} to "
                        f"{k + 1} (register one with register_upcaster({event_type!r}, {k}, fn))"
                    )
                step = steps[k]
                if step is not None:
                    chain.append((k, step))
        if version == target:
            decoder = _direct_decoder(latest)
        elif not chain:
            # Only widenings on the way: the stored text is valid latest data as it is.
            decoder = _widened_decoder(latest)
        else:
            decoder = _upcasting_decoder(latest, version, tuple(chain))
        if not self._holds_personal_data(event_type):
            return decoder
        stored = self._classes[event_type].get(version)
        spec = None if stored is None else personal_fields(stored)
        return _opening_decoder(decoder, latest, version, tuple(chain), keyring, spec)

    def _holds_personal_data(self, event_type: str) -> bool:
        """Whether any version of the type has personal fields: its stored data may then
        carry a sealed envelope, whatever version it was written at."""
        return any(personal_fields(cls) for cls in self._classes.get(event_type, {}).values())

    def __repr__(self) -> str:
        types = ", ".join(f"{t} v{c.event_version}" for t, c in sorted(self._latest.items()))
        renamed = "".join(f", {old} -> {new}" for old, new in sorted(self._renamed.items()))
        return f"EventRegistry({types}{renamed})"


def _direct_decoder(cls: type[Event]) -> Decoder:
    if not cls.__pydantic_complete__:
        cls.model_rebuild()
    # What model_validate_json calls, minus its Python wrapper: this runs once per event.
    decode: Decoder = cls.__pydantic_validator__.validate_json
    return decode


def _widened_decoder(cls: type[Event]) -> Decoder:
    """The latest class's JSON validator, for data stored by a version it widened. Where
    the JSON validator is stricter than the Python one (pydantic 2.11 refuses an int
    beyond 2**53 for a float field in JSON, and takes it from a dict), the data is read
    as the dict-copying upcaster it replaces read it."""
    direct = _direct_decoder(cls)
    validate = cls.model_validate

    def decode(data: str | bytes) -> Event:
        try:
            return direct(data)
        except ValidationError:
            return validate(json.loads(data))

    return decode


def _upcasting_decoder(
    cls: type[Event], version: int, chain: tuple[tuple[int, _Step], ...]
) -> Decoder:
    from_payload = _payload_decoder(cls, version, chain)
    event_type = cls.event_type

    def decode(data: str | bytes) -> Event:
        try:
            payload = json.loads(data)
        except ValueError as exc:
            raise DecodeError(
                f"stored data of {event_type!r} version {version} is not valid JSON: {exc}"
            ) from exc
        return from_payload(payload)

    return decode


def _payload_decoder(
    cls: type[Event], version: int, chain: tuple[tuple[int, _Step], ...]
) -> Callable[[dict[str, Any]], Event]:
    """Stored data of `version`, already parsed, through the upcasters to `cls`."""
    validate = cls.model_validate
    event_type = cls.event_type
    target = cls.event_version

    def decode(payload: dict[str, Any]) -> Event:
        for k, step in chain:
            try:
                result = step(payload)
            except Exception as exc:
                raise UpcastError(
                    f"upcasting event type {event_type!r} from version {version} to {target} "
                    f"failed in the step from version {k} to {k + 1} ({_name(step)}): {exc!r}"
                ) from exc
            if type(result) is dict:
                payload = result
            elif isinstance(result, Mapping):
                # Typed as a Mapping, so a step may build one of another kind: the next
                # step and pydantic get a dict all the same.
                payload = dict(result)
            else:
                raise UpcastError(
                    f"the upcaster of event type {event_type!r} from version {k} to {k + 1} "
                    f"({_name(step)}) must return a mapping (got {type(result).__name__})"
                )
        if not chain:
            return validate(payload)
        try:
            return validate(payload)
        except ValidationError as exc:
            raise UpcastError(
                f"event type {event_type!r} upcast from version {version} to {target} does "
                f"not validate as {cls.__qualname__}: {exc}"
            ) from exc

    return decode


def _opening_decoder(
    plain: Decoder,
    cls: type[Event],
    version: int,
    chain: tuple[tuple[int, _Step], ...],
    keyring: Keyring | None,
    spec: PersonalFields | None,
) -> Decoder:
    """A decoder for a type with personal fields: data with a sealed envelope is opened
    (the real values, or the placeholders once the subject is forgotten) before it is
    upcast and validated; data without one (written before the mark) reads as it did.

    The envelope `sealed_text` writes for top-level fields is read here without a JSON
    parser: the values' text is spliced back where the placeholders are and the result
    validated once, as an event without personal data is. Anything else goes through
    `open_text`."""
    from_payload = _payload_decoder(cls, version, chain)
    what = f"stored data of {cls.event_type!r} version {version}"
    mark, subject_key, sealed_key, end = ENVELOPE_TEXT
    head = mark + subject_key
    flat_body = "" if spec is None else spec.flat_body
    body_length = len(flat_body)

    def generic(text: str) -> Event:
        try:
            opened = open_text(keyring, text, what, spec)
        except ValueError as exc:  # not JSON: the plain decoder says so as it always does
            if isinstance(exc, EventStoreError):
                raise
            return plain(text)
        if isinstance(opened, str):
            return private(plain, opened)  # the values spliced back: one validation
        if not chain:
            # As JSON, as any stored event is read: bytes are base64 there, not in Python.
            return private(plain, json.dumps(opened, ensure_ascii=False))
        return private(from_payload, opened)

    def private(read: Callable[[_T], Event], opened: _T) -> Event:
        try:
            return read(opened)
        except (ValidationError, UpcastError) as exc:
            raise hidden(exc) from None

    def hidden(exc: ValidationError | UpcastError) -> DecodeError:
        """The error of reading opened data, told without its values: they are personal
        data, and a message is stored (a runner's problem), logged and printed."""
        if isinstance(exc, ValidationError):
            return DecodeError(
                f"{what}, its personal data opened, does not validate as "
                f"{cls.__qualname__} (values not shown): {without_values(exc)}"
            )
        cause = exc.__cause__
        why = (
            without_values(cause)
            if isinstance(cause, ValidationError)
            else type(cause).__name__
            if cause is not None
            else "the upcaster returned no mapping"
        )
        return UpcastError(
            f"upcasting {what}, its personal data opened, to version "
            f"{cls.event_version} failed (values not shown): {why}"
        )

    def decode_any(data: str | bytes) -> Event:
        text = data if type(data) is str else bytes(data).decode()  # type: ignore[arg-type]
        return generic(text) if ENVELOPE_KEY in text else plain(text)

    if keyring is None or not body_length:
        return decode_any  # no key to open with, or fields not all top-level: parsed
    open_sealed = keyring.opener()
    head_length, sealed_length, end_length = len(head), len(sealed_key), len(end)

    def decode(data: str | bytes) -> Event:
        text = data if type(data) is str else bytes(data).decode()  # type: ignore[arg-type]
        # String searches rather than a parser or a regular expression: this runs once per
        # event read, and they are the cheapest way to take the two values out. The
        # envelope must follow the placeholders and end the text, as `sealed_text` writes.
        i = text.rfind(head)
        if i < 0:
            return decode_any(text)
        start = i + head_length
        k = text.find(sealed_key, start)
        subject = text[start:k]
        if (
            k < 0
            or not text.endswith(end)
            or not text.endswith(flat_body, 0, i)
            or '"' in subject
            or "\\" in subject
        ):
            return generic(text)
        try:
            plaintext = open_sealed(subject, text[k + sealed_length : -end_length])
        except NoMasterKey:
            raise no_master_key(what, subject) from None
        if plaintext is None:  # forgotten: the placeholders, as declared now
            return plain(text[:i] + "}")
        if plaintext[:1] != b'"':
            return generic(text)
        try:
            return plain(text[: i - body_length] + plaintext.decode() + "}")
        except (ValidationError, UpcastError) as exc:
            raise hidden(exc) from None

    return decode


def _unknown(event_type: str, version: int | None = None) -> str:
    at = "" if version is None else f" (stored at version {version})"
    return f"no event class is registered for event type {event_type!r}{at}"


def _stored(stored_type: str, event_type: str) -> str:
    if stored_type == event_type:
        return repr(event_type)
    return f"{event_type!r} (stored as its former name {stored_type!r})"


def _where(recorded: RecordedEvent) -> str:
    return (
        f"stored as version {recorded.stream_version} of stream {recorded.stream_id!r} "
        f"(global position {recorded.position})"
    )


def _name(fn: object) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)


def _step_name(step: _Step | None) -> str:
    return "its data read as the next version unchanged" if step is None else _name(step)
