"""The source engine: decode, parse once, run every enabled rule over one data-flow pass, fix, encode.

``check_bytes`` is what the CLI and the runner call for each file; ``check_source`` and ``fix_source`` are the
library entry points for text already in memory.
"""

from __future__ import annotations

import ast
import io
import tokenize
from dataclasses import dataclass, field
from typing import Optional

import libcst as cst

from peftfix.diagnostics import Applicability, Diagnostic, Location
from peftfix.source import fixer
from peftfix.source.context import FileContext
from peftfix.source.flow.interpreter import Interpreter
from peftfix.source.registry import ALL_RULES, default_settings
from peftfix.source.rule import Rule
from peftfix.source.rules.pf000_parse_error import ParseError
from peftfix.source.settings import Settings
from peftfix.source.suppression import is_suppressed, suppressions


@dataclass
class FileOutcome:
    filename: str
    diagnostics: list[Diagnostic]  # what remains to report (after fixes when fixing)
    fixed: list[Diagnostic] = field(default_factory=list)
    dropped: list[Diagnostic] = field(default_factory=list)  # fixes dropped because they broke the file
    source: Optional[str] = None  # the decoded original; None when it could not be decoded
    new_source: Optional[str] = None  # the fixed text, None when unchanged
    new_bytes: Optional[bytes] = None  # new_source encoded as the original was


class SourceError(Exception):
    """The bytes are not Python source we can check (binary, undecodable, or unparsable)."""

    def __init__(self, message: str, location: Location = Location(1, 1)):
        super().__init__(message)
        self.location = location


def check_bytes(data: bytes, filename: str, settings: Settings, fix: bool = False) -> FileOutcome:
    try:
        source, encoding = decode(data)
    except SourceError as error:
        return FileOutcome(filename, _parse_error(error, filename, settings))
    if not fix:
        return FileOutcome(filename, check_source(source, filename, settings), source=source)
    outcome = fix_source(source, filename, settings)
    if outcome.new_source is not None:
        outcome.new_bytes = outcome.new_source.encode(encoding)
    return outcome


def check_source(source: str, filename: str = "<stdin>", settings: Optional[Settings] = None) -> list[Diagnostic]:
    settings = settings or default_settings()
    try:
        return _lint(source, filename, settings)
    except SourceError as error:
        return _parse_error(error, filename, settings)


def fix_source(source: str, filename: str = "<stdin>", settings: Optional[Settings] = None) -> FileOutcome:
    settings = settings or default_settings()
    try:
        result = fixer.fix_until_stable(source, lambda text: _lint(text, filename, settings), settings.unsafe_fixes)
    except SourceError as error:  # only the original can fail to parse: fixes that break the file are dropped
        return FileOutcome(filename, _parse_error(error, filename, settings), source=source)
    changed = result.source if result.source != source else None
    return FileOutcome(
        filename,
        result.remaining,
        fixed=result.fixed,
        dropped=result.dropped,
        source=source,
        new_source=changed,
    )


def decode(data: bytes) -> tuple[str, str]:
    """Decode source bytes as Python does (BOM, PEP 263 cookie, else UTF-8); binary input is refused."""
    if b"\x00" in data:
        raise SourceError("binary file (contains NUL bytes); not Python source")
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        return data.decode(encoding), encoding
    except (SyntaxError, LookupError) as error:
        # detect_encoding also gives up on undecodable bytes in the first two lines: name the byte then.
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as undecodable:
            raise _undecodable(data, undecodable) from None
        raise SourceError(f"cannot determine the file's encoding: {error}") from None
    except UnicodeDecodeError as error:
        raise _undecodable(data, error) from None


def _undecodable(data: bytes, error: UnicodeDecodeError) -> SourceError:
    line = data[: error.start].count(b"\n") + 1
    return SourceError(
        f"not valid {error.encoding} text (byte 0x{data[error.start]:02x} at offset {error.start}); not checked",
        Location(line, 1),
    )


def _parse(source: str) -> cst.Module:
    """Parse with libcst, after CPython's own parser has vouched for the text.

    CPython's parser goes first because it is the reference (its messages and positions are the ones users
    know) and because it rejects pathological nesting that would crash libcst's native parser. Syntax newer
    than the running interpreter is still accepted when libcst parses it.
    """
    try:
        compile(source, "<peftfix>", "exec", ast.PyCF_ONLY_AST | ast.PyCF_TYPE_COMMENTS, dont_inherit=True)
        cpython_error = None
    except SyntaxError as error:
        cpython_error = error
        if "too many nested" in str(error.msg) or "too complex" in str(error.msg):
            raise SourceError(f"syntax error: {error.msg}", _error_location(error)) from None
    except (RecursionError, MemoryError, ValueError) as error:
        raise SourceError(f"cannot parse: {type(error).__name__}: {error or 'nested too deeply'}") from None
    try:
        return cst.parse_module(source)
    except cst.ParserSyntaxError as error:
        if cpython_error is not None:
            raise SourceError(f"syntax error: {cpython_error.msg}", _error_location(cpython_error)) from None
        message = str(error).splitlines()[0] if str(error) else "invalid syntax"
        raise SourceError(f"syntax error: {message}", Location(error.raw_line, error.raw_column + 1)) from None
    except Exception as error:  # the native parser rejects a few inputs without a ParserSyntaxError
        raise SourceError(f"cannot parse: {error}") from None


def _error_location(error: SyntaxError) -> Location:
    return Location(error.lineno or 1, max(error.offset or 1, 1))


def _lint(source: str, filename: str, settings: Settings) -> list[Diagnostic]:
    try:
        return _lint_parsed(source, _parse(source), filename, settings)
    except RecursionError:
        # libcst's visitors recurse once per nesting level; CPython accepts deeper nesting than they can walk.
        raise SourceError("the code is nested too deeply to analyse (not modified)") from None


def _lint_parsed(source: str, module: cst.Module, filename: str, settings: Settings) -> list[Diagnostic]:
    ctx = FileContext(source, filename, settings, module)
    found: dict[tuple[str, int], Diagnostic] = {}

    def sink(diagnostic: Diagnostic, start: int) -> None:
        key = (diagnostic.code, start)
        previous = found.get(key)
        if previous is None or _fix_rank(diagnostic) > _fix_rank(previous):
            found[key] = diagnostic

    rules = [rule(ctx, sink) for rule in ALL_RULES if rule.code in settings.enabled and rule.EVENTS]
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

    Interpreter(ctx, on_event, on_final).run()
    silenced = suppressions(source)
    diagnostics = [
        d for d in found.values() if d.location is None or not is_suppressed(d.code, d.location.row, silenced)
    ]
    return sorted(diagnostics, key=Diagnostic.sort_key)


def _fix_rank(diagnostic: Diagnostic) -> int:
    if diagnostic.fix is None or not diagnostic.fix.edits:
        return 0
    return {Applicability.SAFE: 3, Applicability.UNSAFE: 2}.get(diagnostic.fix.applicability, 1)


def _parse_error(error: SourceError, filename: str, settings: Settings) -> list[Diagnostic]:
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
