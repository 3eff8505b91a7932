"""Schema text in the catalog is text: never markup in Markdown, Mermaid or HTML.

The Markdown is rendered by a CommonMark parser with tables (as GitHub does) and the
HTML page is parsed, and in both the hostile descriptions must come out as the very
text they are, and nothing else.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml
from harness_docs import CASES
from markdown_it import MarkdownIt

from esgen.docs._escape import md_cell_code, md_code, md_text, mermaid_label

HOSTILE = CASES / "hostile"
SCHEMA = yaml.safe_load((HOSTILE / "schemas" / "hostile.yaml").read_text())
THING = SCHEMA["aggregates"]["Thing"]
DESCRIPTIONS = [
    SCHEMA["description"],
    THING["description"],
    THING["commands"]["MakeThing"]["description"],
    THING["events"]["ThingMade"]["versions"][1]["description"],
    THING["events"]["ThingMade"]["versions"][1]["fields"]["label"]["description"],
    SCHEMA["projections"]["Things"]["description"],
    SCHEMA["projections"]["Things"]["fields"]["label"]["description"],
    SCHEMA["sagas"]["Follow"]["description"],
]
CODE = [
    THING["commands"]["MakeThing"]["fields"]["label"]["pattern"],
    '"`|<script>|`"',  # a default, shown as JSON
    *SCHEMA["types"]["Tag"]["enum"],
]


def _markdown_html(name: str) -> str:
    return MarkdownIt("commonmark").enable("table").render((HOSTILE / "docs" / name).read_text())


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.code: list[str] = []
        self._in_code = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_code += tag == "code"

    def handle_endtag(self, tag: str) -> None:
        self._in_code -= tag == "code" and self._in_code > 0

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._in_code:
            self.code.append(data)

    def handle_comment(self, data: str) -> None:
        self.tags.append(("!--", {"text": data}))


def _parse(markup: str) -> _Collect:
    parser = _Collect()
    parser.feed(markup)
    parser.close()
    return parser


def _flat(text: str) -> str:
    return " ".join(text.split())


def _assert_only_text(parsed: _Collect) -> None:
    tags = {tag for tag, _ in parsed.tags}
    assert not tags & {"script", "img", "b", "em", "del", "s", "ol", "iframe"}, tags
    assert sum(tag == "h1" for tag, _ in parsed.tags) == 1, "a description became a heading"
    hrefs = [attrs["href"] or "" for tag, attrs in parsed.tags if tag == "a" and "href" in attrs]
    assert all(
        h.startswith(("#", "../", "index.md", "catalog.html", "hostile.md"))
        or h == "hostile.asyncapi.yaml"
        for h in hrefs
    ), hrefs
    assert not any(key.startswith("on") for _, attrs in parsed.tags for key in attrs)


@pytest.mark.parametrize("page", ["hostile.md", "index.md"])
def test_markdown_shows_descriptions_as_text(page: str) -> None:
    parsed = _parse(_markdown_html(page))
    _assert_only_text(parsed)
    text = _flat("".join(parsed.text))
    shown = DESCRIPTIONS if page == "hostile.md" else DESCRIPTIONS[:1]
    for description in shown:
        for paragraph in re.split(r"\n\s*\n", description):
            assert _flat(paragraph) in text, paragraph


def test_markdown_tables_keep_their_columns() -> None:
    rendered = _markdown_html("hostile.md")
    for table in re.findall(r"<table>.*?</table>", rendered, re.S):
        rows = re.findall(r"<tr>(.*?)</tr>", table, re.S)
        widths = {len(re.findall(r"<t[hd][ >]", row)) for row in rows}
        assert len(widths) == 1, table


def test_markdown_shows_patterns_defaults_and_values_as_code() -> None:
    parsed = _parse(_markdown_html("hostile.md"))
    for code in CODE:
        assert code in parsed.code, code


def test_html_page_shows_descriptions_as_text() -> None:
    markup = (HOSTILE / "docs" / "catalog.html").read_text()
    parsed = _parse(markup)
    _assert_only_text(parsed)
    comments = [attrs["text"] for tag, attrs in parsed.tags if tag == "!--"]
    assert len(comments) == 1 and "DO NOT EDIT" in (comments[0] or "")
    text = _flat("".join(parsed.text))  # the parser has decoded the entities
    for description in DESCRIPTIONS:
        for paragraph in re.split(r"\n\s*\n", description):
            assert _flat(paragraph) in text, paragraph
    for code in CODE:
        assert code in parsed.code, code


@pytest.mark.parametrize(
    "text",
    ["plain", "a|b", "`tick`", "``double``", " padded ", "<script>", "new\nline"],
)
def test_code_spans_show_exactly_their_text(text: str) -> None:
    expected = text.replace("\n", "\\n")
    for span, source in ((md_code(text), "{}"), (md_cell_code(text), "| x |\n| - |\n| {} |")):
        rendered = MarkdownIt("commonmark").enable("table").render(source.format(span))
        (code,) = _parse(rendered).code or [""]
        assert code == expected, (span, rendered)


@pytest.mark.parametrize(
    "text", ["# heading", "- item", "+ item", "1. first", "2) second", "=== ", "*a* _b_ ~c~"]
)
def test_text_never_starts_a_block_or_emphasis(text: str) -> None:
    rendered = MarkdownIt("commonmark").enable("table").render(md_text(text))
    assert rendered == f"<p>{html.escape(text.strip(), quote=False)}</p>\n"


def test_mermaid_labels_hold_no_syntax() -> None:
    label = mermaid_label('a"b]<script>|-->;%%end')
    assert label.startswith('"') and label.endswith('"')
    assert re.fullmatch(r'"[A-Za-z0-9 _.#;-]*"', label), label
    assert "<" not in label and "|" not in label and label.count('"') == 2


def test_the_catalog_files_say_they_are_generated() -> None:
    for path in sorted(Path(HOSTILE / "docs").iterdir()):
        head = path.read_text().split("\n", 2)[:2]
        if path.name == ".gitattributes":  # in its own comment syntax
            assert head[0] == "# Code generated by esgen docs. DO NOT EDIT."
            continue
        if path.suffix == ".yaml":  # the AsyncAPI document, in YAML's comments
            assert head[0] == "# Code generated by esgen from schemas/hostile.yaml. DO NOT EDIT."
            continue
        assert any(line.startswith("<!-- Code generated by esgen") for line in head), path
