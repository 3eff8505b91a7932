"""Personal data: fields sealed per data subject, so that erasing one key erases them all.

Crypto-shredding. A field marked `Personal` (in `Annotated` metadata, as generated code
writes it) is never stored as it is: the stored JSON holds the field's declared
placeholder in its place, and one envelope per stored model (`"$personal"`) holds the
real values, encrypted with AES-GCM under a data key of the model's data subject. Data
keys are kept in the store's own database, wrapped by a master key the application
provides (`MasterKey.from_env`, or any `KeyWrapper`, such as a KMS client). Forgetting a
subject deletes its wrapped key: every copy of its data in the store (events, snapshots,
saga state, read-model rows) then reads as the placeholders, which are valid values of
their fields, so old versions still upcast and projections still rebuild. A backup made
before the forget still holds the wrapped key, readable with the master key: backups
expire, or a restore is followed by forgetting again (docs/personal-data.md).

The envelope's content mirrors the model's JSON, holding only the personal values: a
leaf is `[value]` (replace), anything else an object of keys (list indexes as text) to
descend by. Reading needs no schema, so data sealed under a mark since removed still
reads back.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import threading
import time
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Final,
    Protocol,
    TypeAlias,
    Union,
    runtime_checkable,
)
from uuid import UUID

from pydantic import BaseModel, ValidationError

from esgen.runtime._errors import EventStoreError
from esgen.runtime._finite import dump_json, dump_json_apart
from esgen.runtime._messages import Event
from esgen.runtime._text import check_key

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from esgen.runtime._records import NewEvent

__all__ = [
    "ENVELOPE_KEY",
    "FORGOTTEN_STREAM",
    "ForgottenSubject",
    "KeyUnavailable",
    "KeyWrapper",
    "Keyring",
    "MasterKey",
    "Personal",
    "PersonalDataError",
    "SubjectForgotten",
    "SubjectKeyStore",
    "open_json",
    "personal_fields",
    "seal_json",
]

ENVELOPE_KEY: Final = "$personal"
"""The key of the envelope in a stored JSON object; no field can be named so."""

FORGOTTEN_STREAM: Final = "esgen-forgotten-subjects"
"""The stream where `forget` records one `SubjectForgotten` per subject."""

_FORMAT = b"\x01"  # the first byte of every sealed value: its layout, for later ones
_NONCE = 12
_KEY_BYTES = 32


class PersonalDataError(EventStoreError):
    """Personal data could not be sealed, opened or forgotten."""


class KeyUnavailable(PersonalDataError, LookupError):
    """A subject's data key cannot be had, and the subject was not forgotten: no master key,
    the wrong one, or a key table that lost a row. Never read as the placeholder."""


class ForgottenSubject(PersonalDataError, ValueError):
    """New personal data of a subject already forgotten: refused rather than kept."""


@dataclass(frozen=True, slots=True)
class Personal:
    """Marks a field as personal data (`Annotated[str, Personal(erased="<erased>")]`).

    `erased` is what the field reads as once its subject is forgotten; it must be a valid
    value of the field, as JSON (None for an optional field)."""

    erased: Any = None


class SubjectForgotten(Event):
    """The audit record of one `forget`: which subject, never what was known of it."""

    subject: str

    event_type: ClassVar[str] = "esgen.SubjectForgotten"
    event_version: ClassVar[int] = 1


# -- where the personal fields of a model are ---------------------------------------------


@dataclass(frozen=True, slots=True)
class _Leaf:
    erased: Any


@dataclass(frozen=True, slots=True)
class _Fields:
    fields: Mapping[str, _Node]  # JSON key -> node


@dataclass(frozen=True, slots=True)
class _Each:
    """Every item of a list, or every value of a map."""

    item: _Node


_Node: TypeAlias = _Leaf | _Fields | _Each


@dataclass(frozen=True, slots=True)
class PersonalFields:
    """The personal fields of one model class, and how its data subject is found."""

    tree: _Fields
    subject: str | None  # the JSON key of the field naming the subject; None: given by the caller
    paths: tuple[str, ...]  # dotted, for messages and documentation
    # When every personal field is a top-level field (the usual case), sealing works on
    # text: the attribute names, their placeholders, and the placeholders' JSON as the
    # stored text ends with it (`"name":"<erased>","email":"<erased>"`).
    flat: tuple[tuple[str, Any], ...] | None = None
    flat_body: str = ""
    # A set, never changed: pydantic-core reads a set as include/exclude faster than a
    # frozenset, and this is passed twice per event saved.
    flat_names: set[str] = field(default_factory=set)
    subject_attribute: str | None = None  # the attribute behind `subject`


_SPECS: dict[type[BaseModel], PersonalFields | None] = {}
_SPECS_LOCK = threading.Lock()


def personal_fields(cls: type[BaseModel]) -> PersonalFields | None:
    """The personal fields of `cls` (value types and collections included), or None."""
    try:
        return _SPECS[cls]
    except KeyError:
        pass
    with _SPECS_LOCK:
        node = _model_node(cls, ())
        spec = None
        if node is not None:
            subject = getattr(cls, "data_subject", None)
            key = None
            if subject is not None:
                info = cls.model_fields.get(subject)
                if info is None:
                    raise PersonalDataError(
                        f"{cls.__qualname__}.data_subject names {subject!r}, which is not a field"
                    )
                key = info.serialization_alias or info.alias or subject
                if key in node.fields:
                    raise PersonalDataError(
                        f"{cls.__qualname__}.{subject} names the data subject and so cannot "
                        "itself be personal: it is what finds the key"
                    )
            flat, body = _flat(cls, node)
            names = {name for name, _ in flat or ()}
            spec = PersonalFields(node, key, tuple(_paths(node, "")), flat, body, names, subject)
        _SPECS[cls] = spec
        return spec


def _model_node(cls: type[BaseModel], seen: tuple[type[BaseModel], ...]) -> _Fields | None:
    if cls in seen:
        return None  # a recursive type: its personal fields are found on the first visit
    fields: dict[str, _Node] = {}
    for name, info in cls.model_fields.items():
        key = info.serialization_alias or info.alias or name
        marks = [m for m in info.metadata if isinstance(m, Personal)]
        if marks:
            _check_placeholder(cls, name, marks[0].erased)
            fields[key] = _Leaf(marks[0].erased)
            continue
        node = _type_node(info.annotation, (*seen, cls), f"{cls.__qualname__}.{name}")
        if node is not None:
            fields[key] = node
    return _Fields(fields) if fields else None


def _type_node(annotation: Any, seen: tuple[type[BaseModel], ...], where: str) -> _Node | None:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        marks = [m for m in args[1:] if isinstance(m, Personal)]
        if marks:
            return _Leaf(marks[0].erased)
        return _type_node(args[0], seen, where)
    if origin is Union or origin is types.UnionType:
        nodes = [_type_node(a, seen, where) for a in args if a is not type(None)]
        found = [n for n in nodes if n is not None]
        if len(found) > 1 or (found and len(nodes) > 1):
            raise PersonalDataError(
                f"{where}: personal fields inside a union of several types cannot be located; "
                "mark the whole field personal"
            )
        return found[0] if found else None
    if origin in (list, tuple, set, frozenset) or (
        isinstance(origin, type) and issubclass(origin, Sequence) and origin is not str
    ):
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            if any(_type_node(a, seen, where) for a in args):
                raise PersonalDataError(
                    f"{where}: personal fields inside a fixed-length tuple cannot be located; "
                    "mark the whole field personal"
                )
            return None
        item = _type_node(args[0], seen, where) if args else None
        return None if item is None else _Each(item)
    if origin in (dict, Mapping) or (isinstance(origin, type) and issubclass(origin, Mapping)):
        item = _type_node(args[1], seen, where) if len(args) == 2 else None
        return None if item is None else _Each(item)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _model_node(annotation, seen)
    return None


def _flat(cls: type[BaseModel], node: _Fields) -> tuple[tuple[tuple[str, Any], ...] | None, str]:
    if not all(isinstance(child, _Leaf) for child in node.fields.values()):
        return None, ""
    by_key = {
        info.serialization_alias or info.alias or name: name
        for name, info in cls.model_fields.items()
    }
    flat = tuple((by_key[key], child.erased) for key, child in node.fields.items())  # type: ignore[union-attr]
    body = ",".join(
        f"{_dumps(key)}:{_dumps(child.erased)}"  # type: ignore[union-attr]
        for key, child in node.fields.items()
    )
    return flat, body


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _check_placeholder(cls: type[BaseModel], name: str, erased: Any) -> None:
    try:
        json.dumps(erased)
    except (TypeError, ValueError):
        raise PersonalDataError(
            f"{cls.__qualname__}.{name}: the placeholder {erased!r} is not a JSON value"
        ) from None


def _paths(node: _Node, prefix: str) -> list[str]:
    if isinstance(node, _Leaf):
        return [prefix]
    if isinstance(node, _Each):
        return _paths(node.item, prefix + "[]")
    out: list[str] = []
    for key, child in node.fields.items():
        out.extend(_paths(child, f"{prefix}.{key}" if prefix else key))
    return out


# -- taking personal values out of JSON data, and putting them back ------------------------


def _take(node: _Node, value: Any) -> tuple[Any, Any]:
    """`value` with placeholders in place of its personal parts, and the mirror of those
    parts (None when it has none)."""
    if isinstance(node, _Leaf):
        # Sealed even when it equals the placeholder: storing it in clear would tell
        # which values were the placeholder (see `_only_placeholders`).
        return node.erased, [value]
    if isinstance(node, _Each):
        if isinstance(value, list):
            items: Any = enumerate(value)
        elif isinstance(value, dict):
            items = value.items()
        else:
            return value, None
        mirror: dict[str, Any] = {}
        for key, item in list(items):
            stored, taken = _take(node.item, item)
            if taken is not None:
                value[key] = stored
                mirror[str(key)] = taken
        return value, mirror or None
    if not isinstance(value, dict):
        return value, None
    mirror = {}
    for key, child in node.fields.items():
        if key in value:
            stored, taken = _take(child, value[key])
            if taken is not None:
                value[key] = stored
                mirror[key] = taken
    return value, mirror or None


def _only_placeholders(node: _Node, mirror: Any) -> bool:
    """Whether every value in the mirror is its field's placeholder: what a forgotten
    subject's data holds, which may be written again without a key (a late event copying
    the placeholders, a row rebuilt)."""
    if isinstance(node, _Leaf):
        return bool(mirror[0] == node.erased)
    if isinstance(node, _Each):
        return all(_only_placeholders(node.item, m) for m in mirror.values())
    return all(_only_placeholders(node.fields[k], m) for k, m in mirror.items())


def _give(value: Any, mirror: Any) -> Any:
    """`value` with the mirror's values put back in place."""
    if isinstance(mirror, list):
        return mirror[0]
    if isinstance(value, list):
        for key, taken in mirror.items():
            index = int(key)
            value[index] = _give(value[index], taken)
    elif isinstance(value, dict):
        for key, taken in mirror.items():
            value[key] = _give(value.get(key), taken)
    return value


# -- the master key and the per-subject data keys ---------------------------------------


@runtime_checkable
class KeyWrapper(Protocol):
    """What protects data keys at rest: the master key, or a KMS that holds it.

    `wrap` encrypts a subject's new data key; `unwrap` gives it back, raising any
    exception if it cannot (the wrong key, an unreachable KMS)."""

    def wrap(self, subject: str, data_key: bytes) -> bytes: ...

    def unwrap(self, subject: str, wrapped: bytes) -> bytes: ...


def _aesgcm() -> type[AESGCM]:
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError:
        raise PersonalDataError(
            "personal data is encrypted with the cryptography package: pip install 'esgen[pii]'"
        ) from None
    return AESGCM


class MasterKey:
    """A 256-bit key that wraps data keys with AES-GCM, the subject bound to each."""

    ENV: ClassVar[str] = "ESGEN_MASTER_KEY"

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes) or len(key) != _KEY_BYTES:
            got = len(key) if isinstance(key, bytes) else type(key).__name__
            raise PersonalDataError(f"a master key is {_KEY_BYTES} bytes (got {got})")
        self._cipher = _aesgcm()(key)

    @classmethod
    def generate(cls) -> str:
        """A new master key as the text `from_env` reads (base64)."""
        return base64.b64encode(os.urandom(_KEY_BYTES)).decode("ascii")

    @classmethod
    def from_text(cls, text: str, where: str = "the master key") -> MasterKey:
        try:
            key = base64.b64decode(
                text.strip(), altchars=b"-_" if "-" in text or "_" in text else None, validate=True
            )
        except (binascii.Error, ValueError):
            raise PersonalDataError(f"{where} is not base64 text") from None
        if len(key) != _KEY_BYTES:
            raise PersonalDataError(
                f"{where} holds {len(key)} bytes; a master key is {_KEY_BYTES} "
                "(make one with `esgen master-key`)"
            )
        return cls(key)

    @classmethod
    def from_env(cls, name: str | None = None) -> MasterKey:
        """The master key in environment variable `name` (default ESGEN_MASTER_KEY), base64."""
        name = name or cls.ENV
        text = os.environ.get(name)
        if not text:
            raise PersonalDataError(
                f"the environment variable {name} holds no master key: personal data cannot "
                "be read or written without it"
            )
        return cls.from_text(text, f"the environment variable {name}")

    def wrap(self, subject: str, data_key: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return _FORMAT + nonce + self._cipher.encrypt(nonce, data_key, subject.encode())

    def unwrap(self, subject: str, wrapped: bytes) -> bytes:
        if wrapped[:1] != _FORMAT:
            raise ValueError("not a key wrapped by esgen's MasterKey")
        nonce = wrapped[1 : 1 + _NONCE]
        return self._cipher.decrypt(nonce, wrapped[1 + _NONCE :], subject.encode())

    def __repr__(self) -> str:
        return "MasterKey(<hidden>)"


class EphemeralMasterKey:
    """A random master key made on first use and never written anywhere: for stores that
    live in process memory, whose keys die with them."""

    def __init__(self) -> None:
        self._key: MasterKey | None = None

    def _master(self) -> MasterKey:
        if self._key is None:
            self._key = MasterKey(os.urandom(_KEY_BYTES))
        return self._key

    def wrap(self, subject: str, data_key: bytes) -> bytes:
        return self._master().wrap(subject, data_key)

    def unwrap(self, subject: str, wrapped: bytes) -> bytes:
        return self._master().unwrap(subject, wrapped)

    def __repr__(self) -> str:
        return "EphemeralMasterKey(<in memory>)"


class SubjectKeyStore(Protocol):
    """Where wrapped data keys live: the event store's own database."""

    def subject_keys(self, subjects: Sequence[str]) -> Mapping[str, bytes | None]:
        """The wrapped key of each subject that has one, None for each forgotten; a
        subject never seen is absent."""
        ...

    def add_subject_key(self, subject: str, wrapped: bytes) -> bytes | None:
        """Keep `wrapped` unless the subject has a key already; returns the key kept (the
        other one if another writer came first), None if the subject is forgotten."""
        ...

    def forget_subject(self, subject: str, audit: NewEvent) -> bool:
        """In one transaction: delete the subject's key, remember it as forgotten and append
        `audit` to `FORGOTTEN_STREAM`. False (nothing done) if it was forgotten before."""
        ...


_GONE: Final = object()  # a forgotten subject, in the keyring's cache

# Keys made in a transaction not committed yet (SQLite: their rows are part of it), by
# (keyring, subject): the cipher and the subject's bytes. Only the thread that made them
# sees them, until the outermost transaction tracking them commits and they go to their
# keyrings' caches; if it rolls back, nobody ever sealed with them but that transaction.
# (The thread is kept too: a thread started inside the block may inherit the context.)
_PENDING: ContextVar[tuple[int, dict[tuple[Keyring, str], tuple[Any, bytes]]] | None] = ContextVar(
    "_PENDING", default=None
)

# Inside `keys_stored_with`: the store whose keys join its transaction, the thread, and
# what opens that transaction, called before a new key is stored.
_SAVING: ContextVar[tuple[object, int, Callable[[], None]] | None] = ContextVar(
    "_SAVING", default=None
)


def _pending() -> dict[tuple[Keyring, str], tuple[Any, bytes]] | None:
    pending = _PENDING.get()
    if pending is None or pending[0] != threading.get_ident():
        return None
    return pending[1]


@contextmanager
def keys_stored_with(store: object) -> Iterator[None]:
    """Around sealing and appending: a data key made for a new subject is stored in the
    same transaction as the events sealed with it, where the store can (SQLite), so
    neither is kept without the other and a key costs no commit of its own. Two writers
    creating a key for one subject meet on its row: the second, under the first's lock,
    finds the first's key and seals with it. Stores without a `save_transaction()`
    (PostgreSQL: a key is committed on a connection of its own) need nothing of this.

    The transaction is opened only when a key is made: a save whose subjects all have
    theirs (cached) appends as any other save, in the append's own transaction."""
    opener = getattr(store, "save_transaction", None)
    if opener is None:
        yield  # the store keeps each new key at once, in a transaction of its own
        return
    with ExitStack() as stack:
        opened = False

        def begin() -> None:
            nonlocal opened
            if not opened:
                opened = True
                stack.enter_context(opener())

        token = _SAVING.set((store, threading.get_ident(), begin))
        try:
            yield  # on leaving, the stack commits what `begin` opened (rolls back if raised)
        finally:
            _SAVING.reset(token)


@contextmanager
def new_keys_tracked() -> Iterator[None]:
    """Around a transaction that stores new keys with what is sealed with them: keys made
    inside are used by this thread alone until it commits, then cached for all; if it
    rolls back they are forgotten (the next use asks the store again, and makes a new
    one). Another thread sealing with a key whose row may yet be rolled back would store
    data no key opens. Nested blocks hand their keys to the outer one."""
    outer = _pending()
    made: dict[tuple[Keyring, str], tuple[Any, bytes]] = {}
    token = _PENDING.set((threading.get_ident(), made))
    try:
        yield
    finally:
        _PENDING.reset(token)
    # Not reached if the block raised: its keys are dropped with it.
    if outer is not None:
        outer.update(made)  # the enclosing transaction may still roll them back
        return
    for (keyring, subject), (cipher, associated) in made.items():
        keyring._publish(subject, cipher, associated)


class Keyring:
    """Seals and opens personal data with per-subject data keys.

    Unwrapped keys are cached for `cache_seconds`: a subject forgotten through this
    keyring reads as forgotten at once, one forgotten by another process once its key
    expires here. Safe to share between threads."""

    def __init__(
        self, master: KeyWrapper | None, keys: SubjectKeyStore, *, cache_seconds: float = 60.0
    ) -> None:
        # Without a master key the keyring still knows which subjects are forgotten (their
        # data reads as placeholders); opening or sealing anything else is KeyUnavailable.
        if master is not None and not isinstance(master, KeyWrapper):
            raise TypeError(f"the master key must have wrap() and unwrap() (got {master!r})")
        self._master = master
        self._keys = keys
        self._ttl = cache_seconds
        self._cipher: Any = None if master is None else _aesgcm()
        # Subject -> (cipher or _GONE, expiry on the monotonic clock, the subject as bytes:
        # the associated data every sealed value of the subject is bound to).
        self._cache: dict[str, tuple[Any, float, bytes]] = {}

    @property
    def has_master_key(self) -> bool:
        return self._master is not None

    # -- sealing and opening ------------------------------------------------------------

    def seal(self, subject: str, plaintext: bytes) -> str:
        # Runs once per event saved: a cached key is used inline, with its subject's bytes.
        entry = self._cache.get(subject)
        if entry is None or entry[1] <= time.monotonic() or entry[0] is _GONE:
            cipher, associated = self._cipher_for(subject, create=True), subject.encode()
        else:
            cipher, _, associated = entry
        nonce = os.urandom(_NONCE)
        sealed = _FORMAT + nonce + cipher.encrypt(nonce, plaintext, associated)
        return binascii.b2a_base64(sealed, newline=False).decode("ascii")

    def open(self, subject: str, sealed: str) -> bytes | None:
        """The plaintext, or None if the subject was forgotten."""
        # Runs once per stored event read: the cached key is looked up inline.
        entry = self._cache.get(subject)
        if entry is not None and entry[1] > time.monotonic():
            cipher = entry[0]
            if cipher is _GONE:
                return None
        else:
            cipher = self._cipher_for(subject, create=False)
            if cipher is None:
                return None
        try:
            raw = binascii.a2b_base64(sealed, strict_mode=True)
        except (binascii.Error, ValueError, TypeError):
            raise PersonalDataError(f"sealed data of subject {subject!r} is not base64") from None
        if raw[:1] != _FORMAT:
            raise PersonalDataError(f"sealed data of subject {subject!r} has an unknown format")
        try:
            plaintext: bytes = cipher.decrypt(raw[1:13], raw[13:], subject.encode())
            return plaintext
        except Exception as exc:  # cryptography's InvalidTag: altered data or another key
            raise PersonalDataError(
                f"sealed data of subject {subject!r} does not open with its key: it was "
                f"altered, or sealed under another subject ({type(exc).__name__})"
            ) from None

    def opener(self) -> Callable[[str, str], bytes | None]:
        """`open` for loops over many stored values: a key already cached is used without
        a method call in between; anything else (a miss, an error) goes through `open`,
        which raises what it should."""
        cache = self._cache
        monotonic = time.monotonic
        a2b = binascii.a2b_base64
        slow = self.open

        def open_sealed(subject: str, sealed: str) -> bytes | None:
            entry = cache.get(subject)
            if entry is None or entry[1] <= monotonic() or entry[0] is _GONE:
                return slow(subject, sealed)
            try:
                # Strict, as `open` is: whether the key is cached must not change what
                # reads (lax base64 would skip characters someone added to the text).
                raw = a2b(sealed, strict_mode=True)
                if raw[0] == 1:  # _FORMAT
                    plaintext: bytes = entry[0].decrypt(raw[1:13], raw[13:], entry[2])
                    return plaintext
            except Exception:
                pass
            return slow(subject, sealed)

        return open_sealed

    def forgotten(self, subject: str) -> bool:
        """True if the subject was forgotten (never raises for a subject without a key)."""
        try:
            return self._cipher_for(subject, create=False) is None
        except KeyUnavailable:
            return False

    def forget(self, subject: str, *, metadata: Mapping[str, Any] | None = None) -> bool:
        """Delete the subject's key for good and record it; False if forgotten before."""
        return forget_subject(self._keys, subject, metadata)

    def drop(self, subject: str) -> None:
        """Let the next use of the subject's key ask the store again (after `forget`: the
        store then says forgotten, unless the forget's transaction was rolled back)."""
        self._cache.pop(subject, None)

    # -- keys ---------------------------------------------------------------------------

    def _cipher_for(self, subject: str, *, create: bool) -> Any:
        entry = self._cache.get(subject)
        if entry is not None and entry[1] > time.monotonic():
            cipher = entry[0]
        else:
            pending = _pending()
            made = None if pending is None else pending.get((self, subject))
            cipher = self._fetch(subject, create=create) if made is None else made[0]
        if cipher is _GONE:
            if create:
                raise ForgottenSubject(
                    f"subject {subject!r} was forgotten: no new personal data of it is kept"
                )
            return None
        return cipher

    def _fetch(self, subject: str, *, create: bool) -> Any:
        """The subject's cipher from the store (made and stored first if `create` and it
        has none), cached; `_GONE` if forgotten."""
        check_subject(subject)
        key: bytes | None = None
        if create and isinstance(self._master, MasterKey | EphemeralMasterKey):
            # A local master key wraps in a microsecond: offering a new key at once saves
            # the store a lookup (the store keeps the key it has, if it has one).
            found: Mapping[str, bytes | None] = {}
        else:
            found = self._keys.subject_keys([subject])
        if subject in found:
            wrapped = found[subject]
            if wrapped is not None and self._master is None:
                raise _NoMasterKey(_no_master(f"the data of subject {subject!r}"))
        elif self._master is None:
            raise _NoMasterKey(_no_master(f"the data of subject {subject!r}"))
        elif not create:
            raise KeyUnavailable(
                f"no data key is stored for subject {subject!r}, which was never "
                "forgotten: its personal data cannot be read (was the key table "
                "restored from an older backup than the events?)"
            )
        else:
            key = os.urandom(_KEY_BYTES)
            assert self._master is not None
            new = self._master.wrap(subject, key)
            saving = _SAVING.get()
            if (
                saving is not None
                and saving[0] is self._keys
                and saving[1] == threading.get_ident()
            ):
                saving[2]()  # the save's transaction, which the key joins
            wrapped = self._keys.add_subject_key(subject, new)
            if wrapped != new:
                key = None  # another writer's key was kept: that one is unwrapped
        if wrapped is None:
            self._cache[subject] = (_GONE, float("inf"), b"")
            return _GONE
        assert self._master is not None
        cipher = self._cipher(self._unwrap(subject, wrapped) if key is None else key)
        pending = _pending() if key is not None else None
        if pending is not None:  # ours, in a transaction not committed yet
            pending[(self, subject)] = (cipher, subject.encode())
        else:
            self._publish(subject, cipher, subject.encode())
        return cipher

    def _publish(self, subject: str, cipher: Any, associated: bytes) -> None:
        self._cache[subject] = (cipher, time.monotonic() + self._ttl, associated)

    def _unwrap(self, subject: str, wrapped: bytes) -> bytes:
        assert self._master is not None
        try:
            key = self._master.unwrap(subject, bytes(wrapped))
        except Exception as exc:
            raise KeyUnavailable(
                f"the data key of subject {subject!r} does not unwrap with this master key "
                f"(the wrong key, or the KMS refused: {type(exc).__name__})"
            ) from None
        if len(key) != _KEY_BYTES:
            raise KeyUnavailable(
                f"the data key of subject {subject!r} unwrapped to {len(key)} bytes"
            )
        return key


# -- sealed JSON ------------------------------------------------------------------------


def seal_json(
    keyring: Keyring | None,
    spec: PersonalFields,
    data: dict[str, Any],
    subject: str | None = None,
    what: str = "",
) -> dict[str, Any]:
    """`data` (a model's JSON object, changed in place) with placeholders in place of its
    personal values and the envelope holding them. `subject` is used when the model does
    not name its subject in a field (an aggregate's id)."""
    if spec.subject is not None:
        subject = _subject_text(data.get(spec.subject), what, spec.subject)
    if subject is None:
        raise PersonalDataError(f"{what} holds personal data but names no data subject")
    data, mirror = _take(spec.tree, data)
    if mirror is None:
        return data
    plaintext = json.dumps(mirror, ensure_ascii=False, separators=(",", ":")).encode()
    try:
        sealed = _seal(keyring, subject, plaintext, what)
    except ForgottenSubject:
        if _only_placeholders(spec.tree, mirror):
            return data  # the placeholders are in place already: nothing personal is kept
        raise
    data[ENVELOPE_KEY] = {"subject": subject, "sealed": sealed}
    return data


def open_json(
    keyring: Keyring | None,
    data: dict[str, Any],
    what: str = "",
    spec: PersonalFields | None = None,
) -> dict[str, Any]:
    """`data` with the envelope's values put back, or the placeholders if its subject was
    forgotten: those `spec` (the reading class's) declares now, else those stored. Data
    without an envelope is returned as it is."""
    envelope = data.pop(ENVELOPE_KEY, None)
    if envelope is None:
        return data
    if not (
        isinstance(envelope, dict)
        and isinstance(subject := envelope.get("subject"), str)
        and isinstance(sealed := envelope.get("sealed"), str)
    ):
        raise PersonalDataError(f"{what} has a damaged personal-data envelope")
    plaintext = _open(keyring, subject, sealed, what)
    if plaintext is None:
        # A placeholder changed since (compat ES112) reads as the one declared now.
        return data if spec is None else typing.cast("dict[str, Any]", _take(spec.tree, data)[0])
    return _put_back(data, plaintext)


def _subject_text(value: Any, what: str, field: str) -> str:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise PersonalDataError(
        f"{what} holds personal data, but its subject field {field!r} is {value!r}"
    )


def sealed_text(
    model: BaseModel, keyring: Keyring | None, subject: str | None, what: str = ""
) -> str:
    """The JSON text the runtime stores for `model` (an event, a state), its personal
    fields sealed with `keyring` (a store's `store.keyring`) under `subject`, unless the
    model names its subject in a field (`data_subject`). Repositories call it on save;
    call it to store an event as older code wrote it (an earlier version, in a test or a
    migration): `store.append(stream, [NewEvent(type, 1, sealed_text(old, store.keyring,
    subject), {})], ...)`."""
    spec = personal_fields(type(model))
    if spec is None:
        return dump_json(model, what)
    if spec.flat is None:
        text = dump_json(model, what)
        data = seal_json(keyring, spec, json.loads(text), subject, what or type(model).__qualname__)
        if ENVELOPE_KEY not in data:
            return text  # every personal value already was its placeholder
        return _dumps(data)
    # Top-level fields only: the text of the other fields, then the placeholders, then the
    # envelope, whose sealed content is the text the placeholders stand for. Reading
    # splices it back and validates the result in one pass (see `open_text`).
    flat = spec.flat
    names = spec.flat_names
    rest, values = dump_json_apart(model, what, names)
    if spec.subject is not None:
        subject = _subject_of(model, spec, what)
    if subject is None:
        raise PersonalDataError(
            f"{what or type(model).__qualname__} holds personal data but names no data subject"
        )
    try:
        sealed = _seal(keyring, subject, values[1:-1].encode(), what or type(model).__qualname__)
    except ForgottenSubject:
        if all(getattr(model, name) == erased for name, erased in flat):
            return dump_json(model, what)  # only placeholders: nothing personal to keep
        raise
    head = "{" if rest == "{}" else rest[:-1] + ","
    quoted = f'"{subject}"' if _PLAIN_TEXT.fullmatch(subject) else _dumps(subject)
    return f'{head}{spec.flat_body}{_MARK}{{"subject":{quoted},"sealed":"{sealed}"}}}}'


def _subject_of(model: BaseModel, spec: PersonalFields, what: str) -> str:
    assert spec.subject is not None and spec.subject_attribute is not None
    value = getattr(model, spec.subject_attribute)
    if isinstance(value, UUID):
        value = str(value)
    return _subject_text(value, what or type(model).__qualname__, spec.subject)


_MARK = ',"$personal":'
# Text JSON writes as it is between quotes (ids, usually): no escapes to make.
_PLAIN_TEXT = re.compile(r"[ !#-\[\]-~]*")
_SUBJECT = '{"subject":"'
_SEALED = '","sealed":"'
_END = '"}}'
ENVELOPE_TEXT: Final = (_MARK, _SUBJECT, _SEALED, _END)
"""How `sealed_text` writes the envelope at the end of a top-level object, in four parts
around the subject and the sealed text: what fast readers look for."""


def open_text(
    keyring: Keyring | None, text: str, what: str, spec: PersonalFields | None = None
) -> str | dict[str, Any]:
    """Stored text with an envelope, opened: the JSON text with the values spliced back
    where the placeholders are (those of `spec`, the class that reads it), or, when it was
    sealed otherwise, the parsed data with the values put back. Once the subject is
    forgotten, the placeholders `spec` declares (those stored, without a spec)."""
    flat_body = "" if spec is None else spec.flat_body
    # The envelope as `sealed_text` writes it, read without a JSON parser; anything else
    # (written by hand, a subject with escapes) is parsed.
    i = text.rfind(_MARK)
    start = i + len(_MARK) + len(_SUBJECT)
    middle = text.find(_SEALED, start)
    subject = text[start:middle]
    if (
        i <= 0
        or middle < 0
        or not text.startswith(_SUBJECT, i + len(_MARK))
        or not text.endswith(_END)
        or "\\" in subject
        or '"' in subject
    ):
        return open_json(keyring, json.loads(text), what, spec)
    sealed = text[middle + len(_SEALED) : len(text) - len(_END)]
    head = text[:i]
    plaintext = _open(keyring, subject, sealed, what)
    if plaintext is None:
        if spec is None or (flat_body and head.endswith(flat_body)):
            return head + "}"  # the placeholders stored are those declared now
        return typing.cast("dict[str, Any]", _take(spec.tree, json.loads(head + "}"))[0])
    if plaintext[:1] == b'"' and flat_body and head.endswith(flat_body):
        return f"{head[: len(head) - len(flat_body)]}{plaintext.decode()}}}"
    return _put_back(json.loads(head + "}"), plaintext)


def _put_back(data: dict[str, Any], plaintext: bytes) -> dict[str, Any]:
    if plaintext[:1] == b'"':
        # Sealed as text: the top-level fields' JSON, `"name":"Ada","email":"..."`.
        data.update(json.loads(b"{" + plaintext + b"}"))
        return data
    return typing.cast("dict[str, Any]", _give(data, json.loads(plaintext)))


def has_envelope(text: str | bytes) -> bool:
    return (b'"$personal"' if isinstance(text, bytes) else '"$personal"') in text  # type: ignore[operator]


def without_values(exc: ValidationError) -> str:
    """pydantic's errors without the values that failed: for opened personal data, whose
    values must not reach a message (stored as a runner's problem, logged, printed)."""
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or '(the whole)'}: {error['msg']}"
        for error in exc.errors(include_input=False, include_url=False)
    )


def model_opener(
    cls: type[BaseModel], keyring: Keyring | None
) -> Callable[[str | bytes], BaseModel]:
    """Reads a model's stored JSON text, opening its envelope (for snapshots and rows)."""
    validate_json = cls.model_validate_json
    what = cls.__qualname__
    spec = personal_fields(cls)

    def read(text: str | bytes) -> BaseModel:
        if not has_envelope(text):
            return validate_json(text)
        opened = open_text(keyring, text if isinstance(text, str) else text.decode(), what, spec)
        try:
            # As JSON, as stored text is always read: bytes are base64 there, not in Python.
            return validate_json(opened if isinstance(opened, str) else _dumps(opened))
        except ValidationError as exc:
            raise PersonalDataError(
                f"{what}: its stored data, personal data opened, does not validate "
                f"(values not shown): {without_values(exc)}"
            ) from None

    return read


class _NoMasterKey(KeyUnavailable):
    """Raised by a keyring without a master key, before its caller says what it read."""


def _no_master(what: str) -> str:
    return (
        f"{what} is personal data, and the store has no master key to open or seal it "
        "(open the store with master_key=, e.g. MasterKey.from_env())"
    )


_PAD = 32


def _seal(keyring: Keyring | None, subject: str, plaintext: bytes, what: str) -> str:
    # Padded with JSON whitespace to a multiple of 32 bytes: the sealed length tells the
    # values' length only to that, not "male" from "female".
    plaintext += b" " * (-len(plaintext) % _PAD)
    try:
        if keyring is None:
            raise _NoMasterKey(subject)
        return keyring.seal(subject, plaintext)
    except _NoMasterKey:
        raise KeyUnavailable(
            f"{what} holds personal data of subject {subject!r}, and the store has no master "
            "key to seal it (open the store with master_key=, e.g. MasterKey.from_env())"
        ) from None


def _open(keyring: Keyring | None, subject: str, sealed: str, what: str) -> bytes | None:
    try:
        if keyring is None:
            raise _NoMasterKey(subject)
        return keyring.open(subject, sealed)
    except _NoMasterKey:
        raise no_master_key(what, subject) from None


def no_master_key(what: str, subject: str) -> KeyUnavailable:
    """The error for personal data read without a master key, saying what was read."""
    return KeyUnavailable(
        f"{what} holds personal data of subject {subject!r}, and the store has no master "
        "key to open it (open the store with master_key=, e.g. MasterKey.from_env())"
    )


NoMasterKey = _NoMasterKey


def check_subject(subject: object) -> None:
    """A subject is a non-empty str that every store can keep (no NUL, no lone surrogate)."""
    if not isinstance(subject, str) or not subject:
        raise PersonalDataError(f"a data subject is a non-empty str (got {subject!r})")
    check_key(subject, "data subject")


def forget_subject(keys: SubjectKeyStore, subject: str, metadata: Mapping[str, Any] | None) -> bool:
    """What `EventStore.forget` and `Keyring.forget` do: the audit event (with the command
    context's metadata: who asked), the store's one transaction, the keyring's cache."""
    from esgen.runtime._context import save_metadata
    from esgen.runtime._records import NewEvent

    check_subject(subject)
    audit = NewEvent(
        SubjectForgotten.event_type,
        SubjectForgotten.event_version,
        SubjectForgotten(subject=subject).model_dump_json(),
        save_metadata(metadata),
    )
    done = keys.forget_subject(subject, audit)
    keyring = getattr(keys, "keyring", None)
    if isinstance(keyring, Keyring):
        keyring.drop(subject)
    return done
