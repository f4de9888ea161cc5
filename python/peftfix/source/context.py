"""A file's libcst tree with its positions (computed once) and the edit builders fixes use.

Only fixes need this (the analysis runs on ``ast``): it is built when a fix is applied or shown. Fixes never
touch text directly: they ask the context for edits, which it expresses as offsets into the decoded source plus
1-based locations. An edit is trimmed to the span that really changes, so a fix that
rebuilds a whole call with libcst still shows up as the few characters it alters.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Mapping
from typing import Optional, Union

import libcst as cst
from libcst.metadata import CodeRange, MetadataWrapper, PositionProvider

from peftfix.diagnostics import Edit, Location
from peftfix.source.edits.sequences import append_element
from peftfix.source.name_index import NameIndex


class FileContext:
    def __init__(self, source: str, filename: str, module: cst.Module):
        self.source = source
        self.filename = filename
        self.wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
        self.module = self.wrapper.module
        # Positions (for anything reported) cost a full pass over the tree and the name index (for fixes that
        # check a name's other uses) a second parse, so both are computed on first use; a clean file needs neither.
        self._positions: Optional[Mapping[cst.CSTNode, CodeRange]] = None
        self._names: Optional[NameIndex] = None
        self._line_starts = _line_starts(source)

    @property
    def names(self) -> NameIndex:
        if self._names is None:
            self._names = NameIndex(self.source, self._line_starts)
        return self._names

    @property
    def positions(self) -> Mapping[cst.CSTNode, CodeRange]:
        if self._positions is None:
            self._positions = self.wrapper.resolve(PositionProvider)
        return self._positions

    # ------------------------------------------------------------------------------------------- positions

    def span_of(self, node: cst.CSTNode) -> tuple[int, int]:
        code_range = self.positions[node]
        return self.offset(code_range.start.line, code_range.start.column), self.offset(
            code_range.end.line, code_range.end.column
        )

    def offset(self, line: int, column: int) -> int:
        if line > len(self._line_starts):  # the end of a file without a final newline
            return len(self.source)
        return self._line_starts[line - 1] + column

    def location(self, offset: int) -> Location:
        line_index = bisect.bisect_right(self._line_starts, offset) - 1
        return Location(line_index + 1, offset - self._line_starts[line_index] + 1)

    def line_of(self, node: cst.CSTNode) -> int:
        return self.positions[node].start.line

    def code_for(self, node: cst.CSTNode) -> str:
        return self.module.code_for_node(node)

    # ----------------------------------------------------------------------------------------------- edits

    def edit(self, start: int, end: int, content: str) -> Edit:
        """An edit trimmed to what really changes (common prefix and suffix dropped)."""
        old = self.source[start:end]
        prefix = 0
        limit = min(len(old), len(content))
        while prefix < limit and old[prefix] == content[prefix]:
            prefix += 1
        suffix = 0
        while suffix < limit - prefix and old[len(old) - 1 - suffix] == content[len(content) - 1 - suffix]:
            suffix += 1
        start, end = start + prefix, end - suffix
        content = content[prefix : len(content) - suffix]
        return Edit(start, end, content, self.location(start), self.location(end))

    def replace(self, node: cst.CSTNode, replacement: Union[str, cst.CSTNode]) -> Edit:
        if isinstance(replacement, cst.BaseExpression) and replacement.lpar:
            # Positions exclude an expression's own parentheses, so the replacement must too.
            replacement = replacement.with_changes(lpar=[], rpar=[])
        text = replacement if isinstance(replacement, str) else self.code_for(replacement)
        start, end = self.span_of(node)
        return self.edit(start, end, text)

    def statement_of(self, node: cst.CSTNode) -> Optional[cst.SimpleStatementLine]:
        """The simple statement line that contains ``node``."""
        found = self.locate_statement(node)
        return found[0] if found else None

    def locate_statement(self, node: cst.CSTNode) -> Optional[tuple[cst.SimpleStatementLine, cst.CSTNode]]:
        """The simple statement line containing ``node`` and the block (module or indented block) holding it.

        Found by descending through the statements by position: much cheaper than parent links for the whole
        tree, which only this lookup would need.
        """
        target = self.positions[node]
        wanted = (target.start.line, target.start.column), (target.end.line, target.end.column)
        block: cst.CSTNode = self.module
        while True:
            for statement in getattr(block, "body", ()):
                found = self.positions.get(statement)
                if found is None:
                    continue
                start, end = (found.start.line, found.start.column), (found.end.line, found.end.column)
                if start <= wanted[0] and wanted[1] <= end:
                    break
            else:
                return None
            if isinstance(statement, cst.SimpleStatementLine):
                return statement, block
            inner = next((b for b in child_blocks(statement) if self._contains(b, wanted)), None)
            if inner is None:
                return None
            block = inner

    def _contains(self, block: cst.CSTNode, wanted) -> bool:
        return any(
            (r.start.line, r.start.column) <= wanted[0] and wanted[1] <= (r.end.line, r.end.column)
            for r in (self.positions.get(statement) for statement in getattr(block, "body", ()))
            if r is not None
        )

    def is_alone_on_its_lines(self, statement: cst.SimpleStatementLine) -> bool:
        """True when the statement holds one small statement and starts its line (not ``if x: y``)."""
        if len(statement.body) != 1:
            return False
        start, _ = self.span_of(statement)
        line_start = self._line_starts[self.positions[statement].start.line - 1]
        return self.source[line_start:start].strip() == ""

    def indentation_of(self, statement: cst.CSTNode) -> str:
        start, _ = self.span_of(statement)
        line_start = self._line_starts[self.positions[statement].start.line - 1]
        return self.source[line_start:start]

    def delete_statement(self, statement: cst.SimpleStatementLine) -> Optional[Edit]:
        """Delete a whole statement line; a block's only statement becomes ``pass``. None when not possible."""
        if not self.is_alone_on_its_lines(statement):
            return None
        code_range = self.positions[statement]
        line_start = self._line_starts[code_range.start.line - 1]
        end_line = code_range.end.line
        line_end = self._line_starts[end_line] if end_line < len(self._line_starts) else len(self.source)
        located = self.locate_statement(statement)
        parent = located[1] if located else None
        siblings = getattr(parent, "body", ())
        if isinstance(parent, cst.IndentedBlock) and len(siblings) == 1:
            start, end = self.span_of(statement)
            return self.edit(start, end, "pass")
        return self.edit(line_start, line_end, "")

    def insert_before_statement(self, statement: cst.CSTNode, line_text: str) -> Optional[Edit]:
        """Insert ``line_text`` as a new line just above ``statement``, at the same indentation."""
        indentation = self.indentation_of(statement)
        if indentation.strip():
            return None
        line_start = self._line_starts[self.positions[statement].start.line - 1]
        return self.edit(line_start, line_start, f"{indentation}{line_text}{self.module.default_newline}")

    def insert_after_statement(self, statement: cst.CSTNode, line_text: str) -> Edit:
        """Insert ``line_text`` as a new line just below ``statement``, at the same indentation."""
        end_line = self.positions[statement].end.line
        offset = self._line_starts[end_line] if end_line < len(self._line_starts) else len(self.source)
        newline = self.module.default_newline
        prefix = "" if offset == 0 or self.source[offset - 1] in "\r\n" else newline
        return self.edit(offset, offset, f"{prefix}{self.indentation_of(statement)}{line_text}{newline}")

    def add_keyword_argument(self, call: cst.Call, keyword: str, value: str) -> Edit:
        """Append ``keyword=value`` to a call, following its comma and line-break style."""
        new_arg = cst.Arg(
            keyword=cst.Name(keyword),
            value=cst.parse_expression(value),
            equal=cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace("")),
        )
        return self.replace(call, call.with_changes(args=append_element(call.args, new_arg)))


def child_blocks(statement: cst.CSTNode) -> list:
    """The indented blocks directly inside a compound statement (bodies, else/except/finally, match cases)."""
    blocks = []
    body = getattr(statement, "body", None)
    if isinstance(body, cst.IndentedBlock):
        blocks.append(body)
    orelse = getattr(statement, "orelse", None)
    while orelse is not None:
        if isinstance(orelse.body, cst.IndentedBlock):
            blocks.append(orelse.body)
        orelse = getattr(orelse, "orelse", None) if isinstance(orelse, cst.If) else None
    for part in list(getattr(statement, "handlers", ())) + list(getattr(statement, "cases", ())):
        if isinstance(part.body, cst.IndentedBlock):
            blocks.append(part.body)
    final = getattr(statement, "finalbody", None)
    if final is not None and isinstance(final.body, cst.IndentedBlock):
        blocks.append(final.body)
    return blocks


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _line_starts(source: str) -> list[int]:
    """Offsets where lines start; like libcst (and Python), a lone CR ends a line too."""
    return [0] + [match.end() for match in _LINE_BREAK.finditer(source)]
