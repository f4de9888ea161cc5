"""One parsed source file: its text, its CPython ``ast`` tree and the positions of its nodes.

The analysis runs on CPython's ``ast`` (parsed in C): one parse per file, positions straight from the nodes.
``ast`` columns count UTF-8 bytes; users, editors and edits count characters, so every position goes through
:meth:`SourceModule.offset`, which is free on ASCII lines. What only fixes need (the parent of each node, the
name index) is built on first use, so a clean file pays for none of it.
"""

from __future__ import annotations

import ast
import bisect
import re
from collections.abc import Iterator
from typing import Optional

from peftfix.diagnostics import Location
from peftfix.source.name_index import NameIndex

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _span(node: ast.AST) -> tuple[tuple[int, int], tuple[int, int]]:
    start = (node.lineno, node.col_offset)  # type: ignore[attr-defined]
    end = (getattr(node, "end_lineno", None) or start[0], getattr(node, "end_col_offset", None) or start[1])
    return start, end


def _contains(statement: ast.AST, wanted: tuple[tuple[int, int], tuple[int, int]]) -> bool:
    span = _span(statement)
    return span[0] <= wanted[0] and wanted[1] <= span[1]


def _blocks(statement: ast.stmt) -> list[list[ast.stmt]]:
    """The statement lists directly inside a compound statement."""
    blocks = [
        getattr(statement, field)
        for field in ("body", "orelse", "finalbody")
        if isinstance(getattr(statement, field, None), list)
    ]
    blocks += [handler.body for handler in getattr(statement, "handlers", ())]
    blocks += [case.body for case in getattr(statement, "cases", ())]
    return blocks


def line_starts(source: str) -> list[int]:
    """Offsets where lines start; like Python, a lone CR ends a line too."""
    return [0] + [match.end() for match in _LINE_BREAK.finditer(source)]


class SourceModule:
    """A module of the analysed program. ``name`` is its dotted module name when it is known."""

    def __init__(self, source: str, filename: str, tree: ast.Module, name: Optional[str] = None):
        self.source = source
        self.filename = filename
        self.tree = tree
        self.name = name
        self.line_starts = line_starts(source)
        self._starts: dict[int, list[tuple[int, int]]] = {}  # statement starts per block, for _locate

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"SourceModule({self.filename!r})"

    # ------------------------------------------------------------------------------------------- positions

    def offset(self, line: int, utf8_column: int) -> int:
        """The character offset of a 1-based line and an ``ast`` (UTF-8 byte) column."""
        start = self.line_starts[line - 1]
        text = self.source[start : start + utf8_column]
        if text.isascii():
            return start + utf8_column
        return start + len(self.source[start:].encode("utf-8")[:utf8_column].decode("utf-8", "ignore"))

    def span(self, node: ast.AST) -> tuple[int, int]:
        """Start and end character offsets of ``node``."""
        start = self.offset(node.lineno, node.col_offset)  # type: ignore[attr-defined]
        end_line = getattr(node, "end_lineno", None) or node.lineno  # type: ignore[attr-defined]
        end_column = getattr(node, "end_col_offset", None)
        end = self.offset(end_line, end_column) if end_column is not None else start
        return start, end

    def location(self, offset: int) -> Location:
        line_index = bisect.bisect_right(self.line_starts, offset) - 1
        return Location(line_index + 1, offset - self.line_starts[line_index] + 1)

    def line_of(self, node: ast.AST) -> int:
        return int(node.lineno)  # type: ignore[attr-defined]

    def text_of(self, node: ast.AST) -> str:
        start, end = self.span(node)
        return self.source[start:end]

    # ------------------------------------------------------------------------------- structure (on demand)

    def names_between(self, start: int, end: int) -> NameIndex:
        """Where names are read and bound in the statements overlapping ``[start, end)``: only those are walked,
        so asking about a few lines of a large file costs a few lines."""
        body = self.tree.body
        starts = [self.offset(s.lineno, s.col_offset) for s in body]
        first = max(bisect.bisect_right(starts, start) - 1, 0)
        last = bisect.bisect_left(starts, end)
        part = ast.Module(body=body[first:last], type_ignores=[])
        return NameIndex(self.source, self.line_starts, part)

    def statement_of(self, node: ast.AST) -> Optional[ast.stmt]:
        """The innermost statement containing ``node`` (``node`` itself when it is one)."""
        found = self._locate(node)
        return found[0] if found is not None else None

    def block_of(self, statement: ast.stmt) -> Optional[tuple[ast.AST, list[ast.stmt]]]:
        """The node and the statement list (``body``, ``orelse``, a handler's body...) holding ``statement``."""
        found = self._locate(statement)
        return (found[1], found[2]) if found is not None else None

    def _locate(self, node: ast.AST) -> Optional[tuple[ast.stmt, ast.AST, list[ast.stmt]]]:
        """(innermost statement containing ``node``, its parent, the list holding it), found by descending
        through the statements by position (a bisection per level: no parent map of the whole tree)."""
        wanted = _span(node)
        parent: ast.AST = self.tree
        block: list[ast.stmt] = self.tree.body
        while True:
            starts = self._starts.get(id(block))
            if starts is None:
                starts = self._starts[id(block)] = [(s.lineno, s.col_offset) for s in block]
            index = bisect.bisect_right(starts, wanted[0]) - 1
            if index < 0:
                return None
            statement = block[index]
            span = _span(statement)
            if not (span[0] <= wanted[0] and wanted[1] <= span[1]):
                return None
            if statement is node:
                return statement, parent, block
            inner = next(
                (sub for sub in _blocks(statement) if sub and _span(sub[0])[0] <= wanted[0] <= _span(sub[-1])[1]),
                None,
            )
            if inner is None or not any(_contains(s, wanted) for s in inner):
                return statement, parent, block
            parent, block = statement, inner

    def is_alone_on_its_lines(self, statement: ast.stmt) -> bool:
        """True when no other statement shares the statement's lines (not ``a = 1; b = 2``, not ``if x: y``)."""
        start, end = self.span(statement)
        line_start = self.line_starts[statement.lineno - 1]
        if self.source[line_start:start].strip():
            return False
        end_line = statement.end_lineno or statement.lineno
        line_end = self.line_starts[end_line] if end_line < len(self.line_starts) else len(self.source)
        rest = self.source[end:line_end]
        return rest.strip() == "" or rest.strip().startswith("#")

    def statements(self) -> Iterator[ast.stmt]:
        """Every statement, however nested."""
        for node in ast.walk(self.tree):
            if isinstance(node, ast.stmt):
                yield node
