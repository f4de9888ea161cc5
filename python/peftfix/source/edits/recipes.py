"""Building the edits several rules' fixes share, on libcst: the statement line of a call, dropping an import
that a removed call leaves unused, setting ``is_trainable=True``."""

from __future__ import annotations

import ast
from typing import Optional

import libcst as cst

from peftfix.diagnostics import Edit
from peftfix.source.context import FileContext
from peftfix.source.edits import FixUnavailable
from peftfix.source.edits.bridge import FixContext
from peftfix.source.edits.imports import binding_of, is_unused_after, rewrite_import
from peftfix.source.syntax import keyword_arg


def statement_line(context: FixContext, node: ast.AST) -> cst.SimpleStatementLine:
    found = context.cst.statement_of(context.node(node))
    if found is None:
        raise FixUnavailable("no statement line")
    return found


def unused_import_edit(ctx: FileContext, func: cst.CSTNode) -> Optional[Edit]:
    """Drop the import of a called name when the removed call was its only use; None when nothing to drop."""
    if not isinstance(func, cst.Name):
        return None
    binding = binding_of(ctx, func.value)
    if binding is None or not is_unused_after(ctx, func.value, [func]):
        return None
    return rewrite_import(ctx, binding, remove=True)


def set_is_trainable(ctx: FileContext, call: cst.Call) -> Optional[Edit]:
    """``is_trainable=True`` on a ``from_pretrained`` call: added, or a literal False flipped."""
    existing = keyword_arg(call, "is_trainable")
    if existing is None:
        return ctx.add_keyword_argument(call, "is_trainable", "True")
    if isinstance(existing.value, cst.Name) and existing.value.value == "False":
        return ctx.replace(existing.value, "True")
    return None
