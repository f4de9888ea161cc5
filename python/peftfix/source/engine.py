"""The source engine: decode, parse once with CPython's ``ast``, run every enabled rule over one whole-program
data-flow analysis, build and apply fixes, encode.

``check_bytes`` is what the runner calls for each file; ``check_source`` and ``fix_source`` are the library
entry points for text already in memory. An analysis starts at one file and follows calls into the project's
other modules, so it may report findings located in those modules too (``FileOutcome.foreign``): a finding is
reported where its fix goes.

libcst is used for one thing only: building the edits of a fix (``materialize``), when a fix is applied or shown.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import gc
import sys
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Optional, TypeVar

from peftfix.diagnostics import Applicability, Diagnostic, Edit, Fix, Location
from peftfix.source import fixer
from peftfix.source.decoding import SourceError, decode, rewrites_faithfully
from peftfix.source.edits import FixUnavailable
from peftfix.source.flow.interpreter import Analysis
from peftfix.source.flow.project import Project
from peftfix.source.module import SourceModule
from peftfix.source.parsing import parse_python
from peftfix.source.registry import ALL_RULES, default_settings
from peftfix.source.rule import Reported, Rule
from peftfix.source.rules.pf000_parse_error import ParseError
from peftfix.source.settings import Settings
from peftfix.source.suppression import is_suppressed, suppressions

__all__ = ["FileOutcome", "SourceError", "check_bytes", "check_source", "check_text", "decode", "fix_source"]

# Nesting depth the parse and the analysis follow (a 2,000-call chain, a 20,000-term concatenation are far
# below), on a stack large enough for it.
RECURSION_LIMIT = 200_000
DEEP_STACK_BYTES = 512 * 1024 * 1024
_DEEP_LOCK = threading.Lock()
T = TypeVar("T")


@dataclass
class FileOutcome:
    filename: str
    diagnostics: list[Diagnostic]  # what remains to report in this file (after fixes when fixing)
    fixed: list[Diagnostic] = field(default_factory=list)
    dropped: list[Diagnostic] = field(default_factory=list)  # fixes dropped because they broke the file
    source: Optional[str] = None  # the decoded original; None when it could not be decoded
    new_source: Optional[str] = None  # the fixed text, None when unchanged
    new_bytes: Optional[bytes] = None  # new_source encoded as the original was
    foreign: list[Diagnostic] = field(default_factory=list)  # findings this analysis located in other files
    not_fixed: Optional[str] = None  # why fixes were asked for and not made (the file's encoding)
    touched: list[str] = field(default_factory=list)  # the files this analysis interpreted
    diff: Optional[str] = None  # a diff of the fixes made in the file's own terms (a notebook's: per cell)


def check_bytes(
    data: bytes,
    filename: str,
    settings: Settings,
    fix: bool = False,
    *,
    project: Optional[Project] = None,
    with_edits: bool = True,
    importers: Iterable[str] = (),
) -> FileOutcome:
    """Check one file's content. ``with_edits``: build the edits of its fixes (else fixes are only planned);
    ``importers``: files whose analysis reaches this one, re-run when fixing it."""
    try:
        source, encoding = decode(data)
    except SourceError as error:
        return FileOutcome(filename, parse_errors(error, filename, settings))
    if fix and not rewrites_faithfully(data, source, encoding):
        outcome = _deep(lambda: _check(source, filename, settings, project, with_edits))
        if any(diagnostic.fix is not None for diagnostic in outcome.diagnostics):
            outcome.not_fixed = (
                f"its encoding ({encoding}) does not re-encode edited text byte for byte, so a fix would change "
                "bytes outside it; convert the file to UTF-8 to fix it"
            )
        return outcome
    outcome = check_text(source, filename, settings, fix, project=project, with_edits=with_edits, importers=importers)
    if outcome.new_source is not None:
        outcome.new_bytes = outcome.new_source.encode(encoding)
    return outcome


def check_text(
    source: str,
    filename: str,
    settings: Settings,
    fix: bool = False,
    *,
    project: Optional[Project] = None,
    with_edits: bool = True,
    importers: Iterable[str] = (),
) -> FileOutcome:
    """Check (and with ``fix``, fix) decoded text; ``new_bytes`` is left to the caller, who knows the encoding."""
    if not fix:
        return _deep(lambda: _check(source, filename, settings, project, with_edits))
    return _deep(lambda: fix_source(source, filename, settings, project=project, importers=importers))


def check_source(
    source: str, filename: str = "<stdin>", settings: Optional[Settings] = None, project: Optional[Project] = None
) -> list[Diagnostic]:
    """The diagnostics of one file's text, with the edits of their fixes."""
    return _deep(lambda: _check(source, filename, settings or default_settings(), project, True)).diagnostics


def fix_source(
    source: str,
    filename: str = "<stdin>",
    settings: Optional[Settings] = None,
    project: Optional[Project] = None,
    importers: Iterable[str] = (),
) -> FileOutcome:
    settings = settings or default_settings()
    project = project if project is not None else Project()
    importer_paths = list(importers)

    def lint(text: str) -> list[Diagnostic]:
        module = parse(text, filename)
        reported = _analyse(module, settings, project, importer_paths)
        return materialize(item for item in reported if item.module.filename == filename)

    try:
        result = fixer.fix_until_stable(source, lint, settings.unsafe_fixes)
    except SourceError as error:  # only the original can fail to parse: fixes that break the file are dropped
        return FileOutcome(filename, parse_errors(error, filename, settings), source=source)
    changed = result.source if result.source != source else None
    return FileOutcome(
        filename,
        result.remaining,
        fixed=result.fixed,
        dropped=result.dropped,
        source=source,
        new_source=changed,
    )


def parse(source: str, filename: str) -> SourceModule:
    """Parse with CPython's own parser, the reference: what it rejects is a parse error (PF000)."""
    try:
        tree = parse_python(source, filename)
    except SyntaxError as error:
        raise SourceError(
            f"syntax error: {error.msg}", Location(error.lineno or 1, max(error.offset or 1, 1))
        ) from None
    except (RecursionError, MemoryError, ValueError) as error:
        raise SourceError(f"cannot parse: {type(error).__name__}: {error or 'nested too deeply'}") from None
    return SourceModule(source, filename, tree)


def _check(source: str, filename: str, settings: Settings, project: Optional[Project], with_edits: bool) -> FileOutcome:
    try:
        module = parse(source, filename)
    except SourceError as error:
        return FileOutcome(filename, parse_errors(error, filename, settings), source=source)
    project = project if project is not None else Project()
    touched: list[str] = []
    reported = _analyse(module, settings, project, (), touched)
    diagnostics = materialize(reported) if with_edits else [item.diagnostic for item in reported]
    own = sorted((d for d in diagnostics if d.filename == filename), key=Diagnostic.sort_key)
    foreign = sorted((d for d in diagnostics if d.filename != filename), key=Diagnostic.sort_key)
    return FileOutcome(filename, own, source=source, foreign=foreign, touched=touched)


def _deep(function: Callable[[], T]) -> T:
    """Run ``function`` where deep nesting fits: a thread with a large stack and a high recursion limit.

    CPython builds the ``ast`` of a 20,000-term concatenation recursively and the analysis walks it the same way;
    the main thread's stack and the default recursion limit allow neither. Past ``RECURSION_LIMIT`` the parse
    raises RecursionError (a PF000), never overflows the stack. One such thread serves every file.
    """
    global _DEEP_EXECUTOR
    with _DEEP_LOCK:
        if _DEEP_EXECUTOR is None:
            _DEEP_EXECUTOR = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="peftfix-analysis")
            previous_stack = threading.stack_size(DEEP_STACK_BYTES)
            try:  # the executor starts its thread on the first submit, with this stack size
                _DEEP_EXECUTOR.submit(lambda: None).result()
            finally:
                threading.stack_size(previous_stack)
        previous_limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(previous_limit, RECURSION_LIMIT))
        try:
            return _DEEP_EXECUTOR.submit(_without_collector, function).result()
        finally:
            sys.setrecursionlimit(previous_limit)  # the caller's threads keep the limit they had


def _without_collector(function: Callable[[], T]) -> T:
    # A parse allocates millions of objects that live until the check ends; the cyclic collector would walk them
    # again and again (a third of the time on a 10 MB file). The analysis builds no cycles worth collecting.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return function()
    finally:
        if collecting:
            gc.enable()


_DEEP_EXECUTOR: Optional[concurrent.futures.ThreadPoolExecutor] = None


def _analyse(
    module: SourceModule,
    settings: Settings,
    project: Project,
    importers: Iterable[str] = (),
    touched: Optional[list[str]] = None,
) -> list[Reported]:
    """Every finding of the analyses that start at ``module`` and at each of ``importers`` (with ``module``'s
    text standing for its file), deduplicated, suppression comments honoured."""
    project.add(module)
    found: dict[tuple[str, str, int], Reported] = {}

    def sink(item: Reported) -> None:
        key = (item.diagnostic.filename, item.diagnostic.code, item.start)
        previous = found.get(key)
        if previous is None or _fix_rank(item) > _fix_rank(previous):
            found[key] = item

    rules = [rule(settings, sink) for rule in ALL_RULES if rule.code in settings.enabled and rule.EVENTS]
    by_event: dict = {}
    for rule in rules:
        for event_kind in rule.EVENTS:
            by_event.setdefault(event_kind, []).append(rule)
    finals = [rule for rule in rules if type(rule).on_final is not Rule.on_final]

    def on_event(history, event) -> None:
        for rule in by_event.get(event.kind, ()):
            rule.on_event(history, event)

    def on_final(history) -> None:
        for rule in finals:
            rule.on_final(history)

    entries = [module]
    for path in importers:
        importer = project.module_at(path)
        if importer is not None and importer.filename != module.filename:
            entries.append(importer)
    for entry in entries:
        analysis = Analysis(project, on_event, on_final)
        with contextlib.suppress(RecursionError):  # deeper than even the raised limit: what was found stands
            analysis.run(entry)
        if touched is not None:
            touched.extend(sorted(m.filename for m in analysis.touched if m.filename != module.filename))
    silenced: dict[str, dict[int, frozenset]] = {}
    kept = []
    for item in found.values():
        diagnostic = item.diagnostic
        if item.module.filename not in silenced:
            silenced[item.module.filename] = suppressions(item.module.source)
        location = diagnostic.location
        if location is not None and is_suppressed(diagnostic.code, location.row, silenced[item.module.filename]):
            continue
        kept.append(item)
    return kept


def materialize(reported: Iterable[Reported]) -> list[Diagnostic]:
    """The diagnostics with the edits of their fixes built (libcst, once per module that has a fix to build).
    A fix whose edits cannot be built is dropped; the finding stays."""
    from peftfix.source.edits.bridge import FixContext  # libcst: only when fixes are built

    contexts: dict[str, Optional[FixContext]] = {}
    diagnostics = []
    for item in reported:
        diagnostic = item.diagnostic
        if item.build is not None and diagnostic.fix is not None:
            filename = item.module.filename
            if filename not in contexts:
                try:
                    contexts[filename] = FixContext(item.module)
                except Exception:  # libcst cannot parse what CPython accepts: no fix for this file
                    contexts[filename] = None
            context = contexts[filename]
            diagnostic.fix = _built_fix(diagnostic.fix, item, context) if context is not None else None
        diagnostics.append(diagnostic)
    return sorted(diagnostics, key=Diagnostic.sort_key)


def _built_fix(planned: Fix, item: Reported, context: Any) -> Optional[Fix]:
    assert item.build is not None
    try:
        edits = list(item.build(context))
    except (FixUnavailable, RecursionError):
        return None
    if not edits or any(edit is None for edit in edits):
        return None
    built: list[Edit] = [edit for edit in edits if edit is not None]
    return Fix(planned.applicability, planned.message, tuple(sorted(built, key=lambda edit: edit.start_offset)))


def _fix_rank(item: Reported) -> int:
    fix = item.diagnostic.fix
    if fix is None or not fix.available:
        return 0
    return {Applicability.SAFE: 3, Applicability.UNSAFE: 2}.get(fix.applicability, 1)


def parse_errors(error: SourceError, filename: str, settings: Settings) -> list[Diagnostic]:
    """The PF000 finding for a file that cannot be read as Python (none when PF000 is not selected)."""
    if ParseError.code not in settings.enabled:
        return []
    return [
        Diagnostic(
            code=ParseError.code,
            message=f"{error}",
            filename=filename,
            location=error.location,
            end_location=error.location,
        )
    ]
