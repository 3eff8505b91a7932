"""The trace page in a real headless Chromium: no errors, no resource fetched, no script,
every event drawn inside the timeline, every lane labelled, and the drawing visible in a
screenshot of the timeline alone.

Locally the test skips when /usr/bin/chromium is missing (`.ci/ensure-chromium` installs
it); in CI (CI or ESGEN_CI set) a missing browser is a failure.
"""

from __future__ import annotations

import base64
import json
import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from headless import CHROMIUM, Browser
from trace_samples import (
    ACCOUNT_A,
    ACCOUNT_B,
    HOSTILE,
    TRANSFER,
    crowded,
    hostile_trace,
    money_transfer,
)

from esgen.docs import render_trace_html

IN_CI = bool(os.environ.get("CI") or os.environ.get("ESGEN_CI"))

if not CHROMIUM.is_file():
    if IN_CI:
        pytest.fail(f"{CHROMIUM} is missing in CI; run .ci/ensure-chromium", pytrace=False)
    pytest.skip(
        f"{CHROMIUM} is missing: run .ci/ensure-chromium to test the trace page in a browser",
        allow_module_level=True,
    )

WIDTH = 1400

PROBE = """JSON.stringify((() => {
  const svg = document.querySelector('svg.timeline');
  const frame = svg.getBoundingClientRect();
  const figure = svg.parentElement.getBoundingClientRect();
  const inside = r => r.left >= frame.left - 0.5 && r.right <= frame.right + 0.5
    && r.top >= frame.top - 0.5 && r.bottom <= frame.bottom + 0.5;
  const plot = svg.querySelector('line.lane-line');
  const gutter = plot ? plot.getBoundingClientRect().left : frame.left;
  const box = r => ({left: r.left, top: r.top, width: r.width, height: r.height});
  return {
    frame: box(frame),
    figure: box(figure),
    markers: [...svg.querySelectorAll('a.marker')].map(m => {
      const r = m.querySelector('circle').getBoundingClientRect();
      const label = m.querySelector('text');
      const l = label ? label.getBoundingClientRect() : r;
      return {
        width: r.width, height: r.height, inside: inside(r), labelInside: inside(l),
        fill: getComputedStyle(m.querySelector('circle')).fill,
        target: document.getElementById(m.getAttribute('href').slice(1)) !== null,
      };
    }),
    lanes: [...svg.querySelectorAll('text.lane-label')].map(t => {
      const r = t.getBoundingClientRect();
      const style = getComputedStyle(t);
      return {
        text: t.textContent, width: r.width, height: r.height, inside: inside(r),
        beforePlot: r.right <= gutter + 0.5,
        shown: style.visibility !== 'hidden' && style.display !== 'none' && style.opacity !== '0',
      };
    }),
    links: svg.querySelectorAll('path.link').length,
    scripts: document.scripts.length,
    resources: performance.getEntriesByType('resource').length,
    pageWidth: document.documentElement.scrollWidth,
    viewWidth: window.innerWidth,
    text: document.body.innerText,
  };
})())"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with Browser(width=WIDTH, height=900) as chromium:
        yield chromium


def open_page(
    browser: Browser, tmp_path: Path, trace: dict[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    page = tmp_path / "trace.html"
    page.write_text(render_trace_html(trace), encoding="utf-8")
    report = browser.open(page.as_uri(), PROBE, screenshot=False)
    return json.loads(report.result), report.errors


def timeline_shot(browser: Browser, url: str, result: dict[str, Any]) -> bytes:
    """A PNG of the part of the timeline its figure shows (it scrolls when wider), taken
    from the tab `open_page` left open."""
    targets = browser.send("Target.getTargets")["targetInfos"]
    target = next(t["targetId"] for t in targets if t["url"] == url)
    session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
        "sessionId"
    ]
    frame, figure = result["frame"], result["figure"]
    right = min(frame["left"] + frame["width"], figure["left"] + figure["width"])
    clip = {
        "x": frame["left"],
        "y": frame["top"],
        "width": right - frame["left"],
        "height": frame["height"],
        "scale": 1,
    }
    shot = browser.send(
        "Page.captureScreenshot",
        {"format": "png", "clip": clip, "captureBeyondViewport": True},
        session=session,
    )
    browser.send("Target.closeTarget", {"targetId": target})
    return base64.b64decode(shot["data"])


def png_pixels(data: bytes) -> tuple[int, int, list[tuple[int, ...]]]:
    """Width, height and the pixels of an 8-bit RGB or RGBA PNG, with the standard library."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset, idat, header = 8, b"", b""
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        offset += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
    channels = 4 if colour == 6 else 3
    raw = zlib.decompress(idat)
    stride = width * channels
    previous = bytearray(stride)
    pixels: list[tuple[int, ...]] = []
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        # Undo the row's filter (PNG spec, section 9): each byte predicted from its left,
        # upper and upper-left neighbours.
        if kind == 1:
            for i in range(channels, stride):
                line[i] = (line[i] + line[i - channels]) & 0xFF
        elif kind == 2:
            for i in range(stride):
                line[i] = (line[i] + previous[i]) & 0xFF
        elif kind == 3:
            for i in range(stride):
                left = line[i - channels] if i >= channels else 0
                line[i] = (line[i] + (left + previous[i]) // 2) & 0xFF
        elif kind == 4:
            for i in range(stride):
                a = line[i - channels] if i >= channels else 0
                b = previous[i]
                c = previous[i - channels] if i >= channels else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                nearest = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + nearest) & 0xFF
        else:
            assert kind == 0, kind
        pixels.extend(tuple(line[i : i + 3]) for i in range(0, stride, channels))
        previous = line
    return width, height, pixels


def test_the_transfer_timeline_is_drawn(browser: Browser, tmp_path: Path) -> None:
    result, errors = open_page(browser, tmp_path, money_transfer())
    assert errors == []
    assert result["scripts"] == 0 and result["resources"] == 0
    markers = result["markers"]
    assert len(markers) == 6
    for marker in markers:
        assert marker["width"] > 8 and marker["height"] > 8, marker
        assert marker["inside"] and marker["labelInside"] and marker["target"], marker
    lanes = result["lanes"]
    assert [lane["text"] for lane in lanes] == [TRANSFER, ACCOUNT_A, ACCOUNT_B]
    for lane in lanes:
        assert lane["width"] > 50 and lane["height"] > 8 and lane["shown"], lane
        assert lane["inside"] and lane["beforePlot"], lane
    assert result["links"] == 4
    assert result["pageWidth"] <= result["viewWidth"]

    url = (tmp_path / "trace.html").as_uri()
    width, height, pixels = png_pixels(timeline_shot(browser, url, result))
    assert width >= 600 and height >= 3 * 56
    background = max(set(pixels), key=pixels.count)
    drawn = [p for p in pixels if max(abs(a - b) for a, b in zip(p, background, strict=True)) > 24]
    # Lanes, markers, labels and links: a fair part of the picture, in several colours.
    assert len(drawn) > len(pixels) // 50, (len(drawn), len(pixels))
    colours = {tuple(c >> 4 for c in p) for p in drawn}
    assert len(colours) >= 8, colours
    purple = [p for p in drawn if p[2] > p[1] + 60 and p[0] > p[1] + 30]  # the saga's links
    orange = [p for p in drawn if p[0] > 180 and p[2] < 60]  # the markers' rims
    assert len(purple) > 100 and len(orange) > 50, (len(purple), len(orange))


def test_a_crowded_trace_stays_inside_its_frame(browser: Browser, tmp_path: Path) -> None:
    # Sixty events at one moment over twelve streams with long ids: spread in order.
    result, errors = open_page(browser, tmp_path, crowded(12, 60, same_time=True))
    assert errors == [] and result["scripts"] == 0 and result["resources"] == 0
    assert len(result["markers"]) == 60 and result["links"] == 59
    for marker in result["markers"]:
        assert marker["width"] > 8 and marker["inside"] and marker["labelInside"], marker
    assert len(result["lanes"]) == 12
    for lane in result["lanes"]:
        assert "…" in lane["text"] and lane["inside"] and lane["beforePlot"], lane
    assert len({lane["text"] for lane in result["lanes"]}) == 12
    # The timeline scrolls inside its figure; the page itself never gets wider.
    assert result["frame"]["width"] > result["figure"]["width"]
    assert result["pageWidth"] <= result["viewWidth"]


def test_hostile_text_is_shown_as_text(browser: Browser, tmp_path: Path) -> None:
    result, errors = open_page(browser, tmp_path, hostile_trace())
    assert errors == []
    assert result["scripts"] == 0 and result["resources"] == 0
    assert len(result["markers"]) == 6 and result["links"] == 4
    for marker in result["markers"]:
        assert marker["inside"] and marker["labelInside"], marker
    for lane in result["lanes"]:
        assert lane["inside"] and lane["beforePlot"], lane
    assert result["pageWidth"] <= result["viewWidth"]
    text = " ".join(str(result["text"]).split())
    for shown in HOSTILE[:4]:
        assert " ".join(shown.split()) in text, shown
