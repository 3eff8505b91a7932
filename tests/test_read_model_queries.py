"""The generated typed query API of read models, as user code meets it.

The `read_models` golden case is the generated package: queries written against its
`<Name>Fields` and `<Name>Query` (outside handlers) and `self.rows.list/count` (inside
them) pass mypy --strict and pyright strict; misuse fails both, on the line it is
written; and the generated classes hold what the schema says, down to the values the
runtime stores for each condition.

What a query returns from a store is the backends' part (their contract suite); here
nothing reads a table.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from harness import CASES, run_pyright

GENERATED = CASES / "read_models" / "expected" / "src"

USAGE = """\
from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from uuid import UUID

from typing_extensions import override

from esgen.runtime import EventStore, RecordedEvent
from outlet.events.order import OrderPlaced
from outlet.projections.daily_totals import (
    DailyTotalsBase,
    DailyTotalsFields,
    DailyTotalsQuery,
    DailyTotalsRow,
)
from outlet.projections.order_summaries import (
    OrderSummariesFields as F,
    OrderSummariesQuery,
    OrderSummariesRow,
)
from outlet.projections.status_counts import StatusCountsQuery, StatusCountsRow
from outlet.types import OrderSummariesChannel, Status


def paid_orders(store: EventStore) -> list[OrderSummariesRow]:
    return OrderSummariesQuery(store).list(
        F.status.in_([Status.PAID, Status.SHIPPED]),
        F.total.ge(Decimal("10")),
        *F.placed_at.between(datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
        F.shipped_at.eq(None),
        F.discount.is_null(),
        F.class_.ne(None),
        F.from_.ne("nowhere"),
        F.channel.eq(OrderSummariesChannel.WEB),
        F.date.lt(date(2026, 6, 1)),
        F.gift.eq(True),
        F.items.gt(0),
        F.weight.le(2.5),
        F.rating.is_not_null(),
        F.receipt.eq(b"r"),
        F.str_.eq("s"),
        order_by=[F.total.desc(), F.customer.asc()],
        limit=10,
        offset=20,
    )


def one_order(store: EventStore, order_id: UUID) -> OrderSummariesRow | None:
    query = OrderSummariesQuery(store)
    if not query.exists(F.order_id.eq(order_id)) or query.count() == 0:
        return None
    return query.get(order_id)


def paid_count(store: EventStore) -> StatusCountsRow | None:
    return StatusCountsQuery(store).get(Status.PAID)


def best_days(store: EventStore) -> list[date]:
    rows = DailyTotalsQuery(store).list(order_by=DailyTotalsFields.total.desc(), limit=3)
    return [row.day for row in rows]


class DailyTotals(DailyTotalsBase):
    @override
    def on_order_placed(self, event: OrderPlaced, recorded: RecordedEvent) -> None:
        day = date(2026, 1, 1)
        earlier: list[DailyTotalsRow] = self.rows.list(
            DailyTotalsFields.day.lt(day), order_by=DailyTotalsFields.day.desc(), limit=1
        )
        if self.rows.count(DailyTotalsFields.day.eq(day)) == 0:
            self.rows.put(DailyTotalsRow(day=day, total=event.total))
        else:
            self.rows.update(day, total=event.total, busiest=earlier[0].busiest)
"""

# Each line marked `# wrong` must be refused by both checkers, and no other line.
MISUSE = """\
from __future__ import annotations

from decimal import Decimal

from esgen.runtime import EventStore
from outlet.projections.daily_totals import DailyTotalsFields, DailyTotalsRow
from outlet.projections.order_summaries import OrderSummariesFields as F, OrderSummariesQuery
from outlet.types import Status


def misuse(store: EventStore) -> None:
    orders = OrderSummariesQuery(store)
    orders.list(F.total.eq("x"))  # wrong: a str for a Decimal field
    orders.list(F.status.eq("paid"))  # wrong: a str for an enum field
    orders.list(F.items.in_(["1"]))  # wrong: strs for an int field
    orders.list(DailyTotalsFields.total.ge(Decimal(1)))  # wrong: another read model's condition
    orders.list(order_by=DailyTotalsFields.day.desc())  # wrong: another read model's order
    orders.count(DailyTotalsFields.day.is_null())  # wrong: another read model's condition
    rows: list[DailyTotalsRow] = orders.list()  # wrong: the rows are OrderSummariesRow
    orders.get("not-a-uuid")  # wrong: the key is a UUID
    print(F.address)  # wrong: a value type is stored as JSON, not a query field
    print(rows, Status.PAID)
"""

WRONG = [i for i, line in enumerate(MISUSE.splitlines(), 1) if "# wrong" in line]


def _mypy(files: list[Path], cache: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(cache),
         *map(str, files), str(GENERATED / "outlet")],
        env={**os.environ, "MYPYPATH": str(GENERATED)},
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    return result.stdout + result.stderr


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / "user" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_queries_against_the_generated_api_pass_mypy_strict(tmp_path: Path) -> None:
    usage = _write(tmp_path, "usage.py", USAGE)
    output = _mypy([usage], tmp_path / "cache")
    assert "Success: no issues found" in output, output


def test_queries_against_the_generated_api_pass_pyright_strict(tmp_path: Path) -> None:
    usage = _write(tmp_path, "usage.py", USAGE)
    result = run_pyright([usage.parent], tmp_path, extra_paths=[GENERATED])
    assert result.files >= 1, result.report
    assert result.errors == 0, result.report


def test_mypy_refuses_each_misuse_on_its_line(tmp_path: Path) -> None:
    misuse = _write(tmp_path, "misuse.py", MISUSE)
    output = _mypy([misuse], tmp_path / "cache")
    lines = {int(n) for n in re.findall(r"^[^\n]*misuse\.py:(\d+): error:", output, re.M)}
    assert sorted(lines) == WRONG, output


def test_pyright_refuses_each_misuse_on_its_line(tmp_path: Path) -> None:
    misuse = _write(tmp_path, "misuse.py", MISUSE)
    result = run_pyright([misuse.parent], tmp_path, extra_paths=[GENERATED])
    lines = {int(n) for n in re.findall(r"misuse\.py:(\d+):\d+: error:", result.report)}
    assert sorted(lines) == WRONG, result.report


# Run in a process of its own, with the generated package on the path.
CHECK = """\
import typing
from datetime import UTC, date, datetime
from decimal import Decimal
from uuid import UUID

from esgen.runtime import Column, Condition, Field, Index, MemoryEventStore, Order
from esgen.runtime import ReadModel, SQLiteEventStore
from esgen.runtime._readmodel import checked_order, stored_condition
from outlet.projections.daily_totals import DailyTotalsBase, DailyTotalsFields, DailyTotalsQuery
from outlet.projections.order_summaries import (
    OrderSummariesBase,
    OrderSummariesFields as F,
    OrderSummariesQuery,
    OrderSummariesRow,
)
from outlet.projections.status_counts import StatusCountsQuery
from outlet.types import OrderSummariesChannel, Status
import outlet.projections.daily_totals as daily
import outlet.projections.order_summaries as summaries
import outlet.projections.status_counts as counts

# One TableSpec for the base and the query class, with the schema's indexes.
spec = OrderSummariesQuery.table
assert spec is OrderSummariesBase.table and OrderSummariesQuery.row_type is OrderSummariesRow
assert DailyTotalsQuery.table is DailyTotalsBase.table
assert spec.indexes == (
    Index(("customer",)), Index(("status", "placed_at")), Index(("from", "class")),
    Index(("total",)), Index(("date",)),
), spec.indexes
assert DailyTotalsQuery.table.indexes == (Index(("total", "day")),)
assert StatusCountsQuery.table.indexes == ()
kinds = {c.name: (c.type, c.nullable) for c in spec.columns}
assert kinds["total"] == ("decimal", False) and kinds["discount"] == ("decimal", True)
assert kinds["placed_at"] == ("timestamp", False) and kinds["shipped_at"] == ("timestamp", True)
assert kinds["date"] == ("text", True) and kinds["status"] == ("text", False)
assert kinds["receipt"] == ("text", False) and kinds["channel"] == ("text", False)
assert kinds["address"] == kinds["tags"] == kinds["notes"] == ("json", False)
assert issubclass(OrderSummariesQuery, ReadModel)
for module in (summaries, daily, counts):
    name = module.__name__.rsplit(".", 1)[1].title().replace("_", "")
    assert {f"{name}Fields", f"{name}Query"} <= set(module.__all__), module.__all__

# One Field per column that can be queried, named as the row's attribute, on the column.
fields = {n: v for n, v in vars(F).items() if isinstance(v, Field)}
queryable = [c.name for c in spec.columns if c.type != "json"]
assert [f.column for f in fields.values()] == queryable, fields
assert {n: f.column for n, f in fields.items() if n != f.column} == {
    "from_": "from", "class_": "class", "str_": "str",
}
for name in fields:
    assert name in OrderSummariesRow.model_fields, name
hints = typing.get_type_hints(F, include_extras=False)
assert typing.get_args(typing.get_args(hints["total"])[0]) == (OrderSummariesRow, Decimal)
assert typing.get_args(typing.get_args(hints["status"])[0]) == (OrderSummariesRow, Status)
assert typing.get_args(typing.get_args(hints["discount"])[0])[1] == Decimal | None

# Conditions and orders carry the column; the runtime turns each value into the form
# rows are stored in, so the generated fields and the table agree.
when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
order_id = UUID(int=7)
cases = [
    (F.order_id.eq(order_id), Condition("order_id", "eq", str(order_id))),
    (F.total.ge(Decimal("10.50")), Condition("total", "ge", "10.50")),
    (F.placed_at.lt(when), Condition("placed_at", "lt", "2026-01-02T03:04:05+00:00")),
    (F.status.eq(Status.PAID), Condition("status", "eq", "paid")),
    (F.channel.in_([OrderSummariesChannel.WEB]), Condition("channel", "in", ("web",))),
    (F.date.eq(date(2026, 1, 2)), Condition("date", "eq", "2026-01-02")),
    (F.from_.eq("here"), Condition("from", "eq", "here")),
    (F.class_.eq(None), Condition("class", "is_null")),
    (F.discount.ne(None), Condition("discount", "not_null")),
    (F.gift.eq(True), Condition("gift", "eq", True)),
    (F.items.between(1, 3)[1], Condition("items", "le", 3)),
]
for built, stored in cases:
    assert stored_condition(spec, OrderSummariesRow, built) == stored, (built, stored)
orders = checked_order(spec, [F.total.desc(), F.str_.asc()])
assert orders == (Order("total", True), Order("str"), Order("order_id")), orders
# A JSON column has no Field; one built by hand is refused by name.
try:
    stored_condition(spec, OrderSummariesRow, Field("address").eq({"city": "x"}))
except ValueError as error:
    assert "stored as JSON" in str(error), error
else:
    raise AssertionError("a JSON column was queried")
assert DailyTotalsFields.day.eq(date(2026, 1, 1)) == Condition("day", "eq", date(2026, 1, 1))

# A query object is built for any store; reading is the backends' part.
assert isinstance(OrderSummariesQuery(MemoryEventStore()), ReadModel)
store = SQLiteEventStore("events.sqlite")
try:
    assert isinstance(OrderSummariesQuery(store), ReadModel)
finally:
    store.close()
print("ok")
"""


def test_generated_classes_hold_the_schema(tmp_path: Path) -> None:
    script = tmp_path / "check.py"
    script.write_text(CHECK, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(GENERATED)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == "ok\n"
