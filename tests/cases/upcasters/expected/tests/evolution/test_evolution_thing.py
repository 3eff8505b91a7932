"""Scenarios of the Thing aggregate: one per command, one per hand-written
upcaster.

Yours to edit: esgen created this file once. Each test fails until its scenario
is written.
"""

from __future__ import annotations

from evolution.registry import REGISTRY

from esgen.runtime.testing import UpcasterScenario, todo


def test_upcast_added_without_default_v1() -> None:
    # a AddedWithoutDefault payload as version 1 stored it, and the
    # AddedWithoutDefault it should read as
    scenario = UpcasterScenario(REGISTRY)
    scenario.given("AddedWithoutDefault", 1, todo("the stored payload"))
    scenario.then(todo("the event it should read as"))


def test_upcast_type_narrowed_v1() -> None:
    # a TypeNarrowed payload as version 1 stored it, and the TypeNarrowed it
    # should read as
    scenario = UpcasterScenario(REGISTRY)
    scenario.given("TypeNarrowed", 1, todo("the stored payload"))
    scenario.then(todo("the event it should read as"))


def test_upcast_enum_shrunk_v1() -> None:
    # a EnumShrunk payload as version 1 stored it, and the EnumShrunk it
    # should read as
    scenario = UpcasterScenario(REGISTRY)
    scenario.given("EnumShrunk", 1, todo("the stored payload"))
    scenario.then(todo("the event it should read as"))


def test_upcast_manual_by_choice_v1() -> None:
    # a ManualByChoice payload as version 1 stored it, and the ManualByChoice
    # it should read as
    scenario = UpcasterScenario(REGISTRY)
    scenario.given("ManualByChoice", 1, todo("the stored payload"))
    scenario.then(todo("the event it should read as"))
