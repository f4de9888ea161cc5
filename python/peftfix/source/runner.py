"""Run the source check over files: discovery, the engine per file (in parallel for many files), fixes.

Each file is read, checked and (with `--apply`) written back inside one job, so a worker process never ships
file contents back, and one file's failure (unreadable, unwritable, an engine crash) is reported as an error
for that file while every other file is still checked.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import difflib
import enum
import importlib
import io
import os
import stat
import tempfile
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from peftfix.about import debug_enabled
from peftfix.diagnostics import Diagnostic, Finding, Report
from peftfix.source.config import ConfigResolver, ResolvedConfig
from peftfix.source.settings import Settings

# Below this many files, starting worker processes (each importing libcst) costs more than it saves.
PARALLEL_THRESHOLD = 16


class FixMode(enum.Enum):
    CHECK = "check"  # report only
    APPLY = "apply"  # write fixes back
    DIFF = "diff"  # compute fixes, write nothing, show a diff


@dataclass(frozen=True)
class FileJob:
    path: str  # where to read (and write)
    display_name: str  # what diagnostics and diffs call the file
    settings: Settings
    mode: FixMode


@dataclass
class FileResult:
    display_name: str
    findings: list[Finding] = field(default_factory=list)
    fixed: list[Diagnostic] = field(default_factory=list)
    diff: Optional[str] = None  # FixMode.DIFF: unified diff of what --apply would change
    dropped: list[Diagnostic] = field(default_factory=list)  # fixes left out: they broke the file
    fixed_bytes: Optional[bytes] = None  # the fixed content (stdin only; files are written in place)
    error: Optional[str] = None  # why the file could not be checked or written


@dataclass
class CheckRun:
    """Everything a check over many files produced."""

    report: Report
    errors: list[tuple[str, str]]  # (path, reason): discovery failures, unreadable or unwritable files
    diffs: list[str]
    dropped_fixes: list[Diagnostic] = field(default_factory=list)  # fixes not applied: they broke the file

    @property
    def has_errors(self) -> bool:
        return bool(self.errors)


# --- display names and diffs ----------------------------------------------------------------------------------


def display_name(path: Path | str, cwd: Optional[Path] = None) -> str:
    """The path as users should see it: relative to the working directory when it lies beneath it, without
    `./` (discovery returns paths as walked, e.g. `./train.py` for `.`)."""
    text = os.path.normpath(os.fspath(path))
    if os.path.isabs(text):
        base = os.fspath(cwd or os.getcwd())
        try:
            relative = os.path.relpath(text, base)
        except ValueError:  # another drive on Windows
            return text
        if not relative.startswith(os.pardir):
            text = relative
    return text.replace(os.sep, "/")


def _lines_keeping_ends(text: str) -> list[str]:
    # str.splitlines() also splits on form feeds and Unicode separators, which are not line ends for Python
    # source or for diff/patch; a newline='' StringIO splits on \n, \r\n and \r only, keeping them.
    return io.StringIO(text, newline="").readlines()


def unified_diff(before: str, after: str, name: str) -> str:
    lines = []
    for line in difflib.unified_diff(
        _lines_keeping_ends(before), _lines_keeping_ends(after), fromfile=f"a/{name}", tofile=f"b/{name}"
    ):
        if line.endswith(("\n", "\r")):
            lines.append(line)
        else:
            lines.append(line + "\n\\ No newline at end of file\n")
    return "".join(lines)


# --- writing ----------------------------------------------------------------------------------------------------


def write_atomically(path: Path | str, data: bytes) -> None:
    """Replace the file's content so that readers see the old or the new file, never half of one.

    The temporary file lives in the same directory (os.replace is atomic only within one filesystem) and gets
    the original's permission bits. A symlink is followed, so the link stays a link.
    """
    target = os.path.realpath(path)
    mode = stat.S_IMODE(os.stat(target).st_mode)
    directory, name = os.path.split(target)
    fd, temp_path = tempfile.mkstemp(prefix=f".{name}.", suffix=".peftfix-tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_path, mode)
        os.replace(temp_path, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_path)
        raise


# --- checking one file --------------------------------------------------------------------------------------


def _findings(diagnostics: Iterable[Diagnostic], settings: Settings, fixes_attempted: bool = False) -> list[Finding]:
    """Wrap diagnostics with whether `--apply` would fix them. After a fix run, what remains was not fixed by
    it (a dropped or conflicting fix), so it is not advertised as fixable again."""
    return [
        Finding(
            diagnostic,
            not fixes_attempted and diagnostic.fix is not None and diagnostic.fix.is_applicable(settings.unsafe_fixes),
        )
        for diagnostic in diagnostics
    ]


def _describe_exception(error: BaseException) -> str:
    if debug_enabled():
        return "".join(traceback.format_exception(error)).rstrip()
    return f"{type(error).__name__}: {error}"


def check_data(data: bytes, job: FileJob) -> FileResult:
    """Check content already read and, unless ``job.mode`` is CHECK, fix it in memory; never writes."""
    from peftfix.source.engine import check_bytes

    result = FileResult(job.display_name)
    try:
        outcome = check_bytes(data, job.display_name, job.settings, job.mode is not FixMode.CHECK)
    except Exception as error:  # an engine bug must cost one file, not the run
        result.error = f"internal error while checking: {_describe_exception(error)}"
        return result

    result.findings = _findings(outcome.diagnostics, job.settings, fixes_attempted=job.mode is FixMode.APPLY)
    result.fixed = list(outcome.fixed)
    result.dropped = list(getattr(outcome, "dropped", ()))
    changed = outcome.new_bytes is not None and outcome.new_bytes != data
    if job.mode is FixMode.DIFF and changed and outcome.source is not None and outcome.new_source is not None:
        result.diff = unified_diff(outcome.source, outcome.new_source, job.display_name)
    if job.mode is FixMode.APPLY:
        result.fixed_bytes = outcome.new_bytes if changed else data
    if job.mode is not FixMode.CHECK and not changed:
        # Nothing changes on disk, so nothing was fixed (e.g. two fixes cancelled out).
        result.findings += _findings(result.fixed, job.settings, fixes_attempted=True)
        result.fixed = []
    return result


def check_file(job: FileJob) -> FileResult:
    """Read, check and, in APPLY mode, write back one file. Never raises."""
    try:
        with open(job.path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        return FileResult(job.display_name, error=f"cannot read: {error.strerror or error}")
    try:
        result = check_data(data, job)
        if result.fixed_bytes is not None and result.fixed_bytes != data:
            try:
                write_atomically(job.path, result.fixed_bytes)
            except OSError as error:
                # The fixes did not land: they are still findings.
                result.findings += _findings(result.fixed, job.settings, fixes_attempted=True)
                result.fixed = []
                result.error = f"cannot write fixes: {error.strerror or error}"
        result.fixed_bytes = None  # workers must not ship file contents back
        return result
    except Exception as error:
        return FileResult(job.display_name, error=f"internal error: {_describe_exception(error)}")


def _run_jobs(jobs: Sequence[FileJob], max_workers: Optional[int] = None) -> list[FileResult]:
    if len(jobs) <= PARALLEL_THRESHOLD:
        return [check_file(job) for job in jobs]
    workers = max_workers or _available_cpus()
    workers = max(1, min(workers, len(jobs) // 4 or 1))
    if workers == 1:
        return [check_file(job) for job in jobs]
    # Import the engine before the workers start: forked workers inherit it instead of each importing libcst
    # and every rule again, and a broken engine fails once here rather than once per file.
    importlib.import_module("peftfix.source.engine")

    # Several chunks per worker keep them all busy when some files are much slower than others.
    chunksize = max(1, len(jobs) // (workers * 4))
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(check_file, jobs, chunksize=chunksize))


def _available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


# --- many files ---------------------------------------------------------------------------------------------------


def _collect(results: Iterable[FileResult], errors: list[tuple[str, str]]) -> CheckRun:
    findings: list[Finding] = []
    fixed: list[Diagnostic] = []
    dropped: list[Diagnostic] = []
    diffs = []
    for result in results:
        findings += result.findings
        fixed += result.fixed
        dropped += result.dropped
        if result.diff:
            diffs.append(result.diff)
        if result.error:
            errors.append((result.display_name, result.error))
    return CheckRun(Report.build(findings, fixed), errors, diffs, sorted(dropped, key=Diagnostic.sort_key))


def discover(
    paths: Sequence[str], configs: ConfigResolver, respect_gitignore: bool = True
) -> tuple[list[tuple[Path, Settings]], list[tuple[str, str]]]:
    """The files to check, each with its settings, plus (path, reason) for what could not be listed.

    Paths are grouped by the configuration that governs them, so each group is discovered with its own
    `exclude`.
    """
    from peftfix.source.discovery import find_python_files

    groups: dict[int, tuple[ResolvedConfig, list[str]]] = {}
    for path in paths:
        config = configs.for_path(path)
        groups.setdefault(id(config), (config, []))[1].append(path)

    files: list[tuple[Path, Settings]] = []
    errors: list[tuple[str, str]] = []
    seen: set[str] = set()
    for config, group_paths in groups.values():
        found = find_python_files(
            group_paths, exclude=list(config.exclude), respect_gitignore=respect_gitignore, prefilter=True
        )
        for error_path, reason in found.errors:
            errors.append((display_name(error_path), str(reason)))
        for file in found.files:
            key = os.path.abspath(file)
            if key not in seen:
                seen.add(key)
                files.append((Path(file), config.settings_for(file)))
    return files, errors


def run_check(
    paths: Sequence[str],
    configs: ConfigResolver,
    mode: FixMode = FixMode.CHECK,
    respect_gitignore: bool = True,
    max_workers: Optional[int] = None,
) -> CheckRun:
    files, errors = discover(paths, configs, respect_gitignore)
    jobs = [FileJob(os.fspath(path), display_name(path), settings, mode) for path, settings in files]
    return _collect(_run_jobs(jobs, max_workers), errors)


def run_stdin(data: bytes, name: str, settings: Settings, mode: FixMode) -> tuple[CheckRun, bytes]:
    """Check content read from stdin; returns the run and, for APPLY, the bytes to write to stdout."""
    result = check_data(data, FileJob(path="-", display_name=name, settings=settings, mode=mode))
    output = result.fixed_bytes if result.fixed_bytes is not None else data
    return _collect([result], []), output
