"""The base every source rule derives from.

A rule is one class in one file under ``rules/``: its code, name, one-line summary, documentation (the
docstring, in the sections ``explain`` prints), fix availability, and its own ``VALID``/``INVALID`` examples,
which the test suite runs. Rules subscribe to data-flow events (``EVENTS``) and report findings with *planned*
fixes: how safe the fix is and a builder that makes its edits. The engine builds the edits only when a fix is
applied or shown, and applies them; a rule never rewrites a file itself.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Optional

from peftfix.diagnostics import Applicability, Diagnostic, Edit, Fix
from peftfix.source.flow.model import Ev, Event
from peftfix.source.settings import Settings

if TYPE_CHECKING:
    from peftfix.source.edits.bridge import FixContext
    from peftfix.source.module import SourceModule

Builder = Callable[["FixContext"], Sequence[Optional[Edit]]]


@dataclass(frozen=True)
class Invalid:
    """An example the rule must report; ``fixed`` is the text after ``--apply --unsafe-fixes`` when it has a fix."""

    code: str
    fixed: Optional[str] = None


@dataclass(frozen=True)
class PlannedFix:
    """A fix decided during the analysis; ``build`` makes its edits later (None: display-only)."""

    applicability: Applicability
    message: str
    build: Optional[Builder] = None


@dataclass
class Reported:
    """A diagnostic as the engine receives it: where it starts, in which module, and its fix builder."""

    diagnostic: Diagnostic
    start: int
    module: SourceModule
    build: Optional[Builder]


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

    def __init__(self, settings: Settings, sink: Callable[[Reported], None]):
        self.settings = settings
        self._sink = sink

    # Hooks (override what the rule needs) -------------------------------------------------------------

    def on_event(self, history: tuple, event: Event) -> None:
        """``event`` happens to an object whose path so far is ``history`` (empty for object-less events)."""

    def on_final(self, history: tuple) -> None:
        """A complete path of an object, when its scope ends."""

    # Reporting ------------------------------------------------------------------------------------------

    def report(
        self, module: SourceModule, node: ast.AST, message: str, fix: Optional[PlannedFix] = None, **details: Any
    ) -> None:
        start, end = module.span(node)
        diagnostic = Diagnostic(
            code=self.code,
            message=message,
            filename=module.filename,
            location=module.location(start),
            end_location=module.location(end),
            fix=Fix(fix.applicability, fix.message, (), deferred=fix.build is not None) if fix else None,
            details=details,
        )
        self._sink(Reported(diagnostic, start, module, fix.build if fix else None))

    @staticmethod
    def plan(message: str, applicability: Applicability, build: Builder) -> PlannedFix:
        return PlannedFix(applicability, message, build)

    @staticmethod
    def display_only(message: str) -> PlannedFix:
        return PlannedFix(Applicability.DISPLAY_ONLY, message, None)


def subscribes(*events: Ev) -> frozenset:
    return frozenset(events)
