"""Compatibility cases: `tests/compat_cases/<case>/previous` against `current`, with the
findings and event summaries expected in `expected.json`.

Each case runs from its own folder, so locations read `current/shop.yaml:12:5` and
`previous/shop.yaml:11:5` on every machine. `python tests/compat/regenerate.py [CASE...]`
rewrites the expected files from the current rules; review the diff like code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import chdir

from esgen.compat import Report, check, current_side, directory_side

CASES = Path(__file__).parent.parent / "compat_cases"


@dataclass(frozen=True)
class CompatCase:
    name: str
    root: Path

    @property
    def expected_file(self) -> Path:
        return self.root / "expected.json"

    def expected(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.expected_file.read_text(encoding="utf-8"))
        return data


def compat_cases() -> list[CompatCase]:
    return [CompatCase(p.name, p) for p in sorted(CASES.iterdir()) if (p / "current").is_dir()]


def serialise(report: Report) -> dict[str, Any]:
    return {
        "findings": [
            {
                "rule": f"{f.rule} {f.rule_name}",
                "severity": f.severity.value,
                "subject": f.subject,
                "new": report.new.where(f.hit.new),
                "old": report.old.where(f.hit.old),
                "message": f.hit.message,
                "fix": f.hit.fix,
            }
            for f in report.findings
        ],
        "events": [
            f"{s.verdict}: {s.context}.{s.event}: " + " | ".join(s.changes) for s in report.events
        ],
    }


def run(case: CompatCase) -> dict[str, Any]:
    with chdir(case.root):
        report = check(directory_side(Path("previous")), current_side(Path("current")))
    return serialise(report)


def regenerate(case: CompatCase) -> None:
    about = case.expected().get("about", "") if case.expected_file.exists() else ""
    data = {"about": about, **run(case)}
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    case.expected_file.write_text(text, encoding="utf-8")
