"""`esgen generate` and `esgen compat` apply one rule to version steps (ES201-ES204).

A step that needs code to read stored events, or that may lose them, is refused by the
generator with the same code, place and words compat reports it with; once the version
says `upcast: manual` (or `renamed_from`, `dropped`), both accept it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from harness import chdir

from compat.cases import CASES, CompatCase, compat_cases
from esgen.compat import check, current_side, directory_side
from esgen.schema import SchemaError, load_schema_dir, upcast_diagnostics

STEP_RULES = {"ES201", "ES202", "ES203", "ES204"}


def _loading_cases() -> list[CompatCase]:
    """Cases whose current side loads: one that does not is compared by neither command."""
    loading = []
    for case in compat_cases():
        with chdir(case.root):
            try:
                load_schema_dir(Path("current"))
            except SchemaError:
                continue
        loading.append(case)
    return loading


@pytest.mark.parametrize("case", _loading_cases(), ids=lambda c: c.name)
def test_every_step_finding_of_compat_is_refused_by_generate(case: CompatCase) -> None:
    with chdir(case.root):
        schema = load_schema_dir(Path("current"))
        report = check(directory_side(Path("previous")), current_side(Path("current")))
        generated = {(d.code, str(d.location)): d.message for d in upcast_diagnostics(schema)}
        # compat also holds a step to the mode the previous side promised, on purpose (a
        # change may not switch off its own check); the generator knows the schema only.
        modes = {(c.name, e.name): e.compatibility for c in schema.contexts for e in c.events}
        found = [
            f
            for f in report.findings
            if f.rule in STEP_RULES and modes[(f.hit.context, f.hit.name)] in ("backward", "full")
        ]
        for finding in found:
            key = (finding.rule, str(finding.hit.new))
            assert key in generated, f"compat reports {key}, generate does not"
            assert finding.hit.message in generated[key]
            assert (finding.hit.fix or "") in generated[key]


SCHEMA = """\
context: shop
aggregates:
  Order:
    commands:
      PlaceOrder: {fields: {customer: str}, emits: [OrderPlaced]}
    events:
      OrderPlaced:
        versions:
          1: {fields: {customer: str}}
          2: {fields: {customer: str, channel: str}}
"""


def _esgen(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "esgen", *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)


def test_generate_and_compat_say_the_same_until_the_schema_asks_for_an_upcaster(
    tmp_path: Path,
) -> None:
    previous = tmp_path / "previous"
    current = tmp_path / "schemas"
    previous.mkdir()
    current.mkdir()
    (previous / "shop.yaml").write_text(
        SCHEMA.replace("          2: {fields: {customer: str, channel: str}}\n", "")
    )
    (current / "shop.yaml").write_text(SCHEMA)

    refused = _esgen(tmp_path, "generate", "schemas", "--out", "src")
    assert refused.returncode == 1
    first = refused.stderr.splitlines()[0]
    assert first.startswith("schemas/shop.yaml:10:39: error[ES201]: OrderPlaced version 2, ")
    assert "set `upcast: manual` on version 2" in first
    assert not (tmp_path / "src").exists(), "nothing is written when generate refuses"

    reported = _esgen(tmp_path, "compat", "schemas", "--against", "previous")
    assert reported.returncode == 3
    assert reported.stdout.startswith("schemas/shop.yaml:10:39: error[ES201]: ")

    (current / "shop.yaml").write_text(
        SCHEMA.replace("channel: str}}", "channel: str}, upcast: manual}")
    )
    generated = _esgen(tmp_path, "generate", "schemas", "--out", "src")
    assert generated.returncode == 0, generated.stderr
    assert (tmp_path / "src/shop/domain/upcasting/order_placed_v1.py").exists()
    assert _esgen(tmp_path, "compat", "schemas", "--against", "previous").returncode == 0


def test_a_rename_without_renamed_from_is_refused_until_the_version_says_which(
    tmp_path: Path,
) -> None:
    shutil.copytree(CASES / "optional_field_renamed" / "current", tmp_path / "schemas")
    refused = _esgen(tmp_path, "generate", "schemas", "--out", "src")
    assert refused.returncode == 1
    codes = [line.split("error[", 1)[1][:5] for line in refused.stderr.splitlines()[:-1]]
    assert codes == ["ES204"] * 4, refused.stderr
    path = tmp_path / "schemas" / "cargo.yaml"
    text = path.read_text()
    text = text.replace(
        "2: {fields: {voyage: {type: str, optional: true}}}",
        "2: {fields: {voyage: {type: str, optional: true, renamed_from: voyage_number}}}",
    )
    text = text.replace(
        "2: {fields: {shipper: {type: str, default: unknown}}}",
        "2: {dropped: [carrier], fields: {shipper: {type: str, default: unknown}}}",
    )
    text = text.replace(
        '2: {fields: {weight: {type: decimal, default: "0"}}}',
        '2: {fields: {weight: {type: decimal, default: "0"}}, upcast: manual}',
    )
    text = text.replace(
        "2: {fields: {ref: {type: str, renamed_from: old_ref}}}",
        "2: {dropped: [ref], fields: {ref: {type: str, renamed_from: old_ref}}}",
    )
    path.write_text(text)
    generated = _esgen(tmp_path, "generate", "schemas", "--out", "src")
    assert generated.returncode == 0, generated.stderr
    upcasters = (tmp_path / "src/cargo/upcasters/shipment.py").read_text()
    assert '"voyage": data["voyage_number"],' in upcasters
    # The dropped 'ref' is left out, and 'old_ref' takes its place.
    referenced = upcasters.split("def referenced_v1_to_v2", 1)[1].split("\ndef ", 1)[0]
    assert '"ref": data["old_ref"],' in referenced
    assert 'data["ref"]' not in referenced


@pytest.mark.parametrize(
    ("dropped", "message"),
    [
        ("[nope]", "dropped 'nope' names no field of version 1"),
        ("[voyage_number, voyage_number]", "is listed twice"),
        ("[voyage]", "dropped 'voyage', but the version still has that field"),
    ],
)
def test_dropped_names_a_field_the_previous_version_had(
    tmp_path: Path, dropped: str, message: str
) -> None:
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    (schemas / "cargo.yaml").write_text(
        "context: cargo\naggregates:\n  Shipment:\n    events:\n      VoyageAssigned:\n"
        "        versions:\n          1: {fields: {voyage_number: str}}\n"
        f"          2: {{dropped: {dropped}, fields: {{voyage: {{type: str, optional: true}}}}}}\n"
    )
    result = _esgen(tmp_path, "generate", "schemas", "--out", "src")
    assert result.returncode == 1
    assert result.stderr.startswith("schemas/cargo.yaml:8:"), result.stderr
    assert "error[E" in result.stderr and message in result.stderr
