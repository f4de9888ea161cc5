"""From the analysis (CPython ``ast``) to the codemods (libcst): the libcst node at an ``ast`` node's position.

The analysis finds a pitfall on ``ast`` nodes; a fix rewrites the file with libcst so that its formatting and
comments are kept. A :class:`FixContext` parses the file with libcst once (only when a fix is built) and finds
the libcst node that spans exactly the same text as a given ``ast`` node.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from typing import Optional

import libcst as cst

from peftfix.source.context import FileContext
from peftfix.source.edits import FixUnavailable
from peftfix.source.module import SourceModule

# Which libcst node classes can stand for an ast node class at the same span.
_COUNTERPARTS: dict[type, tuple[type, ...]] = {
    ast.Call: (cst.Call,),
    ast.Name: (cst.Name,),
    ast.Attribute: (cst.Attribute,),
    ast.List: (cst.List,),
    ast.Tuple: (cst.Tuple,),
    ast.Set: (cst.Set,),
    ast.Constant: (cst.SimpleString, cst.ConcatenatedString, cst.Integer, cst.Float, cst.Name),
    ast.Subscript: (cst.Subscript,),
}


# libcst's parser takes time quadratic in how deeply expressions nest (a 1,000-term `a + b + ...` chain is half a
# second, 20,000 terms minutes). Past this depth a file gets no fixes; its findings are still reported.
LIBCST_MAX_DEPTH = 1000


def nesting_depth(tree: ast.AST, limit: int) -> int:
    """How deeply ``tree``'s nodes nest, counted up to ``limit`` (iteratively: the tree may be deeper than the
    interpreter's recursion limit)."""
    deepest = 0
    pending = [(tree, 1)]
    while pending:
        node, depth = pending.pop()
        if depth > deepest:
            deepest = depth
            if deepest >= limit:
                return deepest
        pending.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


class FixContext:
    """A module's libcst view for building fixes; ``cst`` is the libcst :class:`FileContext`."""

    def __init__(self, module: SourceModule):
        if nesting_depth(module.tree, LIBCST_MAX_DEPTH) >= LIBCST_MAX_DEPTH:
            raise FixUnavailable(f"nested more than {LIBCST_MAX_DEPTH} deep: too deep to rewrite with libcst")
        self.module = module
        self.cst = FileContext(module.source, module.filename, cst.parse_module(module.source))
        self._by_span: Optional[dict[tuple[int, int], list[cst.CSTNode]]] = None

    def node(self, node: ast.AST) -> cst.CSTNode:
        """The libcst node spanning what ``node`` spans; raises :class:`FixUnavailable` when there is none."""
        wanted = _COUNTERPARTS.get(type(node))
        if wanted is None:
            raise FixUnavailable(f"no libcst counterpart for {type(node).__name__}")
        span = self.module.span(node)
        for candidate in self._index().get(span, ()):
            if isinstance(candidate, wanted):
                return candidate
        if isinstance(node, ast.Tuple):
            # ast counts a tuple's parentheses as part of it, libcst does not: the largest tuple inside.
            inside = [
                (end - start, candidate)
                for (start, end), candidates in self._index().items()
                if span[0] <= start and end <= span[1]
                for candidate in candidates
                if isinstance(candidate, cst.Tuple)
            ]
            if inside:
                return max(inside, key=lambda item: item[0])[1]
        raise FixUnavailable(f"no libcst node at {self.module.location(self.module.span(node)[0])}")

    def call(self, node: ast.AST) -> cst.Call:
        found = self.node(node)
        if not isinstance(found, cst.Call):
            raise FixUnavailable("not a call")
        return found

    def _index(self) -> dict[tuple[int, int], list[cst.CSTNode]]:
        if self._by_span is None:
            index: dict[tuple[int, int], list[cst.CSTNode]] = defaultdict(list)
            for node, position in self.cst.positions.items():
                start = self.cst.offset(position.start.line, position.start.column)
                end = self.cst.offset(position.end.line, position.end.column)
                index[(start, end)].append(node)
            self._by_span = dict(index)
        return self._by_span
