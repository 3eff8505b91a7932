"""What `make demo` shows after generating the bank example: the files, and the code at work."""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path

from pydantic import ValidationError

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE / "src"))

from bank import EVENT_CLASSES, AccountOpened, AccountOpenedV1, Money, MoneyDeposited  # noqa: E402


def main() -> None:
    print("Generated from schemas/bank.yaml:")
    for path in sorted((HERE / "src").rglob("*.py")):
        lines = path.read_text().count("\n")
        print(f"  {path.relative_to(HERE)}  ({lines} lines)")

    print("\nEvery event version the registry knows:")
    for (event_type, version), cls in EVENT_CLASSES.items():
        fields = ", ".join(f"{name}: {info.annotation}" for name, info in cls.model_fields.items())
        print(f"  {event_type} v{version} -> {cls.__name__}({fields})")

    deposited = MoneyDeposited(amount=Money(amount=Decimal("25.00"), currency="EUR"))
    stored = deposited.model_dump_json()
    print(f"\nAn event as stored: {deposited.event_type} v{deposited.event_version} {stored}")
    read_back = EVENT_CLASSES[("MoneyDeposited", 1)].model_validate_json(stored)
    print(f"Read back through the registry: {read_back!r}")

    old = AccountOpenedV1(owner="Ada")
    new = AccountOpened(owner="Grace")
    print(f"\nTwo versions of one event type: {old!r} (v1), {new!r} (v2)")
    try:
        Money(amount=Decimal("-1"), currency="euro")
    except ValidationError as exc:
        print(f"Invalid values are refused: {[e['msg'] for e in exc.errors()]}")


if __name__ == "__main__":
    main()
