"""Deciding, on the ``ast``, whether a fix is possible and how safe it is: whether a call is a statement of its
own, whether two calls share a block, whether a name is read or bound between two points. No libcst here: the
analysis plans every fix with these, and only building a fix's edits needs libcst (``recipes``)."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Optional

from peftfix.source.flow.names import dotted_name
from peftfix.source.module import SourceModule


@dataclass(frozen=True)
class CallStatement:
    """A statement that is one call, bare (``f(x)``) or assigned to one name (``y = f(x)``)."""

    statement: ast.stmt
    target: Optional[str]  # the assigned name, None for a bare call


def call_statement(module: SourceModule, call: ast.AST) -> Optional[CallStatement]:
    statement = module.statement_of(call)
    if statement is None or not module.is_alone_on_its_lines(statement):
        return None
    if isinstance(statement, ast.Expr) and statement.value is call:
        return CallStatement(statement, None)
    if isinstance(statement, ast.Assign) and statement.value is call and len(statement.targets) == 1:
        target = dotted_name(statement.targets[0])
        if target is not None:
            return CallStatement(statement, target)
    return None


def next_rebinding(module: SourceModule, name: str, statement: ast.stmt) -> Optional[int]:
    """Where ``name`` is next assigned by a statement of the same block as ``statement`` (reads after that are
    of the new value); None when it is not (a rebinding inside a branch may not happen)."""
    located = module.block_of(statement)
    if located is None:
        return None
    siblings = located[1]
    index = next(i for i, sibling in enumerate(siblings) if sibling is statement)
    for sibling in siblings[index + 1 :]:
        if isinstance(sibling, ast.Assign) and any(dotted_name(target) == name for target in sibling.targets):
            return module.span(sibling)[0]
    return None


def same_block(module: SourceModule, a: ast.AST, b: ast.AST) -> bool:
    """Both nodes sit in statements of the same block, so one runs whenever the other does."""
    statement_a, statement_b = module.statement_of(a), module.statement_of(b)
    if statement_a is None or statement_b is None:
        return False
    block_a, block_b = module.block_of(statement_a), module.block_of(statement_b)
    if block_a is None or block_b is None:
        # Module level: the tree's body.
        top = module.tree.body
        return any(s is statement_a for s in top) and any(s is statement_b for s in top)
    return block_a[1] is block_b[1]


def references_between(
    module: SourceModule, name: str, start: int, end: int, ignore: Iterable[ast.AST] = ()
) -> list[int]:
    """Offsets of reads of ``name`` in [start, end), except at the ``ignore`` nodes (attributes: none tracked)."""
    if "." in name:
        return []
    ignored = {module.span(node)[0] for node in ignore}
    return [
        offset for offset in module.names_between(start, end).reads_between(name, start, end) if offset not in ignored
    ]


def assigned_between(module: SourceModule, name: str, start: int, end: int) -> bool:
    # Attribute targets (``self.model``) are not indexed: assume the worst.
    return "." in name or module.names_between(start, end).bound_between(name, start, end)


def can_set_is_trainable(call: ast.AST) -> bool:
    """``is_trainable=True`` can be added (no such keyword yet) or a literal False flipped."""
    if not isinstance(call, ast.Call):
        return False
    existing = next((keyword for keyword in call.keywords if keyword.arg == "is_trainable"), None)
    return existing is None or (isinstance(existing.value, ast.Constant) and existing.value.value is False)


def import_binding_count(module: SourceModule, local_name: str) -> int:
    """How many module-level ``from x import ...`` aliases bind ``local_name``."""
    count = 0
    for statement in module.tree.body:
        if isinstance(statement, ast.ImportFrom):
            count += sum(1 for alias in statement.names if (alias.asname or alias.name) == local_name)
    return count
