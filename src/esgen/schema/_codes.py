"""Every diagnostic code esgen emits, with the one line the documentation shows for it."""

from __future__ import annotations

__all__ = ["CODES"]

CODES: dict[str, str] = {
    # the file itself
    "E100": "the file is not valid YAML",
    "E101": "a key appears twice in the same mapping",
    "E102": "a key the schema language does not know",
    "E103": "a value of the wrong shape or kind",
    "E104": "a required key is missing",
    "E105": "the file does not describe a context",
    "E106": "a number too long, too large or too small to read (over 1000 digits, beyond 1e±1000)",
    "E107": "a schema file (`.yaml`, `.yml`) that is a link below the schema folder",
    # names
    "E200": "a name that is not a valid identifier, or not in the expected case",
    "E201": "a class or context name that is a Python keyword",
    "E202": "a class name that shadows a Python builtin",
    "E203": "a name reserved by pydantic or esgen, or one that would hide a type in generated code",
    "E204": "a name defined twice (in one file or across files of a context)",
    "E205": "an event renamed from its own name, a live event's, or another event's former name",
    # types and values
    "E300": "an unknown type",
    "E301": "a type expression that does not parse, or nests more than 32 deep",
    "E302": "a constraint that does not apply to the field's type, or contradicts another",
    "E303": "a default that is not a valid value of the field's type",
    "E304": (
        "a JSON Schema file that cannot be read or turned into models, or a remote "
        "document that cannot be fetched"
    ),
    "E306": (
        "a JSON Schema path or `$ref` that leaves the allowed folders or goes through a "
        "link, or a remote `$ref` without `json_schema_remote_refs`, or a fetched document "
        "that names a file"
    ),
    "E305": "an enum with no values, or with duplicate, non-string or same-named values",
    # references
    "E400": "a reference to an event that does not exist",
    "E401": "a reference to a command that does not exist",
    "E402": "a reference to a field that does not exist",
    "E403": "a command that emits an event of another aggregate",
    "E404": "a projection key of a type that cannot identify a row",
    "E405": "read-model fields that SQL cannot tell apart, or SQLite cannot show in a view",
    "E406": (
        "a read-model index that cannot be built or serves nothing: on a field stored as "
        "JSON (a value type, list or map), or on the key alone"
    ),
    "E407": "a saga correlation on the id of an aggregate that does not exist",
    "E408": "a saga correlation field whose type is not the type of the aggregate's id",
    "E409": (
        "a subscription whose `from` is not a schema folder or an esgen.lock, or whose "
        "schema holds no context of the subscribed name, or more than one"
    ),
    "E410": "a subscription to an event that the upstream context does not publish",
    "E411": "a context that subscribes to its own events",
    "E412": (
        "a consumer's event not written `<upstream>.<Event>`, or of an upstream or event "
        "the context does not subscribe to"
    ),
    # versions
    "E500": "event versions that are not exactly 1..N",
    "E501": (
        "a `renamed_from` or `dropped` that names no field of the previous version, "
        "or is used twice"
    ),
    "E502": "an upcast setting on version 1, which has nothing to upcast from",
    # generation
    "E600": "an output file that exists but was not written by esgen",
    "E601": "an output path that leaves its configured folder or goes through a link below it",
    # personal data
    "E700": (
        "a `personal` mark where personal data cannot be kept: on a consumer, or in an "
        "event the context publishes"
    ),
    "E701": (
        "a personal field without the placeholder its type needs, or whose `erased` is not "
        "a valid value of the field"
    ),
    "E702": (
        "a data `subject` that is not a required str, uuid or int field that is not "
        "personal, or a saga with no subject whose state or sent commands hold personal data"
    ),
    "E703": "a read-model key or index on a personal field, which is stored sealed",
    "E704": (
        "a state, row or saga field, not personal, named like a personal field of an event "
        "it reads: a plain-text copy"
    ),
}
