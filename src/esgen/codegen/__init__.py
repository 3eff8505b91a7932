"""Generating code: schema model -> IR -> rendered files -> formatted -> written."""

from esgen._formatter import FORMATTERS, Formatter, FormatterName
from esgen.codegen._build import build_ir
from esgen.codegen._generate import plan_generation
from esgen.codegen._obligations import Obligation
from esgen.codegen._render import RenderedFile, render
from esgen.codegen._write import (
    Change,
    Plan,
    Status,
    WriteError,
    Written,
    apply_plan,
    check_inside,
    make_plan,
    write_file,
)

__all__ = [
    "FORMATTERS",
    "Change",
    "Formatter",
    "FormatterName",
    "Obligation",
    "Plan",
    "RenderedFile",
    "Status",
    "WriteError",
    "Written",
    "apply_plan",
    "build_ir",
    "check_inside",
    "make_plan",
    "plan_generation",
    "render",
    "write_file",
]
