"""The catalog of a schema folder (`esgen docs`): schema -> catalog IR -> pages -> plan.

The IR carries each publishing context's AsyncAPI document as plain data; rendering dumps
it beside the pages. `render_trace_html` draws the page of one trace of `esgen inspect`
(its JSON in, HTML out).

Each stage can be called alone; only `esgen.codegen.apply_plan` writes.
"""

from esgen.docs._asyncapi import asyncapi_document, asyncapi_file
from esgen.docs._build import build_catalog
from esgen.docs._graph import Edge, Flow, Node, flow_of
from esgen.docs._ir import Catalog, ContextDoc
from esgen.docs._layout import Diagram, layout
from esgen.docs._plan import is_catalog_file, plan_catalog, plan_docs
from esgen.docs._render import render_asyncapi, render_catalog
from esgen.docs._trace import render_trace_html

__all__ = [
    "Catalog",
    "ContextDoc",
    "Diagram",
    "Edge",
    "Flow",
    "Node",
    "asyncapi_document",
    "asyncapi_file",
    "build_catalog",
    "flow_of",
    "is_catalog_file",
    "layout",
    "plan_catalog",
    "plan_docs",
    "render_asyncapi",
    "render_catalog",
    "render_trace_html",
]
