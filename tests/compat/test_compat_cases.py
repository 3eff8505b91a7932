"""Every directory case of tests/compat_cases: the findings, their locations and summaries."""

from __future__ import annotations

import pytest

from compat.cases import CompatCase, compat_cases, run

CASES = compat_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_findings(case: CompatCase) -> None:
    expected = case.expected()
    actual = run(case)
    assert expected["about"], "say in `about` what the case shows"
    assert actual["findings"] == expected["findings"], "run tests/compat/regenerate.py"
    assert actual["events"] == expected["events"], "run tests/compat/regenerate.py"


def test_every_rule_has_a_case() -> None:
    from esgen.compat import RULES

    seen = {f["rule"].split()[0] for case in CASES for f in case.expected()["findings"]}
    missing = [r.id for r in RULES if r.id not in seen]
    assert not missing, f"rules without a directory case: {missing}"
