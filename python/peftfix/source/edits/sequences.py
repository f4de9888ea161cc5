"""Adding and removing elements of comma-separated libcst sequences (call arguments, import aliases, list
literals) the way a person would: the sequence keeps its layout, its trailing comma and its comments."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import libcst as cst

# The literals :func:`remove_from_literal` edits.
SequenceLiteral = Union[cst.List, cst.Tuple, cst.Set]


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


def remove_from_literal(literal: SequenceLiteral, index: int) -> SequenceLiteral:
    """A list/tuple/set literal without its ``index``-th element, comments kept with their elements.

    When the last element has no line break of its own, its line end (and trailing comment) is owned by the
    closing bracket: removing it hands the bracket the previous element's line end instead.
    """
    old = list(literal.elements)
    elements = remove_element(old, index)
    closing_names: dict[type[cst.CSTNode], str] = {cst.List: "rbracket", cst.Set: "rbrace"}
    closing_name = closing_names.get(type(literal))
    closing = getattr(literal, closing_name) if closing_name else None
    if (
        closing_name is not None
        and closing is not None
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
        return comma.with_changes(
            whitespace_after=comma.whitespace_after.with_changes(indent=after.indent, last_line=after.last_line)
        )
    return layout


def _without_comment(comma: cst.Comma) -> cst.Comma:
    after = comma.whitespace_after
    if isinstance(after, cst.ParenthesizedWhitespace):
        return comma.with_changes(
            whitespace_after=after.with_changes(first_line=cst.TrailingWhitespace(), empty_lines=())
        )
    return comma


def _has_comment(comma) -> bool:
    after = getattr(comma, "whitespace_after", None)
    return isinstance(after, cst.ParenthesizedWhitespace) and after.first_line.comment is not None
