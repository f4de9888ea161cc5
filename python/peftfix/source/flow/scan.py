"""Which functions are worth interpreting, decided on their text.

Walking an ``ast`` in Python costs several times parsing it, so this looks at statements only (imports and
definitions) and at each function's source text: a function that mentions none of the names the flow cares
about and hands nothing back from its parameters cannot tell the analysis anything. Mentions in strings and
comments count too; that only makes a function interpreted for nothing, never skipped wrongly.
"""

from __future__ import annotations

import ast
import re
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

from peftfix.source.flow.library import library
from peftfix.source.flow.names import GlobalValue, global_definitions

if TYPE_CHECKING:
    from peftfix.source.module import SourceModule

FunctionNode = (ast.FunctionDef, ast.AsyncFunctionDef)
# Method names that mean something on a model, a trainer, an optimizer or a loss, whatever the receiver's name.
MEANINGFUL_ATTRIBUTES = frozenset(
    {"train", "step", "backward", "requires_grad", "requires_grad_", "from_pretrained", "from_config"}
)
# A function stores something on an attribute (`self.model = ...`): what it stored flows back to the caller.
ATTRIBUTE_STORE = re.compile(r"^[ \t]*[A-Za-z_][\w.]*\.\w+[ \t]*(?::[^=\n]*)?=(?!=)", re.MULTILINE)


# An identifier as Python spells one (the text's words are matched against a set: one pass over the text).
IDENTIFIER = re.compile(r"[^\W\d]\w*")


@dataclass
class ModuleScan:
    names: frozenset[str]  # every name the flow cares about

    def relevant(self, function: ast.AST, module: SourceModule) -> bool:
        """Whether interpreting ``function`` can tell anything: it mentions an interesting name, stores on an
        attribute, or returns something that mentions a parameter."""
        start, end = module.span(function)
        text = module.source[start:end]
        if not self.names.isdisjoint(IDENTIFIER.findall(text)) or ATTRIBUTE_STORE.search(text):
            return True
        arguments = function.args  # type: ignore[attr-defined]
        params = [arg.arg for arg in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]]
        if not params:
            return False
        returned = re.compile(r"\b(?:return|yield)\b[^\n]*\b(?:" + "|".join(map(re.escape, params)) + r")\b")
        return returned.search(text) is not None


_SCANS: weakref.WeakKeyDictionary[ast.Module, ModuleScan] = weakref.WeakKeyDictionary()


def scan(module: SourceModule) -> ModuleScan:
    """The scan of ``module`` (computed on first use)."""
    found = _SCANS.get(module.tree)
    if found is None:
        found = _SCANS[module.tree] = _scan(module)
    return found


def _scan(module: SourceModule) -> ModuleScan:
    model = library()
    names = set(MEANINGFUL_ATTRIBUTES) | set(model.methods) | set(model.tokenizer_methods)
    pending: list[ast.stmt] = list(module.tree.body)
    while pending:
        statement = pending.pop()
        if isinstance(statement, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in statement.names)
        elif isinstance(statement, (*FunctionNode, ast.ClassDef)):
            names.add(statement.name)
        for field in ("body", "orelse", "finalbody"):
            block = getattr(statement, field, None)
            if isinstance(block, list):
                pending.extend(block)
        for part in (*getattr(statement, "handlers", ()), *getattr(statement, "cases", ())):
            pending.extend(part.body)
    names.update(name for name, value in global_definitions(module.tree).items() if isinstance(value, GlobalValue))
    return ModuleScan(frozenset(names))
