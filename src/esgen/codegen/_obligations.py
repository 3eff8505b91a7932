"""What the user still has to write: methods and upcasters their own modules lack.

Scaffolds are never rewritten, so when the schema gains an event or a command, the
user's module misses a method that the generated base now declares abstract. esgen reads
the user's module (as text, with `ast`; it never imports user code) and says what to add,
and which stubs still raise NotImplementedError.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from esgen.codegen._ir import ModuleIR, Root, UserClassIR, UserUpcasterIR

__all__ = ["Obligation", "find_obligations"]


@dataclass(frozen=True, slots=True)
class Obligation:
    path: Path
    what: str
    missing: bool  # True: mypy and the tests fail until it is added; False: a stub remains
    left_behind: bool = False  # a method whose event or command the schema no longer has


def find_obligations(
    modules: Iterable[ModuleIR], folders: Mapping[Root, Path], planned: Mapping[Path, str]
) -> list[Obligation]:
    """Obligations of user-owned modules, read from `planned` contents or from disk."""
    found: list[Obligation] = []
    for module in modules:
        path = folders[module.root] / module.path
        text = planned.get(path)
        if text is None:
            continue
        try:
            tree = ast.parse(text)
        except SyntaxError as exc:
            found.append(Obligation(path, f"does not parse ({exc.msg}, line {exc.lineno})", True))
            continue
        if isinstance(module, UserClassIR):
            found.extend(_aggregate(path, tree, module))
        elif isinstance(module, UserUpcasterIR):
            function = _function(tree.body, "upcast")
            if function is None:
                found.append(Obligation(path, "defines no function upcast()", True))
            elif _is_stub(function):
                found.append(Obligation(path, "upcast() still raises NotImplementedError", False))
    return found


def _aggregate(path: Path, tree: ast.Module, module: UserClassIR) -> list[Obligation]:
    class_name, methods = module.class_name, module.methods
    cls = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name), None)
    if cls is None:
        return [Obligation(path, f"defines no class {class_name}", True)]
    found = _left_behind(path, cls, module)
    for method in methods:
        function = _function(cls.body, method.name)
        parameters = f"self, {method.parameters}" if method.parameters else "self"
        signature = f"{method.name}({parameters})"
        if function is None:
            what = f"{class_name} lacks {signature} -> {method.returns}"
            found.append(Obligation(path, what, True))
        elif _is_stub(function):
            what = f"{class_name}.{method.name} still raises NotImplementedError"
            found.append(Obligation(path, what, False))
    return found


# Hooks the runtime's bases define themselves: overriding one is never left behind.
_RUNTIME_HOOKS = frozenset({"on_timeout"})


def _left_behind(path: Path, cls: ast.ClassDef, module: UserClassIR) -> list[Obligation]:
    """Methods named like the base's but declared by it no more: their event or command
    was removed or renamed. With @override, mypy fails on them; without, they are dead
    code that nothing calls, so both are named."""
    declared = {method.name for method in module.methods} | set(module.hooks)
    prefixes = module.method_prefixes
    found = []
    for node in cls.body:
        if (
            isinstance(node, ast.FunctionDef)
            and prefixes
            and node.name.startswith(prefixes)
            and node.name not in declared
            and node.name not in _RUNTIME_HOOKS
        ):
            what = (
                f"{module.class_name}.{node.name} (line {node.lineno}) is not called any more: "
                "its event or command was removed, renamed, or is no longer handled here"
            )
            found.append(Obligation(path, what, False, left_behind=True))
    return found


def _function(body: list[ast.stmt], name: str) -> ast.FunctionDef | None:
    return next((n for n in body if isinstance(n, ast.FunctionDef) and n.name == name), None)


def _is_stub(function: ast.FunctionDef) -> bool:
    """True for a body that only raises NotImplementedError (after an optional docstring)."""
    body = function.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    if len(body) != 1 or not isinstance(body[0], ast.Raise):
        return False
    raised = body[0].exc
    if isinstance(raised, ast.Call):
        raised = raised.func
    return isinstance(raised, ast.Name) and raised.id == "NotImplementedError"
