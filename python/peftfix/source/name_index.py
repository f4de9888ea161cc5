"""Where each name is read and bound in a file, for fixes that must know whether a name is used elsewhere.

Built from CPython's ``ast`` (parsed in C, a millisecond for a typical script) rather than libcst's scope
analysis (a full Python-level pass over the tree), and only when a fix asks. It ignores scopes: a read of the
same name in another function counts as a read. That errs on the side of keeping an import or calling a fix
unsafe, never the other way.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from typing import Optional

from peftfix.source.parsing import parse_python


class NameIndex:
    def __init__(self, source: str, line_starts: list[int], tree: Optional[ast.AST] = None):
        self._source = source
        self._line_starts = line_starts
        self.reads: dict[str, list[int]] = defaultdict(list)  # name -> offsets of its loads
        self.binds: dict[str, list[int]] = defaultdict(list)  # name -> offsets where it is (re)bound
        if tree is None:
            try:
                tree = parse_python(source)
            except (SyntaxError, ValueError, RecursionError, MemoryError):
                # Syntax this interpreter rejects: know nothing, so every query is pessimistic.
                self.complete = False
                return
        self.complete = True
        for node in ast.walk(tree):
            if isinstance(node, ast.Name):
                target = self.reads if isinstance(node.ctx, ast.Load) else self.binds
                target[node.id].append(self._offset(node.lineno, node.col_offset))
            elif isinstance(node, ast.arg):
                self.binds[node.arg].append(self._offset(node.lineno, node.col_offset))
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.ExceptHandler)):
                if node.name:  # `except E:` binds nothing
                    self.binds[node.name].append(self._offset(node.lineno, node.col_offset))
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    local = alias.asname or alias.name.split(".")[0]
                    self.binds[local].append(self._offset(node.lineno, node.col_offset))

    def reads_of(self, name: str) -> list[int]:
        return self.reads.get(name, []) if self.complete else [-1]  # -1: a read nobody can account for

    def reads_between(self, name: str, start: int, end: int) -> list[int]:
        if not self.complete:
            return [start]
        return [offset for offset in self.reads.get(name, ()) if start <= offset < end]

    def bound_between(self, name: str, start: int, end: int) -> bool:
        return not self.complete or any(start <= offset < end for offset in self.binds.get(name, ()))

    def _offset(self, line: int, utf8_column: int) -> int:
        """ast columns count UTF-8 bytes; offsets here count characters, like libcst's."""
        start = self._line_starts[line - 1]
        text = self._source[start : start + utf8_column]
        if text.isascii():
            return start + utf8_column
        return start + len(self._source[start:].encode("utf-8")[:utf8_column].decode("utf-8", "ignore"))
