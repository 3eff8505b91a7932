"""The offline HTML page in a real headless Chromium: no errors, no resource fetched, no
script, and the diagram drawn with every box visible and the schema text shown as text.

Locally the test skips when /usr/bin/chromium is missing (`.ci/ensure-chromium` installs
it); in CI (CI or ESGEN_CI set) a missing browser is a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from harness import EXAMPLES
from harness_docs import CASES
from headless import CHROMIUM, Browser

from esgen.docs import flow_of
from esgen.schema import load_schema_dir

IN_CI = bool(os.environ.get("CI") or os.environ.get("ESGEN_CI"))

if not CHROMIUM.is_file():
    if IN_CI:
        pytest.fail(f"{CHROMIUM} is missing in CI; run .ci/ensure-chromium", pytrace=False)
    pytest.skip(
        f"{CHROMIUM} is missing: run .ci/ensure-chromium to test the HTML page in a browser",
        allow_module_level=True,
    )

PROBE = """JSON.stringify((() => {
  const svg = document.querySelector('svg.flow');
  const frame = svg.getBoundingClientRect();
  const boxes = [...svg.querySelectorAll('.node')].map(node => {
    const r = node.querySelector('rect').getBoundingClientRect();
    const name = node.querySelector('text.name');
    return {
      name: name.textContent,
      width: r.width, height: r.height,
      inside: r.left >= frame.left - 0.5 && r.right <= frame.right + 0.5
        && r.top >= frame.top - 0.5 && r.bottom <= frame.bottom + 0.5,
      textFits: name.getComputedTextLength() <= r.width - 12,
      target: document.getElementById(node.getAttribute('href').slice(1)) !== null,
    };
  });
  return {
    svgWidth: frame.width, svgHeight: frame.height,
    visible: getComputedStyle(svg).display !== 'none' && getComputedStyle(svg).visibility !== 'hidden',
    boxes: boxes,
    edges: svg.querySelectorAll('path.edge').length,
    scripts: document.scripts.length,
    resources: performance.getEntriesByType('resource').length,
    text: document.body.innerText,
  };
})())"""


def _open(page: Path) -> tuple[dict[str, object], list[str], bytes]:
    import json

    with Browser() as browser:
        report = browser.open(page.resolve().as_uri(), PROBE)
    return json.loads(report.result), report.errors, report.screenshot


@pytest.mark.parametrize(
    ("schemas", "page"),
    [
        (EXAMPLES / "bank" / "schemas", EXAMPLES / "bank" / "docs" / "catalog.html"),
        (CASES / "two_contexts" / "schemas", CASES / "two_contexts" / "docs" / "catalog.html"),
        # Upstream events and consumers in the diagram, beside the context's own flow.
        (CASES / "consumers" / "schemas", CASES / "consumers" / "docs" / "catalog.html"),
    ],
    ids=["bank", "two_contexts", "consumers"],
)
def test_page_renders_without_errors_and_shows_the_diagram(schemas: Path, page: Path) -> None:
    result, errors, screenshot = _open(page)
    assert errors == []
    assert result["scripts"] == 0 and result["resources"] == 0
    assert result["visible"] and result["svgWidth"] > 300 and result["svgHeight"] > 100
    schema = load_schema_dir(schemas)
    first = flow_of(schema.contexts[0])
    boxes = result["boxes"]
    assert isinstance(boxes, list)
    assert sorted(b["name"] for b in boxes) == sorted(n.name for n in first.nodes)
    for box in boxes:
        assert box["width"] > 50 and box["height"] > 20, box
        assert box["inside"] and box["textFits"] and box["target"], box
    assert result["edges"] == len(first.edges)
    assert screenshot.startswith(b"\x89PNG") and len(screenshot) > 20_000


def test_hostile_text_is_shown_as_text_in_the_browser() -> None:
    result, errors, _ = _open(CASES / "hostile" / "docs" / "catalog.html")
    assert errors == []
    assert result["scripts"] == 0 and result["resources"] == 0
    text = " ".join(str(result["text"]).split())
    for shown in (
        "<script>alert('context')</script> | a pipe, `a backtick`, **bold**",
        "</td></tr></table><img src=x onerror=alert(1)>",
        "<!-- an unclosed comment",
        "![image](https://example.invalid/x.png)",
        "^(a|b)`c`$",
    ):
        assert shown in text, shown
