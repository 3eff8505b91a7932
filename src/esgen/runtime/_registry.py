"""The event registry: which class each stored (type, version) becomes, through which upcasters.

Generated code fills one registry with every version class of every event type and with one
upcaster per (type, from version). Reading then costs one dict lookup per event: the decoder
for each stored (type, version) is built once, on first use, and kept until the registry
changes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from pydantic import ValidationError

from esgen.runtime._errors import DecodeError, RegistryError, UnknownEventType, UpcastError
from esgen.runtime._messages import Event
from esgen.runtime._records import RecordedEvent

__all__ = ["Decoder", "EventRegistry", "Upcaster"]

EventT = TypeVar("EventT", bound=type[Event])

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
"""Maps the JSON-able data of version k of an event type to the data of version k + 1."""

Decoder = Callable[[str | bytes], Event]
"""Turns the stored JSON text of one (type, version) into the latest class's event."""


class EventRegistry:
    """Every event class the application reads or writes, and the upcasters between versions."""

    def __init__(self, events: Iterable[type[Event]] = ()) -> None:
        self._classes: dict[str, dict[int, type[Event]]] = {}
        self._upcasters: dict[str, dict[int, Upcaster]] = {}
        self._latest: dict[str, type[Event]] = {}
        # Read by the repository's replay loop directly: (type, version) -> decoder.
        self._decoders: dict[tuple[str, int], Decoder] = {}
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
        self._decoders.clear()
        return cls

    def register_upcaster(self, event_type: str, from_version: int, upcaster: Upcaster) -> None:
        """Register the step from `from_version` to `from_version + 1` of `event_type`."""
        if not isinstance(from_version, int) or isinstance(from_version, bool) or from_version < 1:
            raise RegistryError(f"from_version must be an int >= 1 (got {from_version!r})")
        if not callable(upcaster):
            raise RegistryError(f"an upcaster must be callable (got {upcaster!r})")
        steps = self._upcasters.setdefault(event_type, {})
        existing = steps.get(from_version)
        if existing is not None and existing is not upcaster:
            raise RegistryError(
                f"event type {event_type!r} already has an upcaster from version {from_version} "
                f"to {from_version + 1} ({_name(existing)}); cannot also register {_name(upcaster)}"
            )
        steps[from_version] = upcaster
        self._decoders.clear()

    def upcaster(self, event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
        """Decorator form of `register_upcaster`."""

        def decorate(fn: Upcaster) -> Upcaster:
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
        if problems:
            raise RegistryError("incomplete event registry:\n  " + "\n  ".join(problems))

    # -- lookups ------------------------------------------------------------------------

    def __contains__(self, event_type: object) -> bool:
        return event_type in self._latest

    @property
    def event_types(self) -> frozenset[str]:
        return frozenset(self._latest)

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

    def decoder(self, event_type: str, event_version: int) -> Decoder:
        """The function turning stored JSON of this (type, version) into the latest class.

        Raises `DecodeError` (or its subclasses) for anything that does not fit.
        """
        fast = self._fast_decoder(event_type, event_version)

        def decode(data: str | bytes) -> Event:
            try:
                return fast(data)
            except ValidationError as exc:
                raise self._invalid(event_type, event_version, exc) from exc

        return decode

    def decode(self, event_type: str, event_version: int, data: str | bytes) -> Event:
        fast = self._fast_decoder(event_type, event_version)
        try:
            return fast(data)
        except ValidationError as exc:
            raise self._invalid(event_type, event_version, exc) from exc

    def decode_recorded(self, recorded: RecordedEvent) -> Event:
        try:
            return self.decode(recorded.event_type, recorded.event_version, recorded.data)
        except DecodeError as exc:
            exc.add_note(_where(recorded))
            raise

    def decode_all(self, records: Iterable[RecordedEvent]) -> list[Event]:
        """Decode many recorded events: the loop projections and audits run."""
        decoders = self._decoders
        fast_decoder = self._fast_decoder
        out: list[Event] = []
        append = out.append
        recorded = None
        try:
            for recorded in records:
                key = (recorded.event_type, recorded.event_version)
                append((decoders.get(key) or fast_decoder(*key))(recorded.data))
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

    def _fast_decoder(self, event_type: str, event_version: int) -> Decoder:
        # Decoders in the cache are as fast as they can be: for the latest version it is
        # pydantic's own JSON validator, so invalid data surfaces as pydantic's
        # ValidationError; the public methods translate it (see `_invalid`).
        key = (event_type, event_version)
        decoder = self._decoders.get(key)
        if decoder is None:
            decoder = self._decoders[key] = self._build_decoder(event_type, event_version)
        return decoder

    def _invalid(self, event_type: str, event_version: int, exc: ValidationError) -> DecodeError:
        cls = self._latest[event_type]
        return DecodeError(
            f"stored data of {event_type!r} version {event_version} does not validate as "
            f"{cls.__qualname__}: {exc}"
        )

    def _build_decoder(self, event_type: str, version: int) -> Decoder:
        latest = self._latest.get(event_type)
        if latest is None:
            raise UnknownEventType(_unknown(event_type, version))
        target = latest.event_version
        if version == target:
            return _direct_decoder(latest)
        if version > target:
            raise UpcastError(
                f"event type {event_type!r} is stored at version {version}, newer than the "
                f"latest registered version {target} ({latest.__qualname__}): the data was "
                "written by newer code; deploy it here too"
            )
        steps = self._upcasters.get(event_type, {})
        chain = []
        for k in range(version, target):
            step = steps.get(k)
            if step is None:
                raise UpcastError(
                    f"cannot upcast event type {event_type!r} from version {version} to "
                    f"{target}: no upcaster from version {k} to {k + 1} (register one with "
                    f"register_upcaster({event_type!r}, {k}, fn))"
                )
            chain.append((k, step))
        return _upcasting_decoder(latest, version, tuple(chain))

    def __repr__(self) -> str:
        types = ", ".join(f"{t} v{c.event_version}" for t, c in sorted(self._latest.items()))
        return f"EventRegistry({types})"


def _direct_decoder(cls: type[Event]) -> Decoder:
    if not cls.__pydantic_complete__:
        cls.model_rebuild()
    # What model_validate_json calls, minus its Python wrapper: this runs once per event.
    decode: Decoder = cls.__pydantic_validator__.validate_json
    return decode


def _upcasting_decoder(
    cls: type[Event], version: int, chain: tuple[tuple[int, Upcaster], ...]
) -> Decoder:
    validate = cls.model_validate
    event_type = cls.event_type
    target = cls.event_version

    def decode(data: str | bytes) -> Event:
        try:
            payload = json.loads(data)
        except ValueError as exc:
            raise DecodeError(
                f"stored data of {event_type!r} version {version} is not valid JSON: {exc}"
            ) from exc
        for k, step in chain:
            try:
                payload = step(payload)
            except Exception as exc:
                raise UpcastError(
                    f"upcasting event type {event_type!r} from version {version} to {target} "
                    f"failed in the step from version {k} to {k + 1} ({_name(step)}): {exc!r}"
                ) from exc
            if not isinstance(payload, dict):
                raise UpcastError(
                    f"the upcaster of event type {event_type!r} from version {k} to {k + 1} "
                    f"({_name(step)}) must return a dict (got {type(payload).__name__})"
                )
        try:
            return validate(payload)
        except ValidationError as exc:
            raise UpcastError(
                f"event type {event_type!r} upcast from version {version} to {target} does "
                f"not validate as {cls.__qualname__}: {exc}"
            ) from exc

    return decode


def _unknown(event_type: str, version: int | None = None) -> str:
    at = "" if version is None else f" (stored at version {version})"
    return f"no event class is registered for event type {event_type!r}{at}"


def _where(recorded: RecordedEvent) -> str:
    return (
        f"stored as version {recorded.stream_version} of stream {recorded.stream_id!r} "
        f"(global position {recorded.position})"
    )


def _name(fn: object) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)
