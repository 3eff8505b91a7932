"""The AsyncAPI document of a context's published events: it says what the relay sends
(subjects and headers from the wire contract, payloads as the generated models write them)
and it is a catalog file like the others (planned, checked, removed when stale).

The official parser's verdict on the documents is in tests/asyncapi.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from harness import chdir
from harness_docs import CASES, run_docs

from esgen.cli import main
from esgen.codegen import Status
from esgen.docs import plan_docs
from esgen.runtime import _integration as wire_contract
from esgen.runtime._integration import H_CORRELATION_ID, Wire, message_headers
from esgen.runtime._records import RecordedEvent

PUBLISHED = CASES / "published" / "schemas"
DOCUMENT = "shop.asyncapi.yaml"


def _document(folder: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((folder / DOCUMENT).read_text(encoding="utf-8"))
    return loaded


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    """A copy of the golden case's schemas, its catalog written beside them."""
    shutil.copytree(PUBLISHED, tmp_path / "schemas")
    code, _, stderr = run_docs(tmp_path, "schemas")
    assert code == 0, stderr
    return tmp_path


def _message_headers(recorded: RecordedEvent) -> dict[str, str]:
    return message_headers("shop", "Order", recorded, 3)


def _recorded(metadata: dict[str, str]) -> RecordedEvent:
    from datetime import UTC, datetime
    from uuid import uuid4

    return RecordedEvent(
        position=7,
        stream_id="9f1c",
        stream_version=2,
        event_type="OrderPlaced",
        event_version=1,
        data="{}",
        event_id=uuid4(),
        metadata=metadata,
        recorded_at=datetime.now(UTC),
    )


def test_headers_are_every_header_the_relay_writes(shop: Path) -> None:
    from esgen.runtime._context import CAUSATION_ID, CORRELATION_ID

    document = _document(shop / "docs")
    always = set(_message_headers(_recorded({})))
    every = set(_message_headers(_recorded({CORRELATION_ID: "c", CAUSATION_ID: "d"})))
    # Dead-letter headers are added by consumers, never by the publisher.
    named = {
        value
        for name, value in vars(wire_contract).items()
        if name.startswith("H_") and name not in ("H_DEAD_LETTER_REASON", "H_ORIGINAL_SUBJECT")
    }
    assert named == every
    messages = document["components"]["messages"]
    assert len(messages) == 3 + 1 + 1  # OrderPlaced v1-v3, OrderCancelled, PriceMeasured
    for message_id, message in messages.items():
        headers = message["headers"]
        assert set(headers["properties"]) == every, message_id
        assert set(headers["required"]) == always, message_id
        version = re.fullmatch(r"[A-Za-z]+V(\d+)", message_id)
        assert version is not None
        fixed = {name: schema.get("const") for name, schema in headers["properties"].items()}
        assert fixed["Esgen-Event-Version"] == version.group(1)
        assert fixed["Esgen-Event-Type"] == message["name"]
        assert fixed["Esgen-Context"] == "shop"
        assert message["contentType"] == "application/json"
        assert message["correlationId"] == {"$ref": "#/components/correlationIds/correlation"}
    location = document["components"]["correlationIds"]["correlation"]["location"]
    assert location == f"$message.header#/{H_CORRELATION_ID}"


def test_each_channel_is_the_subject_the_relay_publishes_on(shop: Path) -> None:
    document = _document(shop / "docs")
    wire = Wire("shop")
    expected = {"OrderPlaced": "Order", "OrderCancelled": "Order", "PriceMeasured": "Sensor"}
    assert list(document["channels"]) == list(expected)  # OrderShipped is not published
    for event, aggregate in expected.items():
        address = document["channels"][event]["address"]
        pattern = re.escape(address).replace(re.escape("{partition}"), "(0|[1-9][0-9]*)")
        for stream_id in ("a", "b7", "0f9e-11", "order-42"):
            subject = wire.subject(aggregate, event, stream_id)
            match = re.fullmatch(pattern, subject)
            assert match is not None, (address, subject)
            assert int(match.group(1)) == wire_contract.partition_of(stream_id, wire.partitions)
        operation = document["operations"][f"send{event}"]
        assert operation["action"] == "send"
        assert operation["channel"] == {"$ref": f"#/channels/{event}"}
    assert document["servers"]["nats"]["protocol"] == "nats"
    assert document["servers"]["nats"]["variables"]["host"]["default"] == "127.0.0.1:4222"
    assert "deadletter" not in json.dumps(document)


# Prints, for every event class of the generated package, the JSON Schema pydantic writes
# for it in JSON (serialization) mode. Run in its own process: the package is imported.
_SCHEMAS = """
import importlib, json, pkgutil, sys
sys.path.insert(0, sys.argv[1])
from esgen.runtime import Event
import shop.events as events
out = {}
for info in pkgutil.iter_modules(events.__path__):
    module = importlib.import_module("shop.events." + info.name)
    for value in vars(module).values():
        if isinstance(value, type) and issubclass(value, Event) and "event_type" in vars(value):
            key = value.event_type + "V" + str(value.event_version)
            out[key] = value.model_json_schema(mode="serialization")
print(json.dumps(out))
"""


def _pydantic_form(node: Any) -> Any:
    """A schema with pydantic's titles dropped and its `$defs` read as components."""
    if isinstance(node, dict):
        out = {k: _pydantic_form(v) for k, v in node.items() if k != "title"}
        if isinstance(out.get("$ref"), str):
            out["$ref"] = out["$ref"].replace("#/$defs/", "#/components/schemas/")
        return out
    if isinstance(node, list):
        return [_pydantic_form(v) for v in node]
    return node


def _widened(node: Any) -> Any:
    """The document's schema with its one deliberate narrowing undone: pydantic says an
    allow_nan float may be any string, the document names the three it can be."""
    if isinstance(node, dict):
        if node.get("enum") == ["NaN", "Infinity", "-Infinity"]:
            return {"type": "string"}
        return {k: _widened(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_widened(v) for v in node]
    return node


def test_payloads_are_what_the_generated_models_write(shop: Path) -> None:
    with chdir(shop):
        result = CliRunner().invoke(main, ["generate", "schemas"])
    assert result.exit_code == 0, result.output
    done = subprocess.run(
        [sys.executable, "-c", _SCHEMAS, str(shop / "src")],
        capture_output=True,
        text=True,
        check=True,
    )
    pydantic = json.loads(done.stdout)
    document = _document(shop / "docs")
    messages = document["components"]["messages"]
    assert set(messages) == set(pydantic) - {"OrderShippedV1"}  # not published
    components = document["components"]["schemas"]
    json_types = {"Address", "Country"}  # a json_schema type, embedded as written
    compared = set()
    for message_id, message in messages.items():
        theirs = dict(pydantic[message_id])
        definitions = theirs.pop("$defs", {})
        theirs.pop("description", None)  # the class docstring; messages have their own
        assert _widened(message["payload"]) == _pydantic_form(theirs), message_id
        for name, schema in definitions.items():
            if name in json_types:
                continue
            assert _widened(components[name]) == _pydantic_form(schema), name
            compared.add(name)
    # Value types, enums, nested value types: all compared; an unused type is left out.
    assert compared == {"Money", "Line", "Channel"}
    assert set(components) == compared | {"Address"}


def test_a_json_schema_type_is_embedded_with_its_references_rebased(shop: Path) -> None:
    address = _document(shop / "docs")["components"]["schemas"]["Address"]
    assert "$schema" not in address and "$id" not in address
    assert address["properties"]["country"] == {
        "$ref": "#/components/schemas/Address/$defs/Country"
    }
    assert address["$defs"]["Country"]["pattern"] == "^[A-Z]{2}$"


def test_a_context_that_publishes_nothing_has_no_document(tmp_path: Path) -> None:
    shutil.copytree(CASES / "two_contexts" / "schemas", tmp_path / "schemas")
    code, _, stderr = run_docs(tmp_path, "schemas")
    assert code == 0, stderr
    assert not list((tmp_path / "docs").glob("*.yaml"))
    assert "AsyncAPI" not in (tmp_path / "docs" / "catalog.html").read_text()


def _edit(shop: Path, old: str, new: str) -> None:
    path = shop / "schemas" / "shop.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_the_version_changes_with_the_contract_and_only_with_it(shop: Path) -> None:
    def version() -> str:
        plan = plan_docs(shop / "schemas", shop / "docs")
        change = next(c for c in plan.changes if c.path.name == DOCUMENT)
        assert change.new is not None
        loaded: dict[str, Any] = yaml.safe_load(change.new)
        return str(loaded["info"]["version"])

    first = version()
    assert re.fullmatch(r"[0-9a-f]{12}", first)
    _edit(
        shop,
        "OrderShipped:\n        versions:\n          1: {fields: {carrier: str}}",
        "OrderShipped:\n        versions:\n          1: {fields: {carrier: str, n: int}}",
    )
    assert version() == first  # not published: not part of the contract
    _edit(shop, "weight: {type: float, min: 0", "weight: {type: float, min: 1")
    assert version() != first


def test_the_document_is_planned_like_every_catalog_file(shop: Path) -> None:
    docs = shop / "docs"
    assert (
        (docs / DOCUMENT)
        .read_text()
        .startswith("# Code generated by esgen from schemas/shop.yaml. DO NOT EDIT.\n")
    )
    assert DOCUMENT in (docs / ".gitattributes").read_text()
    # Someone else's YAML in the folder is never touched.
    (docs / "notes.yaml").write_text("# Code generated by esgen, says this file\n")
    # A published field changes: --check says the document is stale.
    _edit(shop, "accepted: {type: bool, default: true}", "accepted: {type: bool, default: false}")
    code, _, stderr = run_docs(shop, "schemas", "--check")
    assert code != 0
    assert f"stale     docs/{DOCUMENT}" in stderr
    # Nothing published any more: the document goes, the notes stay.
    _edit(shop, "publishes: [OrderPlaced, OrderCancelled, PriceMeasured]", "")
    plan = plan_docs(shop / "schemas", docs)
    statuses = {c.path.name: c.status for c in plan.changes}
    assert statuses[DOCUMENT] is Status.REMOVED
    assert "notes.yaml" not in statuses
    code, out, stderr = run_docs(shop, "schemas")
    assert code == 0, stderr
    assert f"removed   docs/{DOCUMENT}" in out
    assert not (docs / DOCUMENT).exists() and (docs / "notes.yaml").is_file()


def test_a_hand_written_file_where_the_document_goes_stops_the_run(tmp_path: Path) -> None:
    shutil.copytree(PUBLISHED, tmp_path / "schemas")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / DOCUMENT).write_text("asyncapi: 3.0.0\n# mine\n")
    code, _, stderr = run_docs(tmp_path, "schemas")
    assert code != 0
    assert f"docs/{DOCUMENT}: error[E600]" in stderr
    assert (tmp_path / "docs" / DOCUMENT).read_text() == "asyncapi: 3.0.0\n# mine\n"


def test_schema_text_reads_back_from_the_yaml_exactly() -> None:
    """Descriptions and values that look like markup, YAML or numbers stay the text they are."""
    document = yaml.safe_load(
        (CASES / "hostile" / "docs" / "hostile.asyncapi.yaml").read_text(encoding="utf-8")
    )
    schema = yaml.safe_load((CASES / "hostile" / "schemas" / "hostile.yaml").read_text())
    tag = document["components"]["schemas"]["Tag"]
    assert tag["description"] == schema["types"]["Tag"]["description"]
    assert tag["enum"] == schema["types"]["Tag"]["enum"]
    assert document["info"]["description"].startswith(schema["description"] + "\n\n")
    message = document["components"]["messages"]["ThingMadeV1"]
    assert message["payload"]["properties"]["label"]["default"] == "`|<script>|`"
    assert isinstance(document["info"]["version"], str)
    assert document["asyncapi"] == "3.0.0"


@pytest.mark.parametrize(
    "text", ["12e3", "0x1F", "0o17", ".inf", "-.5", "true", "No", "null", "~", ""]
)
def test_text_that_yaml_1_2_could_read_as_a_value_is_quoted(text: str) -> None:
    # AsyncAPI tools read YAML 1.2 (js-yaml), where `12e3` is a number: a digest that
    # happens to look like one would no longer be a version string.
    from esgen.docs._render import render_asyncapi

    rendered = render_asyncapi({"value": text}, ("schemas/x.yaml",))
    assert rendered.splitlines()[1] == f"value: '{text}'"
    assert render_asyncapi({"value": "plain text"}, ()).splitlines()[1] == "value: plain text"
