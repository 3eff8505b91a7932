"""AccountClosed: reading version 1 as version 2.

Version 1 did not record why an account was closed, and nothing in the old event can
tell; old closures read as closed for a reason that was not recorded.
"""

from __future__ import annotations

from ...events.account import AccountClosed, AccountClosedV1

NOT_RECORDED = "not recorded (closed before reasons were kept)"


def upcast(event: AccountClosedV1) -> AccountClosed:
    return AccountClosed(reason=NOT_RECORDED)
