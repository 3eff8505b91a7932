"""Remote `$ref`s in json_schema files: refused unless `json_schema_remote_refs = true`;
then esgen fetches them itself (bounded, http(s) only) from a real server on loopback."""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from esgen.schema._jsonbundle import RefError
from esgen.schema._jsonremote import Fetcher

EXIT_SCHEMA = 1

SHOP = """context: json_shop
types:
  Address: {json_schema: address.json}
aggregates:
  Customer:
    events:
      CustomerMoved:
        versions:
          1: {fields: {address: Address}}
"""
REMOTE_ADDRESS = """{
  "definitions": {
    "Address": {
      "type": "object",
      "properties": {
        "street": {"type": "string"},
        "remote_only_field": {"type": "integer"},
        "country": {"$ref": "common/country.json#/definitions/Country"}
      }
    }
  }
}"""
COUNTRY = '{"definitions": {"Country": {"type": "string", "minLength": 2, "maxLength": 2}}}'


class _Handler(http.server.SimpleHTTPRequestHandler):
    seen: list[str]

    def do_GET(self) -> None:
        self.seen.append(self.path)
        if self.path == "/to-file":
            self.send_response(302)
            self.send_header("Location", "file:///etc/passwd")
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: pytest shows what the tests assert


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    """An HTTP server on a loopback port serving a folder: (base URL, folder, paths asked)."""
    folder = tmp_path / "served"
    (folder / "common").mkdir(parents=True)
    (folder / "address.json").write_text(REMOTE_ADDRESS)
    (folder / "common" / "country.json").write_text(COUNTRY)
    (folder / "page.json").write_text("<html>not JSON</html>")
    seen: list[str] = []
    handler = type("Handler", (_Handler,), {"seen": seen})

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(folder))
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", folder, seen
    finally:
        httpd.shutdown()
        httpd.server_close()


def project(tmp_path: Path, ref: str, *, allowed: bool) -> Path:
    root = tmp_path / "project"
    (root / "schemas").mkdir(parents=True)
    setting = "json_schema_remote_refs = true\n" if allowed else ""
    (root / "pyproject.toml").write_text(
        f'[project]\nname = "demo"\n\n[tool.esgen]\nformatter = "none"\n{setting}'
    )
    (root / "schemas" / "shop.yaml").write_text(SHOP)
    (root / "schemas" / "address.json").write_text(
        f'{{"type": "object", "properties": {{"home": {{"$ref": "{ref}"}}}}}}'
    )
    return root


def esgen(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["ESGEN_CACHE_DIR"] = str(cwd.parent / "cache")
    return subprocess.run(
        [sys.executable, "-m", "esgen", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_remote_ref_is_refused_without_the_setting(
    tmp_path: Path, server: tuple[str, Path, list[str]]
) -> None:
    base, _, seen = server
    ref = f"{base}/address.json#/definitions/Address"
    root = project(tmp_path, ref, allowed=False)
    result = esgen(root, "generate")
    assert result.returncode == EXIT_SCHEMA, result.stderr
    assert f"schemas/shop.yaml:3:26: error[E306]: address.json: $ref {ref!r} is remote" in (
        result.stderr
    )
    assert "json_schema_remote_refs = true" in result.stderr
    assert not (root / "src").exists()
    assert seen == []  # nothing was fetched


def test_with_the_setting_the_remote_document_is_bundled_and_locked(
    tmp_path: Path, server: tuple[str, Path, list[str]]
) -> None:
    base, folder, seen = server
    root = project(tmp_path, f"{base}/address.json#/definitions/Address", allowed=True)
    result = esgen(root, "generate")
    assert result.returncode == 0, result.stderr
    module = (root / "src" / "json_shop" / "_json_types" / "address.py").read_text()
    assert "remote_only_field" in module and "street" in module
    # The fetched document's own relative $ref resolved against its URL, on the server.
    assert "min_length=2" in module
    assert sorted(seen) == ["/address.json", "/common/country.json"]
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    assert warnings == [
        f"esgen: warning: the output depends on the remote document {base}/address.json "
        "(json_schema_remote_refs = true): it changes when that document does; copy the "
        "file into the project and refer to it by a relative path to pin it",
        f"esgen: warning: the output depends on the remote document "
        f"{base}/common/country.json (json_schema_remote_refs = true): it changes when that "
        "document does; copy the file into the project and refer to it by a relative path "
        "to pin it",
    ]
    locked = esgen(root, "lock")
    assert locked.returncode == 0, locked.stderr
    assert "remote_only_field" in (root / "esgen.lock").read_text()
    # The run cache cannot see a remote change: the next run fetches again, and sees it.
    (folder / "address.json").write_text(REMOTE_ADDRESS.replace("remote_only_field", "moved"))
    again = esgen(root, "generate", "--check")
    assert again.returncode == EXIT_SCHEMA, again.stderr
    assert "address.py" in again.stderr
    compat = esgen(root, "lock", "--check")
    assert compat.returncode != 0, compat.stdout + compat.stderr


@pytest.mark.parametrize(
    ("path", "said"),
    [
        ("/missing.json", "HTTP 404"),
        ("/page.json", "the answer is not JSON: Expecting value at line 1 column 1"),
        ("/to-file", "HTTP 302 Found - Redirection to url 'file:///etc/passwd' is not allowed"),
    ],
)
def test_a_remote_document_that_cannot_be_fetched_is_located(
    tmp_path: Path, server: tuple[str, Path, list[str]], path: str, said: str
) -> None:
    base, _, _ = server
    ref = f"{base}{path}#/definitions/Address"
    root = project(tmp_path, ref, allowed=True)
    result = esgen(root, "generate")
    assert result.returncode == EXIT_SCHEMA, result.stderr
    assert (
        f"schemas/shop.yaml:3:26: error[E304]: address.json: $ref {ref!r}: fetching "
        f"{base}{path} failed: {said}"
    ) in result.stderr
    assert "root:" not in result.stderr  # /etc/passwd was not read
    assert not (root / "src").exists()


@pytest.mark.parametrize("inner", ["file:///etc/passwd", "/etc/passwd", "C:/Windows/x.json"])
def test_a_remote_document_may_not_name_a_file_of_this_machine(
    tmp_path: Path, server: tuple[str, Path, list[str]], inner: str
) -> None:
    base, folder, _ = server
    (folder / "address.json").write_text(REMOTE_ADDRESS.replace("common/country.json", inner))
    ref = f"{base}/address.json#/definitions/Address"
    root = project(tmp_path, ref, allowed=True)
    result = esgen(root, "generate")
    assert result.returncode == EXIT_SCHEMA, result.stderr
    assert (
        f"error[E306]: address.json: $ref '{inner}#/definitions/Country' in "
        f"{base}/address.json: a fetched document may name other documents only by a "
        "relative path or an http(s) URL, never a file of this machine"
    ) in result.stderr
    assert "root:" not in result.stderr
    assert not (root / "src").exists()


def test_a_remote_document_over_the_size_cap_is_refused(
    server: tuple[str, Path, list[str]],
) -> None:
    base, _, _ = server
    with pytest.raises(RefError, match=r"larger than 10 bytes") as caught:
        Fetcher(max_bytes=10)("x.json", f"{base}/address.json")
    assert caught.value.code == "E304"
    assert f"$ref 'x.json': fetching {base}/address.json failed" in str(caught.value)
