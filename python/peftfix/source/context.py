"""Everything the rules of one file share: the parsed module, its metadata (computed once) and edit builders.

Rules never touch text directly: they ask the context for edits, which it expresses as offsets into the
decoded source plus 1-based locations. An edit is trimmed to the span that really changes, so a fix that
rebuilds a whole call with libcst still shows up as the few characters it alters.
"""

from __future__ import annotations

import bisect
import re
from typing import Optional, Sequence, Union

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider

from peftfix.diagnostics import Edit, Location
from peftfix.source.name_index import NameIndex
from peftfix.settings import Settings


class FileContext:
    def __init__(self, source: str, filename: str, settings: Settings, module: cst.Module):
        self.source = source
        self.filename = filename
        self.settings = settings
        self.wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
        self.module = self.wrapper.module
        # Positions (for anything reported) cost a full pass over the tree and the name index (for fixes that
        # check a name's other uses) a second parse, so both are computed on first use; a clean file needs neither.
        self._positions = None
        self._names: Optional[NameIndex] = None
        self._line_starts = _line_starts(source)

    @property
    def names(self) -> NameIndex:
        if self._names is None:
            self._names = NameIndex(self.source, self._line_starts)
        return self._names

    @property
    def positions(self):
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


def append_element(elements: Sequence, new_element) -> list:
    """Append to a comma-separated libcst sequence (args, import aliases, list elements), keeping its style.

    A sequence that ends in a trailing comma keeps one, a one-per-line layout stays one per line, and each
    trailing comment stays on the element it belongs to.
    """
    elements = list(elements)
    if not elements:
        return [new_element]
    last = elements[-1]
    trailing = last.comma
    if not isinstance(trailing, cst.Comma):
        return elements + [new_element]
    if len(elements) >= 2 and isinstance(elements[-2].comma, cst.Comma):
        between = elements[-2].comma
    else:
        between = cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))
    elements[-1] = last.with_changes(comma=_relayout(trailing, between))
    return elements + [new_element.with_changes(comma=_without_comment(trailing))]


def remove_element(elements: Sequence, index: int) -> list:
    """Remove one element of a comma-separated libcst sequence; the new last one ends the way the removed did."""
    elements = list(elements)
    removed = elements.pop(index)
    if elements and index == len(elements):
        previous = elements[-1].comma
        if isinstance(removed.comma, cst.Comma) or not _has_comment(previous):
            elements[-1] = elements[-1].with_changes(comma=_relayout(previous, removed.comma))
    return elements


def remove_from_literal(literal: cst.BaseExpression, index: int) -> cst.BaseExpression:
    """A list/tuple/set literal without its ``index``-th element, comments kept with their elements.

    When the last element has no line break of its own, its line end (and trailing comment) is owned by the
    closing bracket: removing it hands the bracket the previous element's line end instead.
    """
    old = list(literal.elements)
    elements = remove_element(old, index)
    closing_name = {cst.List: "rbracket", cst.Set: "rbrace"}.get(type(literal))
    closing = getattr(literal, closing_name) if closing_name else None
    if (
        closing is not None
        and elements
        and index == len(old) - 1
        and isinstance(closing.whitespace_before, cst.ParenthesizedWhitespace)
        and isinstance(old[-2].comma, cst.Comma)
        and isinstance(old[-2].comma.whitespace_after, cst.ParenthesizedWhitespace)
    ):
        line_end = old[-2].comma.whitespace_after.with_changes(
            indent=closing.whitespace_before.indent, last_line=closing.whitespace_before.last_line
        )
        elements[-1] = elements[-1].with_changes(comma=old[-1].comma)
        closing = closing.with_changes(whitespace_before=line_end)
        return literal.with_changes(elements=elements, **{closing_name: closing})
    if isinstance(literal, cst.Tuple) and len(elements) == 1 and not isinstance(elements[0].comma, cst.Comma):
        elements[0] = elements[0].with_changes(comma=cst.Comma())  # ("q_proj",) stays a tuple
    return literal.with_changes(elements=elements)


def _relayout(comma, layout):
    """``comma`` with its own trailing comment but the line break and indentation that follow ``layout``."""
    if (
        isinstance(comma, cst.Comma)
        and isinstance(layout, cst.Comma)
        and isinstance(comma.whitespace_after, cst.ParenthesizedWhitespace)
        and isinstance(layout.whitespace_after, cst.ParenthesizedWhitespace)
    ):
        after = layout.whitespace_after
        return comma.with_changes(whitespace_after=comma.whitespace_after.with_changes(indent=after.indent, last_line=after.last_line))
    return layout


def _without_comment(comma: cst.Comma) -> cst.Comma:
    after = comma.whitespace_after
    if isinstance(after, cst.ParenthesizedWhitespace):
        return comma.with_changes(whitespace_after=after.with_changes(first_line=cst.TrailingWhitespace(), empty_lines=()))
    return comma


def _has_comment(comma) -> bool:
    after = getattr(comma, "whitespace_after", None)
    return isinstance(after, cst.ParenthesizedWhitespace) and after.first_line.comment is not None


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _line_starts(source: str) -> list[int]:
    """Offsets where lines start; like libcst (and Python), a lone CR ends a line too."""
    return [0] + [match.end() for match in _LINE_BREAK.finditer(source)]


def iter_string_value(node: cst.CSTNode) -> Optional[str]:
    """The value of a plain string literal (no f-string), else None."""
    if isinstance(node, (cst.SimpleString, cst.ConcatenatedString)):
        value = node.evaluated_value
        return value if isinstance(value, str) else None
    return None


def keyword_arg(call: cst.Call, name: str) -> Optional[cst.Arg]:
    for arg in call.args:
        if arg.keyword is not None and arg.keyword.value == name:
            return arg
    return None


def positional_args(call: cst.Call) -> list[cst.Arg]:
    return [arg for arg in call.args if arg.keyword is None and not arg.star]


def argument(call: cst.Call, position: int, keyword: str) -> Optional[cst.Arg]:
    """The argument passed at ``position`` or as ``keyword``."""
    found = keyword_arg(call, keyword)
    if found is not None:
        return found
    positional = positional_args(call)
    return positional[position] if position < len(positional) else None


def literal_bool(node: Optional[cst.CSTNode]) -> Optional[bool]:
    if isinstance(node, cst.Name) and node.value in ("True", "False"):
        return node.value == "True"
    return None



def dotted_name(node: cst.CSTNode) -> Optional[str]:
    """``x`` or ``self.model.inner`` as a string; None for anything else."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        base = dotted_name(node.value)
        return f"{base}.{node.attr.value}" if base is not None else None
    return None
