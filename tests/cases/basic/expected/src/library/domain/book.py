"""The Book aggregate: what its commands decide, and how its events change its
state.

Yours to edit: esgen created this file once and never touches it again. When
the schema gains an event or a command, the generated base gains an abstract
method, and mypy and the tests name what to add here.
"""

from __future__ import annotations

from collections.abc import Sequence

from typing_extensions import override

from ..aggregates.book import BookBase, BookState
from ..commands.book import AddBook, LendBook
from ..events.book import BookAdded, BookLent


class Book(BookBase):
    """The Book."""

    @override
    def handle_add_book(self, command: AddBook) -> Sequence[BookAdded]:
        # TODO: Book.handle_add_book: decide which events AddBook causes
        # (BookAdded)
        raise NotImplementedError("Book.handle_add_book")

    @override
    def handle_lend_book(self, command: LendBook) -> Sequence[BookLent]:
        # TODO: Book.handle_lend_book: decide which events LendBook causes
        # (BookLent)
        raise NotImplementedError("Book.handle_lend_book")

    @override
    def apply_book_added(self, event: BookAdded) -> BookState:
        # TODO: Book.apply_book_added: return the BookState after BookAdded
        raise NotImplementedError("Book.apply_book_added")

    @override
    def apply_book_lent(self, event: BookLent) -> BookState:
        # TODO: Book.apply_book_lent: return the BookState after BookLent
        raise NotImplementedError("Book.apply_book_lent")
