"""Fetching the JSON documents that http(s) `$ref`s name, when the project allows it.

Only with `json_schema_remote_refs = true` (see `esgen.config`): the fetched text lands in
generated code and in the lock, so by default a remote `$ref` is refused. esgen fetches
the document itself, with the standard library, and bundles it like a local file (see
`_jsonbundle`), so datamodel-code-generator never touches the network. The fetch is
bounded: http and https only (a redirect may not leave them, nor go from https to http),
a timeout, and a size cap.
"""

from __future__ import annotations

import json
import urllib.request
from http.client import HTTPException, HTTPMessage
from typing import IO
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit

from esgen.schema._jsonbundle import RefError

__all__ = ["MAX_BYTES", "TIMEOUT", "Fetcher"]

TIMEOUT = 10.0  # seconds, per request: a hung server must not hang `esgen generate`
MAX_BYTES = 5 * 1024 * 1024


class _Redirects(urllib.request.HTTPRedirectHandler):
    """Redirects within http(s) only, and never from https down to http."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        old, new = urlsplit(req.full_url).scheme, urlsplit(newurl).scheme.lower()
        if new not in ("http", "https") or (old == "https" and new == "http"):
            raise HTTPError(
                req.full_url,
                code,
                f"redirected to {newurl}, which esgen does not follow",
                headers,
                fp,
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _opener() -> urllib.request.OpenerDirector:
    # Not build_opener: it adds handlers for file:, ftp: and data: URLs.
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler(),  # the environment's proxies, as any HTTP client
        urllib.request.HTTPHandler(),
        urllib.request.HTTPSHandler(),
        _Redirects(),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    return opener


class Fetcher:
    """Fetches each URL once per run (every type that names it sees the same text) and
    remembers which it fetched, for the warning that the output depends on them."""

    def __init__(self, timeout: float = TIMEOUT, max_bytes: int = MAX_BYTES) -> None:
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.documents: dict[str, object] = {}
        self._opener = _opener()

    def __call__(self, ref: str, url: str) -> object:
        """The parsed JSON at `url` (named by the `$ref` `ref`); RefError (E304) on any
        failure, naming both."""
        if url not in self.documents:
            self.documents[url] = self._fetch(ref, url)
        return self.documents[url]

    def _fetch(self, ref: str, url: str) -> object:
        def failed(why: str) -> RefError:
            return RefError(f"$ref {ref!r}: fetching {url} failed: {why}", "E304")

        if urlsplit(url).scheme not in ("http", "https"):  # bundle() sends no other
            raise failed("esgen fetches http and https URLs only")
        request = urllib.request.Request(url, headers={"Accept": "application/json"})
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                data = response.read(self.max_bytes + 1)
        except HTTPError as exc:
            raise failed(f"HTTP {exc.code} {exc.reason}") from None
        except URLError as exc:
            raise failed(str(exc.reason)) from None
        except TimeoutError:
            raise failed(f"no answer within {self.timeout:g} s") from None
        except (OSError, HTTPException, ValueError) as exc:
            raise failed(str(exc) or type(exc).__name__) from None
        if len(data) > self.max_bytes:
            raise failed(f"the document is larger than {_size(self.max_bytes)}")
        try:
            return json.loads(data)
        except UnicodeDecodeError:
            raise failed("the answer is not UTF-8 text") from None
        except json.JSONDecodeError as exc:
            raise failed(
                f"the answer is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            ) from None


def _size(n: int) -> str:
    mb = 1024 * 1024
    return f"{n // mb} MB" if n % mb == 0 else f"{n} bytes"
