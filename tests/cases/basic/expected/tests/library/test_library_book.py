"""Scenarios of the Book aggregate: one per command.

Yours to edit: esgen created this file once. Each test fails until its scenario
is written.
"""

from __future__ import annotations

from library.domain.book import Book

from esgen.runtime.testing import AggregateScenario, todo


def test_add_book() -> None:
    (
        AggregateScenario(Book)
        .given()  # the events that happened before, oldest first
        .when(
            todo(
                "AddBook(...): the command under test; then the events Book should record (BookAdded) or .then_raises(...)"
            )
        )
        .then()  # the events it should record
    )


def test_lend_book() -> None:
    (
        AggregateScenario(Book)
        .given()  # the events that happened before, oldest first
        .when(
            todo(
                "LendBook(...): the command under test; then the events Book should record (BookLent) or .then_raises(...)"
            )
        )
        .then()  # the events it should record
    )
