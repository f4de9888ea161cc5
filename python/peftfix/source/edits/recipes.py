"""Edit recipes shared by several rules' fixes (removing a call's statement, setting ``is_trainable``...)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import libcst as cst

from peftfix.diagnostics import Edit
from peftfix.source.context import FileContext
from peftfix.source.edits.imports import binding_of, is_unused_after, rewrite_import
from peftfix.source.syntax import dotted_name, keyword_arg


@dataclass(frozen=True)
class CallStatement:
    """A statement that is one call, bare (``f(x)``) or assigned to one name (``y = f(x)``)."""

    statement: cst.SimpleStatementLine
    target: Optional[str]  # the assigned name, None for a bare call


def call_statement(ctx: FileContext, call: cst.Call) -> Optional[CallStatement]:
    statement = ctx.statement_of(call)
    if statement is None or not ctx.is_alone_on_its_lines(statement):
        return None
    small = statement.body[0]
    if isinstance(small, cst.Expr) and small.value is call:
        return CallStatement(statement, None)
    if isinstance(small, cst.Assign) and small.value is call and len(small.targets) == 1:
        target = dotted_name(small.targets[0].target)
        if target is not None:
            return CallStatement(statement, target)
    return None


def next_rebinding(ctx: FileContext, name: str, statement: cst.SimpleStatementLine) -> Optional[int]:
    """Where ``name`` is next assigned by a statement of the same block as ``statement`` (reads after that are
    of the new value); None when it is not (a rebinding inside a branch may not happen)."""
    located = ctx.locate_statement(statement)
    siblings = list(getattr(located[1], "body", ())) if located else []
    if statement not in siblings:
        return None
    for sibling in siblings[siblings.index(statement) + 1 :]:
        if not isinstance(sibling, cst.SimpleStatementLine):
            continue
        for small in sibling.body:
            if isinstance(small, cst.Assign) and any(dotted_name(t.target) == name for t in small.targets):
                return ctx.span_of(sibling)[0]
    return None


def same_block(ctx: FileContext, a: cst.CSTNode, b: cst.CSTNode) -> bool:
    """Both nodes sit in statements of the same block, so one runs whenever the other does."""
    located_a, located_b = ctx.locate_statement(a), ctx.locate_statement(b)
    return located_a is not None and located_b is not None and located_a[1] is located_b[1]


def references_between(ctx: FileContext, name: str, start: int, end: int, ignore=()) -> list[int]:
    """Offsets of reads of ``name`` in [start, end), except at the ``ignore`` nodes (attributes: none tracked)."""
    if "." in name:
        return []
    ignored = {ctx.span_of(node)[0] for node in ignore}
    return [offset for offset in ctx.names.reads_between(name, start, end) if offset not in ignored]


def assigned_between(ctx: FileContext, name: str, start: int, end: int) -> bool:
    # Attribute targets (``self.model``) are not indexed: assume the worst.
    return "." in name or ctx.names.bound_between(name, start, end)


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
