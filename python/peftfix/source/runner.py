"""Run the source check over files: discovery, the engine per file (in parallel for many files), fixes.

Each file is read, checked and (with `--apply`) written back inside one job, so a worker process never ships
file contents back, and one file's failure (unreadable, unwritable, an engine crash) is reported as an error
for that file while every other file is still checked.

The analysis of one file follows calls into the project's other modules and may find pitfalls located in them
(a finding goes where its fix goes). So a check runs in two phases: every file is analysed; then, with
`--apply`/`--diff`, each file that has a fix to apply is fixed with the analyses that reach it run again on
its new text.
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
from typing import Any, Optional

from peftfix.about import debug_enabled
from peftfix.diagnostics import Diagnostic, Finding, Report
from peftfix.files import read_regular
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
    roots: tuple[str, ...] = ()  # the project's roots, where its imports are resolved
    with_edits: bool = False  # build the edits of fixes (for JSON/SARIF); --apply/--diff always do
    importers: tuple[str, ...] = ()  # files whose analysis reaches this one (re-run when fixing it)
    cache_dir: Optional[str] = None  # where analyses are cached (check mode only); None: no cache


@dataclass
class FileResult:
    display_name: str
    findings: list[Finding] = field(default_factory=list)
    foreign: list[Diagnostic] = field(default_factory=list)  # found by this file's analysis in other files
    touched: list[str] = field(default_factory=list)  # the other files this file's analysis interpreted
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


class ChangedOnDisk(OSError):
    """The file no longer holds what was read: someone edited it while it was being fixed."""


def write_atomically(path: Path | str, data: bytes, expected: Optional[bytes] = None) -> None:
    """Replace the file's content so that readers see the old or the new file, never half of one.

    ``expected``: what the file held when it was read; if it holds anything else now (an editor saved it
    meanwhile), nothing is written and :class:`ChangedOnDisk` is raised. The temporary file lives in the same
    directory (os.replace is atomic only within one filesystem) and gets the original's permission bits, owner and
    group. A symlink is followed, so the link stays a link. A file with several hard links, or one whose owner
    cannot be kept, is rewritten in place instead, so the links and the owner stay.
    """
    target = os.path.realpath(path)
    status = os.stat(target)
    if status.st_nlink > 1:
        _rewrite_in_place(target, data, expected)
        return
    directory, name = os.path.split(target)
    fd, temp_path = tempfile.mkstemp(prefix=f".{name}.", suffix=".peftfix-tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_path, stat.S_IMODE(status.st_mode))
        if not _same_owner(temp_path, status):
            os.unlink(temp_path)
            _rewrite_in_place(target, data, expected)
            return
        _unchanged(target, expected)
        os.replace(temp_path, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_path)
        raise


def _unchanged(target: str, expected: Optional[bytes], current: Optional[bytes] = None) -> None:
    """Raise :class:`ChangedOnDisk` unless the file holds ``expected`` (``current``: its bytes, if already read)."""
    if expected is None:
        return
    if (current if current is not None else read_regular(target)) != expected:
        raise ChangedOnDisk(0, "changed on disk since it was read (edited meanwhile?): left as it is", target)


def _same_owner(temp_path: str, status: os.stat_result) -> bool:
    """Give the new file the original's owner and group; False when that is not allowed (not root)."""
    if not hasattr(os, "chown"):
        return True
    mine = os.stat(temp_path)
    if (mine.st_uid, mine.st_gid) == (status.st_uid, status.st_gid):
        return True
    try:
        os.chown(temp_path, status.st_uid, status.st_gid)
    except PermissionError:
        return False
    return True


def _rewrite_in_place(target: str, data: bytes, expected: Optional[bytes]) -> None:
    """Write ``data`` into the existing inode (hard links and owner kept); not atomic, so checked just before."""
    with open(target, "r+b") as handle:
        _unchanged(target, expected, handle.read() if expected is not None else None)
        handle.seek(0)
        handle.write(data)
        handle.truncate()
        handle.flush()
        os.fsync(handle.fileno())


# --- checking one file --------------------------------------------------------------------------------------


def _findings(
    diagnostics: Iterable[Diagnostic], settings: Optional[Settings], fixes_attempted: bool = False
) -> list[Finding]:
    """Wrap diagnostics with whether `--apply` would fix them. After a fix run, what remains was not fixed by
    it (a dropped or conflicting fix), so it is not advertised as fixable again."""
    return [
        Finding(
            diagnostic,
            not fixes_attempted
            and settings is not None
            and diagnostic.fix is not None
            and diagnostic.fix.is_applicable(settings.unsafe_fixes),
        )
        for diagnostic in diagnostics
    ]


def _describe_exception(error: BaseException) -> str:
    if debug_enabled():
        return "".join(traceback.format_exception(error)).rstrip()
    return f"{type(error).__name__}: {error}"


_PROJECTS: dict[tuple[str, ...], Any] = {}


def forget_project_files() -> None:
    """Drop the project files parsed for earlier checks. Keeping them for the life of the process is right for one
    `peftfix check`; a long-running process (the language server) calls this before each check, so that a file
    edited since is read again."""
    _PROJECTS.clear()


def _project(roots: tuple[str, ...]) -> Any:
    """One project per set of roots and process: its files are parsed once for every job."""
    from peftfix.source.flow.project import Project

    project = _PROJECTS.get(roots)
    if project is None:
        project = _PROJECTS[roots] = Project(roots)
    return project


def check_data(data: bytes, job: FileJob) -> FileResult:
    """Check content already read and, unless ``job.mode`` is CHECK, fix it in memory; never writes."""
    from peftfix.source.engine import check_bytes
    from peftfix.source.notebook import is_notebook
    from peftfix.source.notebook_check import check_notebook

    result = FileResult(job.display_name)
    cache, key = None, ""
    if job.cache_dir is not None and job.mode is FixMode.CHECK and job.path != "-":
        from peftfix.source.cache import Cache

        cache = Cache(job.cache_dir)
        key = cache.key(job.path, data, job.settings, job.with_edits)
        hit = cache.load(key)
        if hit is not None:
            own, foreign, touched = hit
            result.findings = _findings(own, job.settings)
            result.foreign, result.touched = foreign, touched
            return result
    # A notebook is known by its name (a path, or --stdin-filename), as Jupyter and Ruff know it.
    check = check_notebook if is_notebook(job.display_name) else check_bytes
    try:
        outcome = check(
            data,
            job.display_name,
            job.settings,
            job.mode is not FixMode.CHECK,
            project=_project(job.roots),
            with_edits=job.with_edits,
            importers=job.importers,
        )
    except Exception as error:  # an engine bug must cost one file, not the run
        result.error = f"internal error while checking: {_describe_exception(error)}"
        return result

    result.foreign = list(outcome.foreign)
    result.touched = list(outcome.touched)
    if outcome.not_fixed is not None:
        result.error = f"not fixed: {outcome.not_fixed}"
    if cache is not None:
        cache.store(key, outcome.diagnostics, result.foreign, result.touched)
    result.findings = _findings(outcome.diagnostics, job.settings, fixes_attempted=job.mode is FixMode.APPLY)
    result.fixed = list(outcome.fixed)
    result.dropped = list(getattr(outcome, "dropped", ()))
    changed = outcome.new_bytes is not None and outcome.new_bytes != data
    if job.mode is FixMode.DIFF and changed:
        if outcome.diff is not None:
            result.diff = outcome.diff
        elif outcome.source is not None and outcome.new_source is not None:
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
        data = read_regular(job.path)
    except OSError as error:
        return FileResult(job.display_name, error=f"cannot read: {error.strerror or error}")
    try:
        result = check_data(data, job)
        if result.fixed_bytes is not None and result.fixed_bytes != data:
            try:
                write_atomically(job.path, result.fixed_bytes, expected=data)
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


def _collect(results: Iterable[FileResult], errors: list[tuple[str, str]], settings_for: Any = None) -> CheckRun:
    findings: dict[tuple, Finding] = {}
    fixed: list[Diagnostic] = []
    dropped: list[Diagnostic] = []
    diffs = []
    for result in results:
        for finding in result.findings:
            findings[_identity(finding.diagnostic)] = finding
        for diagnostic in result.foreign:
            settings = settings_for(diagnostic.filename) if settings_for is not None else None
            if settings is not None and diagnostic.code not in settings.enabled:
                continue
            findings.setdefault(_identity(diagnostic), _findings([diagnostic], settings, fixes_attempted=True)[0])
        fixed += result.fixed
        dropped += result.dropped
        if result.diff:
            diffs.append(result.diff)
        if result.error:
            errors.append((result.display_name, result.error))
    return CheckRun(Report.build(findings.values(), fixed), errors, diffs, sorted(dropped, key=Diagnostic.sort_key))


def _identity(diagnostic: Diagnostic) -> tuple:
    return (diagnostic.filename, diagnostic.cell, diagnostic.code, diagnostic.location, diagnostic.end_location)


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
    with_edits: bool = False,
    cache_dir: Optional[str] = None,
) -> CheckRun:
    files, errors = discover(paths, configs, respect_gitignore)
    roots = project_roots(paths)
    build_edits = with_edits or mode is not FixMode.CHECK
    jobs = [
        FileJob(os.fspath(path), display_name(path), settings, FixMode.CHECK, roots, build_edits, (), cache_dir)
        for path, settings in files
    ]
    by_name = {job.display_name: job for job in jobs}
    results = _run_jobs(jobs, max_workers)
    if mode is not FixMode.CHECK:
        results = _fix_phase(results, by_name, mode, max_workers)

    def settings_for(name: str) -> Optional[Settings]:
        job = by_name.get(name)
        return job.settings if job is not None else None

    return _collect(results, errors, settings_for)


def _fix_phase(
    results: list[FileResult], jobs: dict[str, FileJob], mode: FixMode, max_workers: Optional[int]
) -> list[FileResult]:
    """Re-run, fixing, the files that have a fix to apply — their own findings or those another file's analysis
    located in them — with the analyses that reach them; the other files keep their check results."""
    importers: dict[str, set[str]] = {}
    fixable: set[str] = set()
    for result in results:
        for other in result.touched:
            importers.setdefault(other, set()).add(result.display_name)
        if any(finding.fix_applicable for finding in result.findings):
            fixable.add(result.display_name)
        for diagnostic in result.foreign:
            job = jobs.get(diagnostic.filename)
            if (
                job is not None
                and diagnostic.fix is not None
                and diagnostic.fix.is_applicable(job.settings.unsafe_fixes)
            ):
                fixable.add(diagnostic.filename)
    fix_jobs = []
    for name in sorted(fixable):
        job = jobs[name]
        reaching = tuple(jobs[other].path for other in sorted(importers.get(name, ())) if other in jobs)
        fix_jobs.append(FileJob(job.path, name, job.settings, mode, job.roots, True, reaching))
    fixed = {result.display_name: result for result in _run_jobs(fix_jobs, max_workers)}
    merged = []
    for result in results:
        again = fixed.get(result.display_name)
        if again is not None:
            again.foreign = result.foreign  # what this file's analysis found elsewhere still stands
            merged.append(again)
        else:
            merged.append(result)
    return merged


def project_roots(paths: Sequence[str]) -> tuple[str, ...]:
    """Where the project's imports are resolved: the directories checked, and those of the files checked."""
    roots = []
    for path in paths:
        if path == "-":
            continue
        directory = path if os.path.isdir(path) else os.path.dirname(path) or "."
        root = os.path.abspath(directory)
        if root not in roots:
            roots.append(root)
    return tuple(roots)


def run_stdin(
    data: bytes, name: str, settings: Settings, mode: FixMode, with_edits: bool = False
) -> tuple[CheckRun, bytes]:
    """Check content read from stdin; returns the run and, for APPLY, the bytes to write to stdout."""
    roots = project_roots([name if name != "-" else "."])
    job = FileJob("-", name, settings, mode, roots, with_edits or mode is not FixMode.CHECK)
    result = check_data(data, job)
    output = result.fixed_bytes if result.fixed_bytes is not None else data
    return _collect([result], []), output
