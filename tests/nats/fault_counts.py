"""The counts of the kill -9 tests, shown in pytest's terminal summary (even under -q,
where a test's own output is captured), so every CI log says what was killed and found."""

from __future__ import annotations

import pytest

__all__ = ["report_counts"]


class _Counts:
    def __init__(self, title: str, line: str) -> None:
        self.title = title
        self.line = line

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        terminalreporter.write_sep("-", self.title)
        terminalreporter.write_line(self.line)


def report_counts(config: pytest.Config, title: str, line: str) -> None:
    """Show `line` under a `title` separator at the end of the run; printed now too."""
    config.pluginmanager.register(_Counts(title, line), f"counts: {title}")
    print(line)
