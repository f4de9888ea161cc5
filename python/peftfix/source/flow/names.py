"""Name resolution for the data flow: what an import binds, and what a module's globals are.

Imports are values in the data flow, so a name resolves through whatever binds it on the path that reaches the
use: ``from transformers import AutoModel as AM`` makes ``AM`` transformers' ``AutoModel``, and a parameter,
assignment, function or class of the same name hides it. Inside functions, a name the function never bound is
a global: the module-level binding, when every module-level binding of that name agrees.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Optional, TypeVar

# Packages whose names the rules care about; a qualified name outside them is never one of "ours".
TRACKED_PACKAGES = frozenset(
    {"peft", "transformers", "trl", "torch", "bitsandbytes", "accelerate", "os", "sys", "unsloth", "builtins", "copy"}
)
# Builtins the flow gives a meaning to (an unbound ``exit(1)`` is ``builtins.exit``).
KNOWN_BUILTINS = frozenset({"exit", "quit", "isinstance", "hasattr", "getattr"})


@dataclass(frozen=True)
class ImportTarget:
    """What one name of an import statement refers to: ``module`` (dotted, relative to the importing file's
    package when ``level`` > 0) and, for ``from module import name``, ``name``."""

    module: str
    name: Optional[str]
    level: int = 0

    @property
    def qualified(self) -> Optional[str]:
        """The absolute dotted name, when the import is absolute."""
        if self.level:
            return None
        return f"{self.module}.{self.name}" if self.name else self.module


def import_bindings(node: ast.stmt) -> list[tuple[str, Optional[ImportTarget]]]:
    """(local name, target) for each name an import statement binds (None: a star import's unknown names)."""
    bound: list[tuple[str, Optional[ImportTarget]]] = []
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.asname:
                bound.append((alias.asname, ImportTarget(alias.name, None)))
            else:
                root = alias.name.split(".")[0]
                bound.append((root, ImportTarget(root, None)))
    elif isinstance(node, ast.ImportFrom):
        for alias in node.names:
            if alias.name == "*":
                continue
            bound.append((alias.asname or alias.name, ImportTarget(node.module or "", alias.name, node.level or 0)))
    return bound


def is_tracked(qualified: Optional[str]) -> bool:
    return qualified is not None and qualified.split(".", 1)[0] in TRACKED_PACKAGES


# Module-level values functions may read: literals of names and constants (`MODEL_CLASSES = {"llama": (...)}`).
LITERALS = (ast.Dict, ast.Tuple, ast.List, ast.Constant, ast.Name, ast.Attribute)


@dataclass(frozen=True, eq=False)
class GlobalValue:
    """A module-level name bound once to a literal: functions that read it see its value."""

    node: ast.expr


class _Conflict:
    """Marks a global bound in more than one way at module level: not resolvable."""


CONFLICT = _Conflict()


# Statements whose bodies (if any) are not module level.
_LEAVES = (
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
    ast.Assign,
    ast.Expr,
    ast.AnnAssign,
    ast.AugAssign,
    ast.Return,
    ast.Import,
    ast.ImportFrom,
    ast.Pass,
)


def module_level_statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Module-level statements, including those inside module-level if/try/with/for/while blocks."""
    for statement in body:
        yield statement
        if isinstance(statement, _LEAVES):
            continue
        for field in ("body", "orelse", "finalbody"):
            block = getattr(statement, field, None)
            if isinstance(block, list):
                yield from module_level_statements(block)
        for handler in getattr(statement, "handlers", ()):
            yield from module_level_statements(handler.body)
        for case in getattr(statement, "cases", ()):
            yield from module_level_statements(case.body)


def global_definitions(tree: ast.Module) -> dict[str, object]:
    """Module-level names and what binds them: an ``ImportTarget``, a function or class node, or ``CONFLICT``
    when several different bindings exist (then inside functions the name resolves to nothing)."""
    seen: dict[str, object] = {}

    def record(name: str, value: object) -> None:
        previous = seen.get(name, value)
        seen[name] = value if previous == value else CONFLICT

    for statement in module_level_statements(tree.body):
        if isinstance(statement, (ast.Import, ast.ImportFrom)):
            for name, target in import_bindings(statement):
                record(name, target if target is not None else CONFLICT)
        elif isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            record(statement.name, statement)
        elif isinstance(statement, ast.Assign) and _is_none(statement.value):
            continue  # `except ImportError: X = None` keeps the import's meaning where it exists
        elif (
            isinstance(statement, ast.Assign)
            and len(statement.targets) == 1
            and isinstance(statement.targets[0], ast.Name)
            and isinstance(statement.value, LITERALS)
        ):
            record(statement.targets[0].id, GlobalValue(statement.value))
        elif isinstance(statement, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            assigned = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            for target_node in assigned:
                for name in target_names(target_node):
                    record(name, CONFLICT)
        elif isinstance(statement, (ast.For, ast.AsyncFor)):
            for name in target_names(statement.target):
                record(name, CONFLICT)
        elif isinstance(statement, (ast.With, ast.AsyncWith)):
            for item in statement.items:
                if item.optional_vars is not None:
                    for name in target_names(item.optional_vars):
                        record(name, CONFLICT)
    return seen


def _is_none(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def target_names(target: ast.AST) -> list[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [name for element in target.elts for name in target_names(element)]
    if isinstance(target, ast.Starred):
        return target_names(target.value)
    return []


def dotted_name(node: Optional[ast.AST]) -> Optional[str]:
    """``x`` or ``self.model.inner`` as a string; None for anything else."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted_name(node.value)
        return f"{base}.{node.attr}" if base is not None else None
    return None


T = TypeVar("T")


def on_node(node: ast.AST, key: str, compute: Callable[[], T]) -> T:
    """``compute()``, once per ``node``: kept as an attribute of the node, so it lives and dies with its tree
    (no cache keyed by nodes to keep trees alive or to look up by hashing)."""
    attribute = f"_peftfix_{key}"
    known = getattr(node, attribute, None)
    if known is None:
        known = compute()
        setattr(node, attribute, known)
    return known
