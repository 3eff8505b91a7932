"""The trace page (`esgen inspect trace ID --html FILE`) from hand-written traces: its
structure, its determinism, and every string of the trace shown as text, whatever it holds."""

from __future__ import annotations

import copy
import itertools
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from trace_samples import (
    ACCOUNT_A,
    ACCOUNT_B,
    TRANSFER,
    crowded,
    hostile_trace,
    money_transfer,
)

from esgen.docs import render_trace_html

VOID = {"meta", "br", "img", "input", "link", "hr"}
# SVG elements the page writes self-closed.
SELF_CLOSED = {"path", "rect", "line", "circle"}


class Page(HTMLParser):
    """The page's elements, each with its attributes and the ids of the list items
    around it; fails on any tag closed out of order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str], tuple[str, ...]]] = []
        self.stack: list[tuple[str, str]] = []  # (tag, id)
        self.texts: list[tuple[tuple[str, ...], str]] = []  # (open tags, text)
        self.deepest = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        items = tuple(i for t, i in self.stack if t == "li")
        self.elements.append((tag, values, items))
        if tag not in VOID:
            self.stack.append((tag, values.get("id", "")))
            self.deepest = max(self.deepest, len(self.stack))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        assert tag in SELF_CLOSED, tag
        values = {k: v or "" for k, v in attrs}
        self.elements.append((tag, values, tuple(i for t, i in self.stack if t == "li")))

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1][0] == tag, (tag, self.stack[-3:])
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.texts.append((tuple(t for t, _ in self.stack), data))

    def having(self, tag: str, cls: str) -> list[dict[str, str]]:
        return [a for t, a, _ in self.elements if t == tag and cls in a.get("class", "").split()]


def parse(html: str) -> Page:
    page = Page()
    page.feed(html)
    page.close()
    assert page.stack == []
    return page


def events_of(node: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    stack = [node]
    while stack:
        item = stack.pop()
        if item["kind"] == "event":
            found.append(item)
        stack.extend(item["children"])
    return found


def test_the_transfer_shows_one_marker_per_event_one_lane_per_stream_and_the_saga_links() -> None:
    trace = money_transfer()
    page = parse(render_trace_html(trace))
    assert len(page.having("a", "marker")) == 6
    assert sum(1 for t, _, _ in page.elements if t == "circle") == 6
    lanes = [text for tags, text in page.texts if tags[-1:] == ("text",) and "svg" in tags]
    for stream in (TRANSFER, ACCOUNT_A, ACCOUNT_B):
        assert stream in lanes
    assert len(page.having("g", "lane")) == 3
    links = page.having("path", "link")
    # TransferRequested -> MoneyWithdrawn -> DepositRejected -> MoneyRefunded -> TransferFailed
    assert len(links) == 4
    assert all(link["marker-end"] == "url(#trace-arrow)" for link in links)
    titles = [text for tags, text in page.texts if tags[-2:] == ("path", "title")]
    assert titles == [
        "MoneyTransfer sends WithdrawMoney after TransferRequested",
        "MoneyTransfer sends DepositMoney after MoneyWithdrawn",
        "MoneyTransfer sends RefundMoney after DepositRejected",
        "MoneyTransfer sends FailTransfer after MoneyRefunded",
    ]


def test_the_tree_nests_as_the_trace_does() -> None:
    page = parse(render_trace_html(money_transfer()))
    items = {a["id"]: around for t, a, around in page.elements if t == "li" and "id" in a}
    # Commands and events alternate down the saga's chain; the command's second event is
    # a sibling of its first.
    assert items["cmd-1"] == ()
    assert items["ev-1"] == ("cmd-1",)
    assert items["cmd-2"] == ("cmd-1", "ev-1")
    assert items["ev-5"] == (
        "cmd-1",
        "ev-1",
        "cmd-2",
        "ev-2",
        "cmd-3",
        "ev-3",
        "cmd-4",
        "ev-4",
        "cmd-5",
    )
    assert items["ev-6"] == ("cmd-1",)
    markers = [a["href"] for a in page.having("a", "marker")]
    assert markers == [f"#ev-{i}" for i in range(1, 7)]  # each marker leads to its node


def test_the_header_says_what_was_asked_and_found() -> None:
    text = "".join(t for _, t in parse(render_trace_html(money_transfer())).texts)
    for shown in (
        "0b9e7c1e-5f2a-4c8e-9a51-6f3d2b7e4a10",
        "correlation",
        "2026-01-05T09:01:00.000000+00:00",
        "2026-01-05T09:01:00.710000+00:00",
        f"{TRANSFER}, {ACCOUNT_A}, {ACCOUNT_B}",
        "v1 stored, read as v2",
        "teller-7",
        "+0.710 s",
    ):
        assert shown in text, shown


def test_the_same_trace_gives_the_same_bytes() -> None:
    trace = money_transfer()
    first = render_trace_html(trace)
    assert render_trace_html(json.loads(json.dumps(trace))) == first
    # Key order is no part of the input's meaning.
    reordered = json.loads(json.dumps(trace, sort_keys=True))
    assert render_trace_html(reordered) == first
    assert render_trace_html(trace) == first


def circles(html: str) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in re.findall(r'<circle cx="([^"]+)" cy="([^"]+)"', html)]


def test_x_follows_time_and_events_of_one_moment_stay_apart() -> None:
    html = render_trace_html(money_transfer())
    hrefs = [a["href"] for a in parse(html).having("a", "marker")]
    xs = dict(zip(hrefs, (x for x, _ in circles(html)), strict=True))
    # In time order: Requested and Noted at 0 ms (by position), then 150, 380, 560, 710.
    order = ["#ev-1", "#ev-6", "#ev-2", "#ev-3", "#ev-4", "#ev-5"]
    assert [xs[k] for k in order] == sorted(xs.values())
    assert xs["#ev-6"] - xs["#ev-1"] >= 30
    # Proportional where nothing is crowded: 150 -> 380 -> 560 ms.
    a, b, c = xs["#ev-2"], xs["#ev-3"], xs["#ev-4"]
    assert (b - a) / (c - b) == pytest.approx(230 / 180, rel=0.02)


@pytest.mark.parametrize(
    ("last", "span"),
    [
        ("2026-01-05T09:01:00.710000+00:00", "+0.710 s"),
        ("2026-01-05T09:31:00+00:00", "+30.0 min"),
        # 09:01 UTC, the first moment: the latest is now MoneyRefunded's.
        ("2026-01-05T12:01:00+03:00", "+0.560 s"),
        ("2026-01-06T09:01:00+00:00", "+24.0 h"),
        ("9999-12-31T23:59:59.999999-23:59", "+2,912,439.6 days"),
    ],
)
def test_the_axis_says_how_long_the_trace_took(last: str, span: str) -> None:
    trace = money_transfer()
    events = sorted(events_of(trace["roots"][0]), key=lambda e: e["position"])
    events[-1]["recorded_at"] = last
    html = render_trace_html(trace)
    match = re.search(r'text-anchor="end">([^<]*)</text>', html)
    assert match and match[1] == span


@pytest.mark.parametrize("times", ["same", "unreadable", "naive"])
def test_times_that_cannot_space_the_events_leave_them_in_order(times: str) -> None:
    trace = crowded(3, 9, same_time=True)
    for event in events_of(trace["roots"][0]):
        if times == "unreadable":
            event["recorded_at"] = "yesterday, around noon"
        elif times == "naive":
            event["recorded_at"] = f"2026-01-05T09:01:00.{event['position']:06d}"
    html = render_trace_html(trace)
    xs = [x for x, _ in circles(html)]
    assert xs == sorted(xs) and len(set(xs)) == 9  # tree order is position order here
    gaps = {round(b - a, 1) for a, b in itertools.pairwise(xs)}
    assert min(gaps) >= 30
    if times != "naive":
        assert "in the order they were stored" in html


def test_sizes_follow_the_data() -> None:
    small = render_trace_html(crowded(2, 4, same_time=False))
    large = render_trace_html(crowded(30, 200, same_time=False))

    def box(html: str) -> tuple[float, float]:
        match = re.search(r'<svg class="timeline"[^>]* width="([^"]+)" height="([^"]+)"', html)
        assert match
        return float(match[1]), float(match[2])

    (w1, h1), (w2, h2) = box(small), box(large)
    assert h2 - h1 == pytest.approx(28 * 56)
    assert w1 < 1200 and w2 > 200 * 30
    for x, y in circles(large):
        assert 6 <= x <= w2 - 6 and 6 <= y <= h2 - 6
    # Long stream ids are cut in the lane labels, whole in their titles.
    page = parse(large)
    labels = [t for tags, t in page.texts if tags[-2:] == ("g", "text")]
    assert len(labels) == 30 and all(len(label) == 48 and "…" in label for label in labels)
    assert len(set(labels)) == 30  # cut in the middle: the ids' ends tell them apart
    lane_titles = [t for tags, t in page.texts if tags[-2:] == ("g", "title")]
    assert lane_titles[0] == f"Ledger-{'x' * 60}-000"


def test_undecodable_events_are_marked() -> None:
    trace = money_transfer()
    rejected = events_of(trace["roots"][0])
    for event in rejected:
        if event["event_type"] == "DepositRejected":
            event["decoded"] = False
    page = parse(render_trace_html(trace))
    assert [a["href"] for a in page.having("a", "undecodable")] == ["#ev-3"]
    assert len(page.having("div", "undecodable")) == 1
    assert any(t == "undecodable" for tags, t in page.texts if tags[-1:] == ("span",))


def test_a_deep_chain_nests_only_so_far() -> None:
    trace = crowded(3, 400, same_time=False)  # 800 levels of command and event
    page = parse(render_trace_html(trace))
    assert len(page.having("a", "marker")) == 400
    assert len(page.having("path", "link")) == 399
    assert page.deepest < 60
    depths = [t for tags, t in page.texts if tags[-1:] == ("span",) and t.startswith("↳ ")]
    assert depths[-1] == "↳ 800"


def test_no_events() -> None:
    html = render_trace_html({"query": "nothing", "matched": "correlation", "roots": []})
    page = parse(html)
    assert page.having("a", "marker") == [] and "No events." in html


def test_every_string_of_the_trace_is_text() -> None:
    trace = hostile_trace()
    html = render_trace_html(trace)
    html.encode("utf-8")  # a lone surrogate comes out spelled out, so the page can be written
    assert "<script" not in html.lower() and "<img" not in html.lower()
    page = parse(html)
    tags = {t for t, _, _ in page.elements}
    assert tags <= {
        "html", "head", "meta", "title", "style", "body", "main", "h1", "h2", "span", "code",
        "dl", "dt", "dd", "figure", "svg", "defs", "marker", "path", "g", "rect", "line",
        "text", "a", "circle", "figcaption", "ul", "li", "div", "strong",
    }  # fmt: skip
    attributes = {name for _, a, _ in page.elements for name in a}
    assert attributes <= {
        "lang", "charset", "name", "content", "http-equiv", "class", "id", "xmlns", "viewbox",
        "width", "height", "role", "aria-labelledby", "refx", "refy", "markerwidth",
        "markerheight", "markerunits", "orient", "d", "x", "y", "x1", "y1", "x2", "y2",
        "text-anchor", "marker-end", "href", "cx", "cy", "r", "title",
    }  # fmt: skip
    # Nothing but a line break is a control character in the page.
    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f\u2028\u202e]", html)
    text = " ".join(t for _, t in page.texts)
    for shown in ("</svg><script>alert(1)</script>", "&amp; &lt;b&gt; & <b>", "bell\\x07 nul\\x00"):
        assert shown in text, shown
    # Long names are cut: in the drawing to a few dozen characters, elsewhere to a few hundred.
    assert max(len(t) for tags, t in page.texts if "svg" in tags and "title" not in tags) < 100
    assert max(len(t) for tags, t in page.texts if "svg" in tags) <= 3000  # a whole stream id
    assert max(len(t) for tags, t in page.texts if not {"style", "svg"} & set(tags)) <= 300
    # The drawing is unchanged in structure.
    assert len(page.having("a", "marker")) == 6 and len(page.having("path", "link")) == 4


def test_input_of_the_wrong_shape_still_renders() -> None:
    trace: dict[str, Any] = copy.deepcopy(money_transfer())
    root = trace["roots"][0]
    root["commands"] = "RequestTransfer"  # a string, not a list
    event = root["children"][0]
    event["position"] = "1"
    event["stream_version"] = None
    event["children"].append("not a node")
    trace["streams"] = None
    trace["event_count"] = {"six": 6}
    page = parse(render_trace_html(trace))
    assert len(page.having("a", "marker")) == 6
    assert len(page.having("g", "lane")) == 3  # the streams the events name
    assert parse(render_trace_html({"roots": "none"})).having("a", "marker") == []


def test_the_inspectors_own_trace_of_the_bank_demo() -> None:
    # The golden `esgen inspect trace --json` of the bank demo's failed transfer: the
    # page draws what the Inspector really writes.
    trace = json.loads((Path(__file__).parent / "goldens" / "trace.json").read_text("utf-8"))
    page = parse(render_trace_html(trace))
    events = [e for root in trace["roots"] for e in events_of(root)]
    assert len(page.having("a", "marker")) == len(events) == trace["event_count"]
    assert len(page.having("g", "lane")) == len(trace["streams"])
    sent = sum(len(command["children"]) for event in events for command in event["children"])
    assert len(page.having("path", "link")) == sent > 0
