"""One JSON Schema document from a `json_schema:` file and the local files its `$ref`s name.

datamodel-code-generator is handed text, never a path: given text, it would resolve a
relative `$ref` against wherever esgen runs, and given a path, it would follow links. So
esgen reads each referenced file itself, through the same checks as the `json_schema:`
file (see `_jsonrefs`), and hoists every part a `$ref` names into the `$defs` of one
document, named after the part (`address.json#/definitions/Address` becomes
`#/$defs/Address`, as the class would be named from the file). That one text is what the
generator renders, what the run cache keys on, what `esgen lock` records and what compat
compares, so an edit of a referenced file is an edit of the type, at a git ref too.

With `json_schema_remote_refs = true`, an http(s) `$ref` is fetched (see `_jsonremote`)
and bundled the same way; the `$ref`s inside a fetched document are resolved against its
URL and must stay http(s): a document from the network never names a file of this machine.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

__all__ = ["REMOTE_SETTING", "RefError", "bundle"]

REMOTE_SETTING = "json_schema_remote_refs"
_REMOTE = ("http", "https")

REF_KEYS = ("$ref", "$dynamicRef", "$recursiveRef")
_NOT_NAME = re.compile(r"[^A-Za-z0-9_]+")


class RefError(Exception):
    """A `$ref` esgen does not follow (E306), or cannot resolve (E304); the message says
    which and why."""

    def __init__(self, message: str, code: str = "E306") -> None:
        super().__init__(message)
        self.code = code


# (the ref as written, the document's key: for a file, a posix path relative to the
# json_schema file's folder; for a remote document, its absolute URL) -> that document's
# parsed JSON; raises RefError when it may not or cannot be read.
Loader = Callable[[str, str], object]


def bundle(
    main: dict[str, Any], main_name: str, load: Loader, fetch: Loader | None = None
) -> dict[str, Any]:
    """`main` with every part of another document that a `$ref` names copied into its
    `$defs` and the `$ref` pointed there; `main` itself when no `$ref` leaves it. `load`
    reads files; `fetch`, when the setting allows it, http(s) URLs (None: refused)."""
    bundler = _Bundler(main, main_name, load, fetch)
    result = bundler.rewrite(main, "")
    if not bundler.defs:
        return main
    assert isinstance(result, dict)  # the rewrite of an object is an object
    defs = dict(result.get("$defs") or {})
    defs.update(bundler.defs)
    return {**result, "$defs": defs}


class _Bundler:
    def __init__(
        self, main: dict[str, Any], main_name: str, load: Loader, fetch: Loader | None
    ) -> None:
        self.docs: dict[str, object] = {"": main}
        self.main_name = main_name
        self.load = load
        self.fetch = fetch
        self.names: dict[tuple[str, str], str] = {}
        self.defs: dict[str, object] = {}
        existing = main.get("$defs")
        self.taken = set(existing) if isinstance(existing, dict) else set()

    def rewrite(self, node: object, doc: str) -> object:
        """`node`, found in the file `doc` ("" for the json_schema file), with its
        `$ref`s pointed into the bundle."""
        if isinstance(node, dict):
            return {
                key: self.ref(value, doc)
                if key in REF_KEYS and isinstance(value, str)
                else self.rewrite(value, doc)
                for key, value in node.items()
            }
        if isinstance(node, list):
            return [self.rewrite(item, doc) for item in node]
        return node

    def ref(self, ref: str, doc: str) -> str:
        written, _, fragment = ref.partition("#")
        if not written:
            if not doc:
                return ref  # a place in the json_schema file itself: as it is
            return self.hoist(doc, fragment)
        scheme = urlsplit(written).scheme.lower()
        if _is_url(doc):  # inside a fetched document
            return self.remote(ref, written, fragment, doc)
        if scheme in _REMOTE:
            return self.remote(ref, written, fragment, None)
        if len(scheme) > 1:  # one letter is a Windows drive, not a scheme
            raise RefError(
                f"$ref {ref!r} names a {scheme}: URL; esgen follows relative paths to files "
                f"of the project, and http(s) URLs when {REMOTE_SETTING} = true"
            )
        if os.path.isabs(written) or written.startswith(("/", "\\", "~")):
            raise RefError(
                f"$ref {ref!r} is an absolute path; refer to files of the project by a path "
                "relative to the file that holds the $ref"
            )
        target = posixpath.normpath(posixpath.join(posixpath.dirname(doc), unquote(written)))
        if target == self.main_name:
            target = ""  # back into the json_schema file
        elif target not in self.docs:
            self.docs[target] = self.load(ref, target)
        return self.hoist(target, fragment)

    def remote(self, ref: str, written: str, fragment: str, base: str | None) -> str:
        """A `$ref` to an http(s) URL, or any `$ref` in the fetched document at `base`."""
        if self.fetch is None:
            raise RefError(
                f"$ref {ref!r} is remote, and esgen fetches remote references only when the "
                f"project's esgen configuration sets {REMOTE_SETTING} = true (the fetched "
                "text lands in generated code); better, copy the definitions into a file of "
                "the project and refer to it by a relative path"
            )
        if base is None:
            url = written
        else:
            scheme = urlsplit(written).scheme.lower()
            if (scheme and scheme not in _REMOTE) or written.startswith(("/", "\\")):
                raise RefError(
                    f"$ref {ref!r} in {base}: a fetched document may name other documents "
                    "only by a relative path or an http(s) URL, never a file of this machine "
                    "or an absolute path"
                )
            url = urljoin(base, written)
        if url not in self.docs:
            self.docs[url] = self.fetch(ref, url)
        return self.hoist(url, fragment)

    def hoist(self, doc: str, fragment: str) -> str:
        """The place in the bundle of the part of `doc` that `fragment` points at."""
        if not doc:
            return f"#{fragment}"
        key = (doc, fragment)
        if key not in self.names:
            part = _pointed(self.docs[doc], fragment, doc)
            path = urlsplit(doc).path if _is_url(doc) else doc
            stem = posixpath.splitext(posixpath.basename(path))[0]
            last = fragment.rstrip("/").rsplit("/", 1)[-1] if fragment.strip("/") else stem
            self.names[key] = name = self._free(_NOT_NAME.sub("_", _unescape(last)) or "Ref")
            self.defs[name] = {}  # taken before the part is rewritten: it may refer to itself
            self.defs[name] = self.rewrite(part, doc)
        return f"#/$defs/{self.names[key]}"

    def _free(self, name: str) -> str:
        candidate, n = name, 2
        while candidate in self.taken:
            candidate, n = f"{name}{n}", n + 1
        self.taken.add(candidate)
        return candidate


def _is_url(doc: str) -> bool:
    """Whether a document's key is a URL (fetched) rather than a path (a file)."""
    return urlsplit(doc).scheme.lower() in _REMOTE


def _unescape(token: str) -> str:
    return unquote(token).replace("~1", "/").replace("~0", "~")


def _pointed(document: object, fragment: str, doc: str) -> object:
    """The part of `document` a JSON pointer fragment names (`/definitions/Address`)."""
    if fragment and not fragment.startswith("/"):
        raise RefError(
            f"$ref to {doc}#{fragment}: esgen follows JSON pointers ('#/definitions/...') "
            "into other files, not anchors"
        )
    node = document
    for token in fragment.split("/")[1:] if fragment else []:
        token = _unescape(token)
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            raise RefError(f"$ref to {doc}#{fragment}: {doc} has nothing at {fragment}", "E304")
    return node
