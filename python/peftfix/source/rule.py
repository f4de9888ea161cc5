"""The base every source rule derives from.

A rule is one class in one file under ``rules/``: its code, name, one-line summary, documentation (the
docstring, in the sections ``explain`` prints), fix availability, and its own ``VALID``/``INVALID`` examples,
which the test suite runs. Rules subscribe to data-flow events (``EVENTS``) and report findings with fixes
built from edits; they never rewrite the file themselves — the engine applies fixes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Optional

import libcst as cst

from peftfix.diagnostics import Applicability, Diagnostic, Edit, Fix
from peftfix.source.context import FileContext
from peftfix.source.flow.model import Ev, Event


@dataclass(frozen=True)
class Invalid:
    """An example the rule must report; ``fixed`` is the text after ``--apply --unsafe-fixes`` when it has a fix."""

    code: str
    fixed: Optional[str] = None


class Rule:
    code: ClassVar[str]
    name: ClassVar[str]
    summary: ClassVar[str]
    # "safe", "unsafe", "sometimes" (safe or unsafe by case), "display-only" or "none".
    fix_availability: ClassVar[str] = "none"
    default_enabled: ClassVar[bool] = True
    EVENTS: ClassVar[frozenset] = frozenset()
    VALID: ClassVar[Sequence[str]] = ()
    INVALID: ClassVar[Sequence[Invalid]] = ()

    def __init__(self, ctx: FileContext, sink: Callable[[Diagnostic, int], None]):
        self.ctx = ctx
        self._sink = sink

    # Hooks (override what the rule needs) -------------------------------------------------------------

    def on_event(self, history: tuple, event: Event) -> None:
        """``event`` happens to an object whose path so far is ``history`` (empty for object-less events)."""

    def on_final(self, history: tuple) -> None:
        """A complete path of an object, when its scope ends."""

    # Reporting ------------------------------------------------------------------------------------------

    def report(self, node: cst.CSTNode, message: str, fix: Optional[Fix] = None, **details) -> None:
        start, end = self.ctx.span_of(node)
        diagnostic = Diagnostic(
            code=self.code,
            message=message,
            filename=self.ctx.filename,
            location=self.ctx.location(start),
            end_location=self.ctx.location(end),
            fix=fix,
            details=details,
        )
        self._sink(diagnostic, start)

    @staticmethod
    def make_fix(message: str, applicability: Applicability, edits: Sequence[Optional[Edit]]) -> Optional[Fix]:
        """A fix, or None when one of its edits could not be built (the finding is then reported without one)."""
        built = [edit for edit in edits if edit is not None]
        if not edits or len(built) != len(edits):
            return None
        return Fix(applicability, message, tuple(sorted(built, key=lambda edit: edit.start_offset)))

    @staticmethod
    def display_only(message: str) -> Fix:
        return Fix(Applicability.DISPLAY_ONLY, message, ())

    def line(self, node: cst.CSTNode) -> int:
        return self.ctx.line_of(node)


def subscribes(*events: Ev) -> frozenset:
    return frozenset(events)
