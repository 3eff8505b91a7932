"""Scenarios of the Parcel aggregate: one per command.

Yours to edit: esgen created this file once. Each test fails until its scenario
is written.
"""

from __future__ import annotations

from fulfilment.domain.parcel import Parcel

from esgen.runtime.testing import AggregateScenario, todo


def test_pack_parcel() -> None:
    # PackParcel(...): the command under test; then the events Parcel should
    # record (ParcelPacked) or .then_raises(...)
    scenario = AggregateScenario(Parcel).given()  # what happened before
    scenario.when(todo("PackParcel(...)"))
    scenario.then()  # what it should record or send
