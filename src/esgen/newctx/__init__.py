"""Starting a bounded context from a template (`esgen new`).

template folder -> answers -> rendered files -> a plan with the generator's output ->
written by `esgen.codegen.apply_plan`, or refused whole when any file would clash.
"""

from esgen.newctx._manifest import (
    MANIFEST,
    ROLES,
    Question,
    Template,
    TemplateError,
    bundled_templates,
    load_template,
    resolve_template,
)
from esgen.newctx._plan import Clash, NewPlan, plan_new
from esgen.newctx._project import Project, locate_project
from esgen.newctx._render import Ask, FreeText, check_value, render_template, resolve_answers
from esgen.newctx._sandbox import RenderBudget
from esgen.newctx._source import DEV_EXTRAS, Requirements, esgen_requirements

__all__ = [
    "DEV_EXTRAS",
    "MANIFEST",
    "ROLES",
    "Ask",
    "Clash",
    "FreeText",
    "NewPlan",
    "Project",
    "Question",
    "RenderBudget",
    "Requirements",
    "Template",
    "TemplateError",
    "bundled_templates",
    "check_value",
    "esgen_requirements",
    "load_template",
    "locate_project",
    "plan_new",
    "render_template",
    "resolve_answers",
    "resolve_template",
]
