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
from esgen.docs._asyncapi import H_EXPECTED_LAST_MSG_ID
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
    # The relay also sets JetStream's own header, on every message of a window but the first.
    every_sent = every | {H_EXPECTED_LAST_MSG_ID}
    messages = document["components"]["messages"]
    assert len(messages) == 3 + 1 + 1  # OrderPlaced v1-v3, OrderCancelled, PriceMeasured
    for message_id, message in messages.items():
        headers = message["headers"]
        assert set(headers["properties"]) == every_sent, message_id
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


def test_the_relay_s_own_header_is_described_and_optional(shop: Path) -> None:
    from esgen.runtime.nats import _relay

    assert _relay.H_EXPECTED_LAST_MSG_ID == H_EXPECTED_LAST_MSG_ID
    for message in _document(shop / "docs")["components"]["messages"].values():
        headers = message["headers"]
        assert H_EXPECTED_LAST_MSG_ID not in headers["required"]
        described = headers["properties"][H_EXPECTED_LAST_MSG_ID]
        assert described["format"] == "uuid"
        assert "published just before this one" in described["description"]


def test_the_partition_is_described_as_the_stream_id_s(shop: Path) -> None:
    document = _document(shop / "docs")
    for event, aggregate in (("OrderPlaced", "Order"), ("PriceMeasured", "Sensor")):
        text = document["channels"][event]["parameters"]["partition"]["description"]
        assert text.startswith(f"crc32 of the stream id `{aggregate}-<id>` (the Esgen-Stream-Id")
    stream_id = document["components"]["messages"]["OrderPlacedV1"]["headers"]["properties"][
        "Esgen-Stream-Id"
    ]
    assert "`<Aggregate>-<id>`" in stream_id["description"]
    assert "crc32" in stream_id["description"]


def _refs_with_siblings(node: Any, path: str) -> list[str]:
    if isinstance(node, list):
        return [p for i, item in enumerate(node) for p in _refs_with_siblings(item, f"{path}/{i}")]
    if not isinstance(node, dict):
        return []
    found = [path] if "$ref" in node and len(node) > 1 else []
    return found + [p for k, v in node.items() for p in _refs_with_siblings(v, f"{path}/{k}")]


def test_no_reference_has_keywords_beside_it(shop: Path) -> None:
    document = _document(shop / "docs")
    components = document["components"]
    # A json_schema type is embedded as its author wrote it; everything else is esgen's.
    own = {name: s for name, s in components["schemas"].items() if name != "Address"}
    payloads = {m: message["payload"] for m, message in components["messages"].items()}
    assert _refs_with_siblings([own, payloads], "") == []
    # The case does give referenced fields defaults and descriptions: they are still there.
    lines = components["messages"]["OrderPlacedV3"]["payload"]["properties"]
    wrapped = [f for f in lines.values() if "allOf" in f]
    assert wrapped, lines
    assert all({"default", "description"} & set(f) for f in wrapped)


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
        # A field's default and description beside a reference: pydantic writes them next
        # to `$ref`, the document one level up (draft-07 tools ignore `$ref`'s siblings).
        if len(node.get("allOf", ())) == 1 and set(node["allOf"][0]) == {"$ref"}:
            node = {**node["allOf"][0], **{k: v for k, v in node.items() if k != "allOf"}}
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
