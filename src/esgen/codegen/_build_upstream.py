"""IR of the upstream contracts inside a subscriber: `<context>/upstream/<upstream>/`.

Each subscribed upstream gets a package of its own holding the subscribed events (every
version this context can read), the types they use, their upcasters and a registry, built
by the same code that builds a context's own events: the contract is a context (see
`esgen.schema.Subscription.contract`) generated at another place.

A version step the upstream upcasts by hand (`upcast: manual`) cannot be derived here,
and a subscriber should not have to rewrite the upstream's domain logic: the contract's
upcaster for it refuses the older version with an `UpcastError` that says so, and the
consumer runner dead-letters such a message with that reason. Relays send the latest
version their context knows, so such messages only come from a relay older than the step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from esgen.codegen._build_write import upcaster_modules, upcaster_tests
from esgen.codegen._ir import ModuleIR, PackageInitIR, ReExportIR
from esgen.codegen._pyexpr import docstring
from esgen.schema import Subscription

if TYPE_CHECKING:
    from esgen.codegen._build import _ContextBuilder

__all__ = ["upstream_modules"]


def upstream_modules(b: _ContextBuilder) -> list[ModuleIR]:
    ctx = b.context
    if not ctx.subscriptions:
        return []
    modules: list[ModuleIR] = [
        PackageInitIR(
            path=b.package / "upstream" / "__init__.py",
            sources=b.src(*ctx.files),
            docstring=docstring(
                f"The contracts of the contexts {ctx.name} subscribes to: their published "
                "events, as this context reads them.",
                "",
            ),
        )
    ]
    for subscription in ctx.subscriptions:
        modules.extend(_contract_modules(b, subscription))
    return modules


def _contract_modules(b: _ContextBuilder, subscription: Subscription) -> list[ModuleIR]:
    contract = subscription.contract
    # The same builder, for the contract at its place in this package; headers name the
    # upstream's files by their path from this project (`../bank/schemas/bank.yaml`).
    up = type(b)(contract, b.root, b.package / "upstream" / subscription.upstream)
    up.outside = True
    modules, exports = up.message_modules(("events",))
    modules.append(up.registry_module())
    modules.extend(upcaster_modules(up))
    tests = upcaster_tests(up)
    if tests is not None:
        modules.append(tests)
    exports.append(ReExportIR(".registry", ("REGISTRY",), "registry"))
    modules.append(
        PackageInitIR(
            path=up.package / "__init__.py",
            sources=up.src(*contract.files),
            docstring=docstring(
                f"The events {b.context.name} reads from the {subscription.upstream} context "
                "(its published contract), and the registry that reads any version of them "
                "that this contract knows as the latest.",
                "",
            ),
            reexports=tuple(exports),
            exports=tuple(n for r in exports for n in r.names),
        )
    )
    return modules
