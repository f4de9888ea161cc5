"""Applying fixes: non-overlapping edits per pass, re-parse, drop what breaks the file, repeat until stable.

This is Ruff's fix loop. Each pass lints the current text, takes the applicable fixes in source order, skips any
fix whose edits touch an edit already taken (it is retried on the next pass, against the new text), applies
them, and checks the result still parses. A fix that makes the file unparsable is dropped for good and
reported; the others are kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from peftfix.diagnostics import Diagnostic, Edit
from peftfix.source.parsing import parse_python

MAX_PASSES = 10


@dataclass
class FixResult:
    source: str
    fixed: list[Diagnostic] = field(default_factory=list)
    remaining: list[Diagnostic] = field(default_factory=list)
    dropped: list[Diagnostic] = field(default_factory=list)


def fix_until_stable(source: str, lint: Callable[[str], list[Diagnostic]], unsafe_fixes: bool) -> FixResult:
    result = FixResult(source)
    rejected: set = set()
    diagnostics = lint(source)
    for _ in range(MAX_PASSES):
        candidates = [
            d
            for d in diagnostics
            if d.fix is not None and d.fix.is_applicable(unsafe_fixes) and _key(d, result.source) not in rejected
        ]
        chosen = _non_overlapping(candidates)
        if not chosen:
            break
        new_source = apply_fixes(result.source, chosen)
        if not parses(new_source):
            good = [d for d in chosen if parses(apply_fixes(result.source, [d]))]
            for diagnostic in chosen:
                if diagnostic not in good:
                    rejected.add(_key(diagnostic, result.source))
                    result.dropped.append(diagnostic)
            new_source = apply_fixes(result.source, good)
            if good and not parses(new_source):  # fixes fine alone but broken together: keep the first
                good = good[:1]
                new_source = apply_fixes(result.source, good)
            chosen = good
        if not chosen or new_source == result.source:
            break
        result.fixed.extend(chosen)
        result.source = new_source
        diagnostics = lint(new_source)
    result.remaining = diagnostics
    return result


def apply_fixes(source: str, diagnostics: list[Diagnostic]) -> str:
    edits = sorted((edit for d in diagnostics for edit in _edits(d)), key=lambda e: (e.start_offset, e.end_offset))
    pieces = []
    cursor = 0
    for edit in edits:
        pieces.append(source[cursor : edit.start_offset])
        pieces.append(edit.content)
        cursor = edit.end_offset
    pieces.append(source[cursor:])
    return "".join(pieces)


def parses(source: str) -> bool:
    """Whether CPython accepts the text (the parser the analysis uses, and the one that runs the script)."""
    try:
        parse_python(source, "<peftfix>")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


def _non_overlapping(candidates: list[Diagnostic]) -> list[Diagnostic]:
    chosen: list[Diagnostic] = []
    taken: list[Edit] = []
    for diagnostic in sorted(candidates, key=lambda d: min(e.start_offset for e in _edits(d))):
        edits = _edits(diagnostic)
        if any(_touch(edit, other) for edit in edits for other in taken):
            continue
        chosen.append(diagnostic)
        taken.extend(edits)
    return chosen


def _touch(a: Edit, b: Edit) -> bool:
    # Touching edits conflict too: an insertion at the boundary of a replacement has no defined order.
    return a.start_offset <= b.end_offset and b.start_offset <= a.end_offset


def _key(diagnostic: Diagnostic, source: str) -> tuple:
    """What a fix does, independent of where other fixes moved it: the text it replaces and the replacement."""
    return (
        diagnostic.code,
        tuple((source[edit.start_offset : edit.end_offset], edit.content) for edit in _edits(diagnostic)),
    )


def _edits(diagnostic: Diagnostic) -> tuple[Edit, ...]:
    """The edits of the diagnostic's fix; none when it has no fix."""
    return diagnostic.fix.edits if diagnostic.fix is not None else ()
