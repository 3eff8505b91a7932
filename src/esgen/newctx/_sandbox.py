"""Rendering of user-supplied templates within limits of time, memory, output and recursion.

A template folder may come from anyone (`esgen new --template PATH`). Jinja's sandbox keeps
it away from Python internals; these limits keep it from hanging or exhausting the machine
(`{{ "a" * 3000000000 }}`, a macro that calls itself, loops of loops that print nothing).

On Linux each render runs in a forked child: fork costs milliseconds and needs nothing
pickled in, an address-space limit (RLIMIT_AS) there turns any runaway allocation into a
MemoryError, and the parent kills a child that runs past its time, whatever it is doing
(an endless loop in plain Python or in C). Elsewhere fork is unavailable or unsafe (macOS
system libraries), so the render runs in process with only the output and recursion
limits and the size checks on `*`, `+` and `**` below.

One run of `esgen new` renders many texts (names, defaults, files); a RenderBudget gives
them MAX_TOTAL_SECONDS in all, so many files each just under MAX_SECONDS cannot add up.
"""

from __future__ import annotations

import multiprocessing
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from multiprocessing.connection import Connection
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from esgen.newctx._manifest import TemplateError, cut

__all__ = [
    "MAX_MEMORY",
    "MAX_OUTPUT",
    "MAX_SECONDS",
    "MAX_TOTAL_SECONDS",
    "BoundedEnvironment",
    "RenderBudget",
    "TemplateLimitError",
    "TemplateRenderError",
    "render_bounded",
]

MAX_SECONDS = 10.0  # a real template renders in milliseconds
MAX_TOTAL_SECONDS = 30.0  # for every render of one `esgen new` run
MAX_OUTPUT = 16_000_000  # characters of one rendered text
MAX_MEMORY = 1 << 30  # bytes a render may add to the process (Linux)
_USE_FORK = sys.platform == "linux"


class TemplateRenderError(TemplateError):
    """A render that failed in the template's own code (`{{ 1/0 }}`); `line` is the template
    line it was on, when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line

    def __reduce__(self) -> tuple[Any, ...]:  # crosses back from the child by pickle
        return (type(self), (str(self), self.line))


class TemplateLimitError(TemplateRenderError):
    """A render stopped at a limit."""


class RenderBudget:
    """The time left to the renders of one run; each render gets at most MAX_SECONDS of it.
    Only time spent rendering counts, not a person's time answering a prompt."""

    def __init__(self, seconds: float = MAX_TOTAL_SECONDS) -> None:
        self.seconds = seconds
        self.used = 0.0

    def remaining(self) -> float:
        return self.seconds - self.used

    def spent(self) -> TemplateLimitError:
        return TemplateLimitError(
            f"the template's renders took longer than {self.seconds:g} s in all; "
            "stopped while rendering this (a loop without end?)"
        )


class BoundedEnvironment(SandboxedEnvironment):
    """The sandbox, refusing operators whose result would be larger than any output allowed:
    checked before computing, since computing is what exhausts memory."""

    intercepted_binops = frozenset({"*", "+", "**"})

    def call_binop(
        self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any
    ) -> Any:
        if operator == "*":
            _check_repeat(left, right)
            _check_repeat(right, left)
        elif operator == "+" and _sized(left) and _sized(right):
            _check_size(len(left) + len(right))
        elif operator == "**" and _integer(left) and _integer(right) and right > 0:
            _check_size(max(abs(left), 2).bit_length() * right // 3)  # about its digits
        return super().call_binop(context, operator, left, right)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _sized(value: Any) -> bool:
    return isinstance(value, str | list | tuple)


def _check_repeat(seq: Any, times: Any) -> None:
    if _sized(seq) and _integer(times):
        _check_size(len(seq) * times)


def _check_size(size: int) -> None:
    if size > MAX_OUTPUT:
        raise TemplateLimitError(f"an expression makes a value of more than {MAX_OUTPUT:,} items")


def render_bounded(
    load: Callable[[], jinja2.Template], values: Mapping[str, Any], budget: RenderBudget
) -> str:
    """The template `load` returns, rendered with `values`. Loading (parsing) is bounded too:
    a deep enough nesting of brackets exhausts the parser's recursion. Raises
    TemplateLimitError at a limit, TemplateRenderError for any other exception of the
    template's code, and jinja's errors and TemplateError as they were raised."""
    return _run(lambda: _render(load, values), budget)


def _render(load: Callable[[], jinja2.Template], values: Mapping[str, Any]) -> str:
    parts: list[str] = []
    size = 0
    template = None
    try:
        template = load()
        # Streamed, so output is counted as it grows rather than after it is all there.
        for chunk in template.generate(values):
            size += len(chunk)
            if size > MAX_OUTPUT:
                raise TemplateLimitError(f"renders more than {MAX_OUTPUT:,} characters")
            parts.append(chunk)
    except TemplateLimitError as exc:
        exc.line = exc.line or _line(exc, template)
        raise
    except RecursionError as exc:
        raise TemplateLimitError(
            "nests or recurses too deeply (a macro or include that calls itself without end?)",
            _line(exc, template),
        ) from None
    except MemoryError as exc:
        raise TemplateLimitError(
            f"needs more than {MAX_MEMORY >> 20:,} MB of memory to render", _line(exc, template)
        ) from None
    except (TemplateError, jinja2.TemplateError):
        raise  # already say what is wrong; the caller names the file
    except Exception as exc:  # `{{ 1/0 }}`, `{{ "%d" | format("x") }}`: the template's bug
        raise TemplateRenderError(
            f"raised {type(exc).__name__} ({cut(str(exc))})", _line(exc, template)
        ) from None
    return "".join(parts)


def _line(exc: BaseException, template: jinja2.Template | None) -> int | None:
    """The template line an exception was raised on: jinja rewrites tracebacks so that its
    frames carry the template's file name and line."""
    if template is None or template.filename is None:
        return None
    line = None
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        if frame.f_code.co_filename == template.filename:
            line = lineno
    return line


def _run(render: Callable[[], str], budget: RenderBudget) -> str:
    remaining = budget.remaining()
    if remaining <= 0:
        raise budget.spent()
    started = time.monotonic()
    try:
        return render() if not _USE_FORK else _run_forked(render, budget, remaining)
    finally:
        budget.used += time.monotonic() - started


def _run_forked(render: Callable[[], str], budget: RenderBudget, remaining: float) -> str:
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(render, sender), daemon=True)
    child.start()
    sender.close()
    try:
        if not receiver.poll(min(MAX_SECONDS, remaining)):
            if remaining < MAX_SECONDS:
                raise budget.spent()
            raise TemplateLimitError(
                f"took longer than {MAX_SECONDS:g} s to render (a loop without end?)"
            )
        try:
            kind, payload = receiver.recv()
        except EOFError:
            raise TemplateLimitError("the render ended without a result") from None
    finally:
        if child.is_alive():
            child.kill()
        child.join()
        receiver.close()
    if kind == "error":
        raise payload
    text: str = payload
    return text


def _child(render: Callable[[], str], sender: Connection) -> None:
    _limit_memory()
    outcome: tuple[str, Any]
    try:
        outcome = ("ok", render())
    except Exception as exc:
        outcome = ("error", exc)
    try:
        sender.send(outcome)
    except Exception:  # an exception that does not pickle: its message still does
        sender.send(("error", TemplateError(str(outcome[1]))))


def _limit_memory() -> None:
    import resource  # Unix only, and only the forked child needs it

    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            in_use = int(statm.read().split()[0]) * resource.getpagesize()
    except OSError:
        return
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    soft = in_use + MAX_MEMORY
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
