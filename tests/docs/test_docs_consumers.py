"""The catalog of a context that consumes other contexts' published events.

Reads the `consumers` golden case (a context with its own aggregate and projection, and
consumers of two upstreams, one read from its schema folder, one from its esgen.lock) and
the statements example (a context that only consumes). The goldens pin every byte; these
tests say what the bytes must mean: sections that link up, a diagram with the upstream
events feeding the consumers, relative links that lead to real files, schema text as text.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import unquote

import yaml
from harness import EXAMPLES
from harness_docs import CASES
from markdown_it import MarkdownIt

CASE = CASES / "consumers"
DOCS = CASE / "docs"
SCHEMA = yaml.safe_load((CASE / "schemas" / "fulfilment.yaml").read_text())
HOSTILE = SCHEMA["consumers"]["OrderBoard"]["description"]


class _Page(HTMLParser):
    """Tags with their attributes, and the text, entities decoded."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    @property
    def ids(self) -> set[str]:
        return {attrs["id"] or "" for _, attrs in self.tags if "id" in attrs}

    @property
    def hrefs(self) -> list[str]:
        return [attrs["href"] or "" for tag, attrs in self.tags if tag == "a" and "href" in attrs]

    def of_class(self, name: str) -> list[dict[str, str | None]]:
        return [attrs for _, attrs in self.tags if name in (attrs.get("class") or "").split()]


def _parse(markup: str) -> _Page:
    page = _Page()
    page.feed(markup)
    page.close()
    return page


def _markdown(name: str) -> _Page:
    source = (DOCS / name).read_text(encoding="utf-8")
    return _parse(MarkdownIt("commonmark").enable("table").render(source))


def _html() -> _Page:
    return _parse((DOCS / "catalog.html").read_text(encoding="utf-8"))


def test_both_formats_have_the_subscriptions_and_consumers_and_link_them() -> None:
    for page in (_markdown("fulfilment.md"), _html()):
        for anchor in (
            "fulfilment-subscriptions",
            "fulfilment-subscription-shop",
            "fulfilment-subscription-billing",
            "fulfilment-consumer-OrderBoard",
            "fulfilment-consumer-Shipments",
        ):
            assert anchor in page.ids, anchor
        inside = [h[1:] for h in page.hrefs if h.startswith("#")]
        assert not set(inside) - page.ids, "a link to nowhere"
        for anchor in ("fulfilment-consumer-OrderBoard", "fulfilment-subscription-billing"):
            assert f"#{anchor}" in page.hrefs, anchor
        text = " ".join("".join(page.text).split())
        assert "Handles shop.OrderPlaced, shop.OrderShipped, billing.InvoicePaid;" in text
        assert "Indexed on stage." in text


def test_a_subscription_names_where_its_contract_comes_from_and_links_to_it() -> None:
    for page in (_markdown("fulfilment.md"), _html()):
        text = "".join(page.text)
        # As `from:` is written, relative to the schema file.
        assert "Contract read from ../shop_schemas." in text
        assert "Contract read from ../billing/esgen.lock." in text
        outside = [h for h in page.hrefs if h.startswith("../")]
        assert "../shop_schemas" in outside and "../billing/esgen.lock" in outside
        for href in outside:
            assert (DOCS / unquote(href)).exists(), href


def test_subscribed_events_list_the_versions_the_contract_holds() -> None:
    source = (DOCS / "fulfilment.md").read_text(encoding="utf-8")
    section = source.split("## Subscriptions", 1)[1].split("## Consumer", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| `(\w+)` \| ([^|]*) \|$", section, re.M)
    assert rows == [
        ("OrderPlaced", "Order", "v1, v2"),
        ("OrderShipped", "Order", "v1, v2, v3"),
        ("InvoicePaid", "Invoice", "v1"),
    ]


def test_the_consumer_description_is_text_in_both_formats() -> None:
    for page in (_markdown("fulfilment.md"), _html()):
        assert not {tag for tag, _ in page.tags} & {"b", "em", "script"}
        assert HOSTILE in "".join(page.text)


def test_the_mermaid_flow_feeds_each_consumer_from_its_upstream_events() -> None:
    source = (DOCS / "fulfilment.md").read_text(encoding="utf-8")
    flow = source.split("```mermaid\n", 1)[1].split("```", 1)[0]
    edges = re.findall(r"^ {4}(\w+) --> (\w+)$", flow, re.M)
    fed = sorted((a, b) for a, b in edges if b.startswith("csm_"))
    assert fed == [
        ("up_billing__InvoicePaid", "csm_OrderBoard"),
        ("up_shop__OrderPlaced", "csm_OrderBoard"),
        ("up_shop__OrderShipped", "csm_OrderBoard"),
        ("up_shop__OrderShipped", "csm_Shipments"),
    ]
    # The context's own flow is still there, untouched by the subscriptions.
    assert ("evt_ParcelPacked", "prj_Packing") in edges
    assert 'up_shop__OrderPlaced>"shop.OrderPlaced"]:::upstream' in flow


def test_the_svg_draws_upstream_events_linking_to_their_subscription() -> None:
    page = _html()
    upstream = page.of_class("n-upstream")
    consumers = page.of_class("n-consumer")
    # In the order the layout gives them, which keeps edges from crossing.
    assert sorted(a["href"] or "" for a in upstream) == [
        "#fulfilment-subscription-billing",
        "#fulfilment-subscription-shop",
        "#fulfilment-subscription-shop",
    ]
    assert [a["href"] for a in consumers] == [
        "#fulfilment-consumer-OrderBoard",
        "#fulfilment-consumer-Shipments",
    ]
    text = "".join(page.text)
    assert "shop.OrderShipped is consumed by Shipments" in text
    assert "Read models and sagas" in text


def test_a_context_that_only_consumes_draws_no_empty_columns() -> None:
    markup = (EXAMPLES / "statements" / "docs" / "catalog.html").read_text(encoding="utf-8")
    page = _parse(markup)
    columns = re.findall(r'<text class="column"[^>]*>([^<]*)</text>', markup)
    assert columns == ["Events", "Consumers"]
    assert len(page.of_class("n-upstream")) == 2
    assert len(page.of_class("edge")) == 2


def test_a_context_without_subscriptions_shows_none_of_it() -> None:
    page = (CASES / "two_contexts" / "docs" / "bank.md").read_text(encoding="utf-8")
    assert "Subscriptions" not in page and "Consumer" not in page
    assert "classDef upstream" not in page
    assert (
        "s-upstream"
        not in (CASES / "two_contexts" / "docs" / "catalog.html")
        .read_text(encoding="utf-8")
        .split("</style>", 1)[1]
    )
