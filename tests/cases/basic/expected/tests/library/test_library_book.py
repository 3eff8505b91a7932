"""Scenarios of the Book aggregate: one per command.

Yours to edit: esgen created this file once. Each test fails until its scenario
is written.
"""

from __future__ import annotations

from library.domain.book import Book

from esgen.runtime.testing import AggregateScenario, todo


def test_add_book() -> None:
    # AddBook(...): the command under test; then the events Book should record
    # (BookAdded) or .then_raises(...)
    scenario = AggregateScenario(Book).given()  # what happened before
    scenario.when(todo("AddBook(...)"))
    scenario.then()  # what it should record or send


def test_lend_book() -> None:
    # LendBook(...): the command under test; then the events Book should
    # record (BookLent) or .then_raises(...)
    scenario = AggregateScenario(Book).given()  # what happened before
    scenario.when(todo("LendBook(...)"))
    scenario.then()  # what it should record or send
