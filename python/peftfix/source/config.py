"""`[tool.peftfix]` configuration: finding it, validating it, and resolving it into per-file `Settings`.

Precedence, lowest first: the registry's default rules, the configuration file, the command line. Within one
layer, code selectors work like Ruff's: a selector is a code prefix (`PF2` selects PF201..PF205, `PF` and `ALL`
select everything), and when several selectors of a layer match a code the most specific (longest) one decides,
with `ignore` winning a tie. A layer with `select` starts from nothing; a layer without it starts from the layer
below. `per-file-ignores` is applied last, per file.

Configuration is looked up per checked path: the nearest `pyproject.toml` holding a `[tool.peftfix]` table, from
the path (or the working directory for stdin) up to the filesystem root, unless `--config FILE` names one.
"""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from peftfix.files import read_regular
from peftfix.source import pathglob

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib
from peftfix.source.settings import DEFAULT_MAX_RANK, Settings

PYPROJECT = "pyproject.toml"
ALL_SELECTOR = "ALL"
KNOWN_KEYS = ("select", "ignore", "extend-select", "exclude", "per-file-ignores", "unsafe-fixes", "max-rank")


class ConfigError(Exception):
    """The configuration (file or command line) is invalid; the CLI reports it as a usage error (exit 2)."""


@dataclass(frozen=True)
class RuleSelection:
    """One layer of code selectors (a config file's, or the command line's)."""

    select: Optional[tuple[str, ...]] = None  # None: keep what the layer below enabled
    extend_select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()

    def apply(self, enabled_below: frozenset[str], known_codes: Sequence[str]) -> frozenset[str]:
        enabling = (self.select or ()) + self.extend_select
        start = frozenset() if self.select is not None else enabled_below
        enabled = set()
        for code in known_codes:
            best_enable = _longest_match(code, enabling)
            best_ignore = _longest_match(code, self.ignore)
            if best_enable < 0 and best_ignore < 0:
                if code in start:
                    enabled.add(code)
            elif best_enable > best_ignore:
                enabled.add(code)
        return frozenset(enabled)


def _selector_matches(selector: str, code: str) -> bool:
    return selector == ALL_SELECTOR or code.startswith(selector)


def _longest_match(code: str, selectors: Iterable[str]) -> int:
    """Specificity of the most specific selector matching ``code`` (-1: none). `ALL` is the least specific."""
    best = -1
    for selector in selectors:
        if _selector_matches(selector, code):
            best = max(best, 0 if selector == ALL_SELECTOR else len(selector))
    return best


@dataclass(frozen=True)
class ConfigFile:
    """A validated `[tool.peftfix]` table (or the empty default when no file is found)."""

    path: Optional[Path]  # None: no configuration file
    root: Path  # directory that `exclude` and `per-file-ignores` globs are relative to
    selection: RuleSelection = RuleSelection()
    exclude: tuple[str, ...] = ()
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = ()
    unsafe_fixes: Optional[bool] = None
    max_rank: Optional[int] = None


@dataclass(frozen=True)
class CliOverrides:
    """What the command line says about rules and fixes (it wins over any file)."""

    selection: RuleSelection = RuleSelection()
    unsafe_fixes: Optional[bool] = None


def parse_code_list(values: Iterable[str]) -> tuple[str, ...]:
    """`--select PF2,PF301 --select PF1` → ("PF2", "PF301", "PF1")."""
    return tuple(part.strip() for value in values for part in value.split(",") if part.strip())


def _registry_codes() -> list[str]:
    from peftfix.source import registry

    return list(registry.all_codes())


def _registry_defaults() -> list[str]:
    from peftfix.source import registry

    return list(registry.default_codes())


def validate_selectors(selectors: Iterable[str], known_codes: Sequence[str], where: str) -> tuple[str, ...]:
    """Normalise selectors to upper case and reject any that selects no known code."""
    validated = []
    for raw in selectors:
        selector = raw.strip().upper()
        if not selector or not any(_selector_matches(selector, code) for code in known_codes):
            hint = difflib.get_close_matches(selector, list(known_codes), n=1)
            suggestion = f" (did you mean {hint[0]}?)" if hint else ""
            raise ConfigError(f"{where}: unknown rule selector {raw!r}{suggestion}")
        validated.append(selector)
    return tuple(validated)


# --- reading files -------------------------------------------------------------------------------------------


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(read_regular(path).decode("utf-8"))
    except OSError as error:
        raise ConfigError(f"cannot read configuration file {path}: {error.strerror or error}") from error
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: invalid TOML: {error}") from error
    except RecursionError:
        raise ConfigError(f"{path}: invalid TOML: nested too deeply to read") from None


def _peftfix_table(document: Mapping[str, Any]) -> Optional[Any]:
    tool = document.get("tool")
    if isinstance(tool, Mapping):
        return tool.get("peftfix")
    return None


def _mentions_peftfix_table(path: Path) -> bool:
    try:
        return b"tool.peftfix" in read_regular(path)
    except OSError:
        return False


def find_config_file(start: Path) -> Optional[Path]:
    """The nearest `pyproject.toml` with a `[tool.peftfix]` table, from ``start`` (a file or directory) upward."""
    directory = Path(os.path.abspath(start))
    if not directory.is_dir():
        directory = directory.parent
    for candidate_dir in (directory, *directory.parents):
        candidate = candidate_dir / PYPROJECT
        if candidate.is_file():
            try:
                table = _peftfix_table(_read_toml(candidate))
            except ConfigError:
                # A broken pyproject.toml of some unrelated parent project must not stop a check, but one that
                # configures peftfix must not be skipped silently either.
                if _mentions_peftfix_table(candidate):
                    raise
                continue
            if table is not None:
                return candidate
    return None


def load_config_file(path: Path, known_codes: Optional[Sequence[str]] = None) -> ConfigFile:
    """Read and validate ``path``: a pyproject.toml's `[tool.peftfix]`, or a toml whose top level holds the keys."""
    path = Path(os.path.abspath(path))
    document = _read_toml(path)
    table = _peftfix_table(document)
    if table is None:
        if path.name == PYPROJECT:
            raise ConfigError(f"{path}: no [tool.peftfix] table")
        table, where = document, str(path)
    else:
        where = f"{path}: [tool.peftfix]"
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where}: must be a table")
    return _parse_table(table, path, where, known_codes if known_codes is not None else _registry_codes())


def _expect_string_list(table: Mapping[str, Any], key: str, where: str) -> Optional[tuple[str, ...]]:
    if key not in table:
        return None
    value = table[key]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigError(f"{where}: {key!r} must be a list of strings, got {value!r}")
    return tuple(value)


def _parse_table(table: Mapping[str, Any], path: Path, where: str, known_codes: Sequence[str]) -> ConfigFile:
    for key in table:
        if key not in KNOWN_KEYS:
            hint = difflib.get_close_matches(str(key), KNOWN_KEYS, n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise ConfigError(f"{where}: unknown key {key!r}{suggestion}; known keys: {', '.join(KNOWN_KEYS)}")

    def selectors(key: str) -> Optional[tuple[str, ...]]:
        values = _expect_string_list(table, key, where)
        return None if values is None else validate_selectors(values, known_codes, f"{where} {key}")

    per_file_ignores = table.get("per-file-ignores", {})
    if not isinstance(per_file_ignores, Mapping):
        raise ConfigError(f"{where}: 'per-file-ignores' must be a table of glob = [codes]")
    parsed_per_file = []
    for pattern, codes in per_file_ignores.items():
        if not isinstance(codes, list) or not all(isinstance(code, str) for code in codes):
            raise ConfigError(f"{where}: per-file-ignores[{pattern!r}] must be a list of rule codes")
        parsed_per_file.append(
            (pattern, validate_selectors(codes, known_codes, f"{where} per-file-ignores[{pattern!r}]"))
        )

    unsafe_fixes = table.get("unsafe-fixes")
    if unsafe_fixes is not None and not isinstance(unsafe_fixes, bool):
        raise ConfigError(f"{where}: 'unsafe-fixes' must be true or false, got {unsafe_fixes!r}")
    max_rank = table.get("max-rank")
    # bool is an int in Python; `max-rank = true` is a mistake, not rank 1.
    if max_rank is not None and (isinstance(max_rank, bool) or not isinstance(max_rank, int) or max_rank < 1):
        raise ConfigError(f"{where}: 'max-rank' must be a positive integer, got {max_rank!r}")

    return ConfigFile(
        path=path,
        root=path.parent,
        selection=RuleSelection(
            select=selectors("select"),
            extend_select=selectors("extend-select") or (),
            ignore=selectors("ignore") or (),
        ),
        exclude=_expect_string_list(table, "exclude", where) or (),
        per_file_ignores=tuple(parsed_per_file),
        unsafe_fixes=unsafe_fixes,
        max_rank=max_rank,
    )


# --- resolution ----------------------------------------------------------------------------------------------


@dataclass
class ResolvedConfig:
    """A configuration file merged with the defaults and the command line; gives each file its `Settings`."""

    config: ConfigFile
    enabled: frozenset[str]
    unsafe_fixes: bool
    max_rank: int
    known_codes: tuple[str, ...]
    _settings_cache: dict[frozenset[str], Settings] = field(default_factory=dict, repr=False)

    @property
    def exclude(self) -> tuple[str, ...]:
        """`exclude` globs anchored at the configuration file's directory, ready for discovery."""
        return tuple(pathglob.anchor(pattern, self.root) for pattern in self.config.exclude)

    @property
    def root(self) -> Path:
        return self.config.root

    def settings_for(self, path: Path | str) -> Settings:
        """Settings for one file: the resolved rules minus its `per-file-ignores`."""
        ignored: set[str] = set()
        for pattern, selectors in self.config.per_file_ignores:
            if pathglob.matches_any(path, self.root, (pattern,)):
                ignored.update(code for code in self.known_codes if _longest_match(code, selectors) >= 0)
        enabled = self.enabled - ignored
        settings = self._settings_cache.get(enabled)
        if settings is None:
            settings = Settings(enabled=enabled, unsafe_fixes=self.unsafe_fixes, max_rank=self.max_rank)
            self._settings_cache[enabled] = settings
        return settings


def resolve(
    config: ConfigFile,
    overrides: CliOverrides,
    known_codes: Optional[Sequence[str]] = None,
    default_codes: Optional[Sequence[str]] = None,
) -> ResolvedConfig:
    """Merge defaults ← ``config`` ← ``overrides`` (selectors must already be validated)."""
    known = tuple(known_codes if known_codes is not None else _registry_codes())
    defaults = frozenset(default_codes if default_codes is not None else _registry_defaults())
    enabled = config.selection.apply(defaults, known)
    enabled = overrides.selection.apply(enabled, known)
    unsafe_fixes = next((value for value in (overrides.unsafe_fixes, config.unsafe_fixes) if value is not None), False)
    max_rank = config.max_rank if config.max_rank is not None else DEFAULT_MAX_RANK
    return ResolvedConfig(config, enabled, unsafe_fixes, max_rank, known)


class ConfigResolver:
    """Finds and resolves the configuration for each checked path, reading every file once."""

    def __init__(
        self,
        overrides: CliOverrides = CliOverrides(),
        config_file: Optional[Path] = None,
        cwd: Optional[Path] = None,
        known_codes: Optional[Sequence[str]] = None,
        default_codes: Optional[Sequence[str]] = None,
        find: Callable[[Path], Optional[Path]] = find_config_file,
    ) -> None:
        self._known = tuple(known_codes if known_codes is not None else _registry_codes())
        self._defaults = tuple(default_codes if default_codes is not None else _registry_defaults())
        self._cwd = Path(os.path.abspath(cwd or os.getcwd()))
        self._find = find
        self._overrides = CliOverrides(
            selection=RuleSelection(
                select=(
                    None
                    if overrides.selection.select is None
                    else validate_selectors(overrides.selection.select, self._known, "--select")
                ),
                extend_select=validate_selectors(overrides.selection.extend_select, self._known, "--extend-select"),
                ignore=validate_selectors(overrides.selection.ignore, self._known, "--ignore"),
            ),
            unsafe_fixes=overrides.unsafe_fixes,
        )
        self._explicit = self._load(config_file) if config_file is not None else None
        self._by_file: dict[Optional[Path], ResolvedConfig] = {}

    def _load(self, path: Optional[Path]) -> ResolvedConfig:
        if path is None:
            config = ConfigFile(path=None, root=self._cwd)
        else:
            config = load_config_file(path, self._known)
        return resolve(config, self._overrides, self._known, self._defaults)

    def for_path(self, path: Optional[Path | str]) -> ResolvedConfig:
        """The configuration governing ``path`` (None: the working directory, as for stdin)."""
        if self._explicit is not None:
            return self._explicit
        start = self._cwd if path is None else self._cwd / Path(path)
        found = self._find(start)
        if found not in self._by_file:
            self._by_file[found] = self._load(found)
        return self._by_file[found]
