"""Name resolution for the data flow: which import a name refers to, with shadowing respected.

Imports are values in the data flow (``Kind.MODULE`` objects), so a name resolves through whatever binds it on
the path that reaches the use: ``from transformers import AutoModel as AM`` makes ``AM`` transformers'
``AutoModel``, and a parameter, assignment, function or class of the same name hides it. Inside functions a
name the function never bound falls back to the module's imports, when every module-level binding of that name
is the same import.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Optional

import libcst as cst

from peftfix.source.syntax import dotted_name

# Packages whose names the rules care about; a qualified name outside them is never one of "ours".
TRACKED_PACKAGES = frozenset({"peft", "transformers", "trl", "torch", "bitsandbytes", "accelerate", "os"})
_NOT_AN_IMPORT = object()


def import_bindings(node: cst.CSTNode) -> list[tuple[str, Optional[str]]]:
    """(local name, qualified name) for each name an import statement binds; None for unknown (relative) ones."""
    bound: list[tuple[str, Optional[str]]] = []
    if isinstance(node, cst.Import):
        for alias in node.names:
            full = dotted_name(alias.name) or ""
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                bound.append((alias.asname.name.value, full))
            else:
                root = full.split(".")[0]
                bound.append((root, root))
        return bound
    if isinstance(node, cst.ImportFrom):
        if isinstance(node.names, cst.ImportStar):
            return []
        module = dotted_name(node.module) if node.module is not None else None
        for alias in node.names:
            imported = dotted_name(alias.name) or ""
            local = (
                alias.asname.name.value
                if alias.asname is not None and isinstance(alias.asname.name, cst.Name)
                else imported
            )
            qualified = f"{module}.{imported}" if module and not node.relative else None
            bound.append((local, qualified))
        return bound
    return []


def module_level_imports(module: cst.Module) -> dict[str, str]:
    """Names that every module-level binding makes the same import (what functions see as globals)."""
    seen: dict[str, object] = {}

    def record(name: str, qualified: object) -> None:
        previous = seen.get(name, qualified)
        seen[name] = qualified if previous == qualified else _NOT_AN_IMPORT

    for statement in _module_level_statements(module.body):
        if isinstance(statement, cst.SimpleStatementLine):
            for small in statement.body:
                for name, qualified in import_bindings(small):
                    record(name, qualified if qualified is not None else _NOT_AN_IMPORT)
                for name in _assigned_names(small):
                    record(name, _NOT_AN_IMPORT)
        elif isinstance(statement, (cst.FunctionDef, cst.ClassDef)):
            record(statement.name.value, _NOT_AN_IMPORT)
        elif isinstance(statement, cst.For):
            for name in _target_names(statement.target):
                record(name, _NOT_AN_IMPORT)
        elif isinstance(statement, cst.With):
            for item in statement.items:
                if item.asname is not None:
                    for name in _target_names(item.asname.name):
                        record(name, _NOT_AN_IMPORT)
    return {name: qualified for name, qualified in seen.items() if isinstance(qualified, str)}


def is_tracked(qualified: Optional[str]) -> bool:
    return qualified is not None and qualified.split(".", 1)[0] in TRACKED_PACKAGES


def _module_level_statements(body: Iterable[cst.CSTNode]):
    """Module-level statements, including those inside module-level if/try/with/for blocks."""
    for statement in body:
        yield statement
        if isinstance(statement, (cst.FunctionDef, cst.ClassDef)):
            continue
        for block in _blocks(statement):
            yield from _module_level_statements(block)


def _blocks(statement: cst.CSTNode):
    body = getattr(statement, "body", None)
    if isinstance(body, cst.IndentedBlock):
        yield body.body
    orelse = getattr(statement, "orelse", None)
    if orelse is not None:
        yield [orelse] if isinstance(orelse, cst.If) else orelse.body.body
    for handler in getattr(statement, "handlers", ()):
        yield handler.body.body
    final = getattr(statement, "finalbody", None)
    if final is not None:
        yield final.body.body


def _assigned_names(small: cst.CSTNode) -> list[str]:
    if isinstance(small, cst.Assign):
        return [name for target in small.targets for name in _target_names(target.target)]
    if isinstance(small, (cst.AnnAssign, cst.AugAssign)):
        return _target_names(small.target)
    if isinstance(small, cst.Del):
        return _target_names(small.target)
    return []


def _target_names(target: cst.CSTNode) -> list[str]:
    if isinstance(target, cst.Name):
        return [target.value]
    if isinstance(target, (cst.Tuple, cst.List)):
        return [name for element in target.elements for name in _target_names(element.value)]
    if isinstance(target, cst.StarredElement):
        return _target_names(target.value)
    return []
