"""The catalog changes only where the schema did, so a docs diff shows the change itself.

Each case builds the catalog of a copy of a schema with events across aggregates and
contexts, adds one optional field to one event somewhere in the middle of a file (so the
lines after it move), builds again, and checks every changed line of every catalog file:
it must lie in that event's own section of its context page or of the HTML page, and
every added line must name the new field. A line number, a count or a shared list
anywhere else in the catalog would put a changed line outside that section.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from harness_docs import CASES, catalog_files, run_docs

SCHEMAS = CASES / "two_contexts" / "schemas"


@dataclass(frozen=True)
class AddField:
    name: str
    file: str  # relative to the schema folder
    old: str  # text of the file to replace, found exactly once
    new: str
    context: str
    event: str
    field: str

    @property
    def anchor(self) -> str:
        return f"{self.context}-event-{self.event}"


ADDITIONS = [
    AddField(
        "between_two_fields_of_a_one_version_event",
        "bank.yaml",
        "      MoneyDeposited:\n"
        "        versions:\n"
        "          1:\n"
        "            fields:\n"
        "              amount: Money\n",
        "      MoneyDeposited:\n"
        "        versions:\n"
        "          1:\n"
        "            fields:\n"
        "              amount: Money\n"
        "              memo: {type: str, optional: true}\n",
        "bank",
        "MoneyDeposited",
        "memo",
    ),
    AddField(
        "to_the_newest_version_of_an_evolved_event",
        "bank.yaml",
        "              currency: {type: str, default: EUR}\n",
        "              currency: {type: str, default: EUR}\n"
        "              referrer:\n"
        "                type: str\n"
        "                optional: true\n"
        "                description: Who sent the customer, when anyone did.\n",
        "bank",
        "AccountOpened",
        "referrer",
    ),
    AddField(
        "in_one_file_of_a_context_spread_over_several",
        "orders/shipment.yaml",
        "      Shipped: {versions: {1: {fields: {carrier: str}}}}\n",
        "      Shipped:\n"
        "        versions:\n"
        "          1:\n"
        "            fields:\n"
        "              carrier: str\n"
        "              tracking_code: {type: str, optional: true, max_length: 40}\n",
        "orders",
        "Shipped",
        "tracking_code",
    ),
]


def _sections_md(lines: list[str]) -> list[str | None]:
    """The anchor of the entry each line of a Markdown page belongs to."""
    current: str | None = None
    owners = []
    for line in lines:
        match = re.fullmatch(r'<a id="([^"]+)"></a>', line)
        if match:
            current = match.group(1)
        owners.append(current)
    return owners


def _sections_html(lines: list[str]) -> list[str | None]:
    """The id of the innermost <section> each line of the HTML page is in."""
    stack: list[str] = []
    owners: list[str | None] = []
    for line in lines:
        match = re.match(r'<section class="[^"]+" id="([^"]+)">', line)
        if match:
            stack.append(match.group(1))
        owners.append(stack[-1] if stack else None)
        if line == "</section>":
            stack.pop()
    return owners


Sections = Callable[[list[str]], list[str | None]]
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@", re.MULTILINE)


def _changed(
    old: str, new: str, sections: Sections, workdir: Path
) -> list[tuple[str, str, str | None]]:
    """(sign, line, the section it is in) for every line git's diff removes or adds: the
    lines a reviewer is shown."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "old").write_text(old)
    (workdir / "new").write_text(new)
    diff = subprocess.run(
        ["git", "diff", "--no-index", "--no-color", "--unified=0", "old", "new"],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
    )
    assert diff.returncode in (0, 1), diff.stderr
    before, after = old.splitlines(), new.splitlines()
    owners_before, owners_after = sections(before), sections(after)
    changed = []
    for match in _HUNK.finditer(diff.stdout):
        start, count = int(match.group(1)), int(match.group(2) or 1)
        # A count of 0 names the line before the hunk: nothing removed.
        changed += [("-", before[i - 1], owners_before[i - 1]) for i in range(start, start + count)]
        start, count = int(match.group(3)), int(match.group(4) or 1)
        changed += [("+", after[i - 1], owners_after[i - 1]) for i in range(start, start + count)]
    return changed


def _build(project: Path) -> dict[str, str]:
    code, _, err = run_docs(project, "schemas")
    assert code == 0, err
    return catalog_files(project / "docs")


@pytest.mark.parametrize("addition", ADDITIONS, ids=[a.name for a in ADDITIONS])
def test_one_optional_field_changes_only_the_lines_of_its_event(
    addition: AddField, tmp_path: Path
) -> None:
    shutil.copytree(SCHEMAS, tmp_path / "schemas")
    before = _build(tmp_path)
    schema = tmp_path / "schemas" / addition.file
    text = schema.read_text()
    assert text.count(addition.old) == 1, "the case no longer matches its schema"
    # In the middle of the file, so the entries after it move down.
    assert text[text.index(addition.old) + len(addition.old) :].count("\n") >= 5
    schema.write_text(text.replace(addition.old, addition.new))
    after = _build(tmp_path)

    page = f"{addition.context}.md"
    changed_files = sorted(name for name in after if before.get(name) != after[name])
    assert sorted(before) == sorted(after), "no file appears or goes"
    assert changed_files == sorted([page, "catalog.html"])
    for name, sections in ((page, _sections_md), ("catalog.html", _sections_html)):
        changed = _changed(before[name], after[name], sections, tmp_path / "diff" / name)
        assert any(sign == "+" for sign, _, _ in changed)
        outside = [(s, line) for s, line, owner in changed if owner != addition.anchor]
        assert not outside, f"{name}: lines changed outside {addition.anchor}: {outside}"
        unnamed = [line for s, line, _ in changed if s == "+" and addition.field not in line]
        assert not unnamed, f"{name}: added lines that are not about {addition.field}"


def test_the_catalog_names_schema_files_without_line_numbers(tmp_path: Path) -> None:
    shutil.copytree(SCHEMAS, tmp_path / "schemas")
    files = _build(tmp_path)
    assert "Defined in [schemas/bank.yaml](../schemas/bank.yaml)." in files["bank.md"]
    for name, text in files.items():
        assert not re.search(r"\.yaml(:\d|#L\d)", text), name


def test_a_new_event_adds_lines_and_rewrites_none_outside_the_context(tmp_path: Path) -> None:
    """An added event is new lines in lists (contents, the aggregate's events, Mermaid
    nodes and edges), not a rewritten shared line; the other context, the index and the
    .gitattributes do not change."""
    shutil.copytree(SCHEMAS, tmp_path / "schemas")
    before = _build(tmp_path)
    schema = tmp_path / "schemas" / "bank.yaml"
    text = schema.read_text()
    text = text.replace(
        "      TransferFailed:\n",
        "      TransferCancelled:\n"
        "        versions:\n"
        "          1:\n"
        "            fields:\n"
        "              transfer_id: uuid\n"
        "      TransferFailed:\n",
    ).replace("emits: [TransferFailed]", "emits: [TransferFailed, TransferCancelled]")
    schema.write_text(text)
    after = _build(tmp_path)

    changed_files = sorted(name for name in after if before.get(name) != after[name])
    assert changed_files == ["bank.md", "catalog.html"]
    md = _changed(before["bank.md"], after["bank.md"], _sections_md, tmp_path / "diff")
    removed = [(line, owner) for sign, line, owner in md if sign == "-"]
    # Only the line of the command that now emits it is rewritten; everything else is added.
    assert len(removed) == 1 and removed[0][1] == "bank-command-FailTransfer", removed
    added = [line for sign, line, _ in md if sign == "+"]
    assert "- [TransferCancelled](#bank-event-TransferCancelled)" in added
    assert '    evt_TransferCancelled(["TransferCancelled"]):::event' in added
    assert "    agg_Transfer --> evt_TransferCancelled" in added
    concerned = {
        "bank-flow",
        "bank-aggregate-Transfer",
        "bank-command-FailTransfer",
        "bank-event-TransferCancelled",
    }
    outside = [line for _, line, owner in md if owner not in concerned and line]
    assert not outside, outside

    html = _changed(
        before["catalog.html"], after["catalog.html"], _sections_html, tmp_path / "html"
    )
    nav = [line for _, line, owner in html if owner is None]
    assert nav == ['<li><a href="#bank-event-TransferCancelled">TransferCancelled</a></li>']
    # Directly in the context's section: only the drawing of its flow, redrawn.
    drawing = [line for _, line, owner in html if owner == "bank-context"]
    assert drawing and all(
        line.startswith(("<svg ", "<path ", '<a class="node ', '<text class="column"'))
        for line in drawing
    ), drawing
    outside = [line for _, line, owner in html if owner not in {*concerned, "bank-context", None}]
    assert not outside, outside
