"""The Customer aggregate: what its commands decide, and how its events change its
state.

Yours to edit: esgen created this file once and never touches it again. When
the schema gains an event or a command, the generated base gains an abstract
method, and mypy and the tests name what to add here.
"""

from __future__ import annotations

from typing_extensions import override

from ..aggregates.customer import CustomerBase, CustomerState
from ..events.customer import CustomerMoved


class Customer(CustomerBase):
    """The Customer."""

    @override
    def apply_customer_moved(self, event: CustomerMoved) -> CustomerState:
        # TODO: Customer.apply_customer_moved: return the CustomerState after
        # CustomerMoved
        raise NotImplementedError("Customer.apply_customer_moved")
