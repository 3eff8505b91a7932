"""The Probe aggregate: what its commands decide, and how its events change its
state.

Yours to edit: esgen created this file once and never touches it again. When
the schema gains an event or a command, the generated base gains an abstract
method, and mypy and the tests name what to add here.
"""

from __future__ import annotations

from collections.abc import Sequence

from typing_extensions import override

from ..aggregates.probe import ProbeBase, ProbeState
from ..commands.probe import Measure
from ..events.probe import Measured


class Probe(ProbeBase):
    """The Probe."""

    @override
    def handle_measure(self, command: Measure) -> Sequence[Measured]:
        # TODO: Probe.handle_measure: decide which events Measure causes
        # (Measured)
        raise NotImplementedError("Probe.handle_measure")

    @override
    def apply_measured(self, event: Measured) -> ProbeState:
        # TODO: Probe.apply_measured: return the ProbeState after Measured
        raise NotImplementedError("Probe.apply_measured")
