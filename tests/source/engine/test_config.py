"""Configuration: discovery of [tool.peftfix], validation, selector semantics, precedence, per-file ignores."""

from __future__ import annotations

from pathlib import Path

import pytest

from peftfix.source import pathglob
from peftfix.source.config import (
    CliOverrides,
    ConfigError,
    ConfigFile,
    ConfigResolver,
    RuleSelection,
    find_config_file,
    parse_code_list,
    resolve,
)
from peftfix.source.settings import DEFAULT_MAX_RANK

CODES = ("PF000", "PF101", "PF201", "PF202", "PF203", "PF204", "PF205", "PF301", "PF302", "PF401")
DEFAULTS = CODES  # every rule on unless a test says otherwise


def resolver(tmp_path: Path, overrides: CliOverrides = CliOverrides(), config_file=None, defaults=DEFAULTS):
    return ConfigResolver(overrides, config_file=config_file, cwd=tmp_path, known_codes=CODES, default_codes=defaults)


def pyproject(directory: Path, body: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "pyproject.toml"
    path.write_text("[project]\nname = 'x'\n\n[tool.peftfix]\n" + body)
    return path


def cli(select=None, ignore=(), extend_select=(), unsafe_fixes=None) -> CliOverrides:
    return CliOverrides(RuleSelection(select=select, ignore=ignore, extend_select=extend_select), unsafe_fixes)


class TestSelectors:
    def apply(self, selection: RuleSelection, below=frozenset(CODES)) -> set[str]:
        return set(selection.apply(frozenset(below), CODES))

    def test_prefix_selects_every_code_it_starts(self):
        assert self.apply(RuleSelection(select=("PF2",))) == {"PF201", "PF202", "PF203", "PF204", "PF205"}

    @pytest.mark.parametrize("selector", ["PF", "ALL"])
    def test_everything(self, selector):
        assert self.apply(RuleSelection(select=(selector,)), below=()) == set(CODES)

    def test_more_specific_selector_wins(self):
        assert self.apply(RuleSelection(select=("PF301",), ignore=("PF3",))) == {"PF301"}
        assert self.apply(RuleSelection(select=("PF3",), ignore=("PF301",))) == {"PF302"}

    def test_ignore_wins_a_tie(self):
        assert self.apply(RuleSelection(select=("PF2",), ignore=("PF2",))) == set()

    def test_without_select_the_layer_below_is_kept(self):
        assert self.apply(RuleSelection(ignore=("PF2",)), below={"PF201", "PF301"}) == {"PF301"}
        assert self.apply(RuleSelection(extend_select=("PF401",)), below={"PF301"}) == {"PF301", "PF401"}

    def test_parse_code_list_splits_commas_and_repeats(self):
        assert parse_code_list(["PF2, PF301", "PF1", ""]) == ("PF2", "PF301", "PF1")


class TestPrecedence:
    def test_defaults_when_nothing_configured(self, tmp_path):
        resolved = resolver(tmp_path, defaults=("PF201", "PF301")).for_path(None)
        assert resolved.enabled == {"PF201", "PF301"}
        assert resolved.max_rank == DEFAULT_MAX_RANK and resolved.unsafe_fixes is False

    def test_config_select_replaces_defaults(self, tmp_path):
        pyproject(tmp_path, 'select = ["PF3"]\n')
        assert resolver(tmp_path).for_path(tmp_path).enabled == {"PF301", "PF302"}

    def test_config_extend_select_adds_to_defaults(self, tmp_path):
        pyproject(tmp_path, 'extend-select = ["PF401"]\n')
        assert resolver(tmp_path, defaults=("PF201",)).for_path(tmp_path).enabled == {"PF201", "PF401"}

    def test_cli_select_replaces_config(self, tmp_path):
        pyproject(tmp_path, 'select = ["PF3"]\n')
        assert resolver(tmp_path, cli(select=("PF201",))).for_path(tmp_path).enabled == {"PF201"}

    def test_cli_ignore_subtracts_from_config(self, tmp_path):
        pyproject(tmp_path, 'select = ["PF3"]\n')
        assert resolver(tmp_path, cli(ignore=("PF302",))).for_path(tmp_path).enabled == {"PF301"}

    def test_cli_extend_select_adds_to_config(self, tmp_path):
        pyproject(tmp_path, 'select = ["PF3"]\n')
        enabled = resolver(tmp_path, cli(extend_select=("PF401",))).for_path(tmp_path).enabled
        assert enabled == {"PF301", "PF302", "PF401"}

    def test_cli_unsafe_fixes_overrides_config_both_ways(self, tmp_path):
        pyproject(tmp_path, "unsafe-fixes = true\nmax-rank = 64\n")
        assert resolver(tmp_path).for_path(tmp_path).unsafe_fixes is True
        assert resolver(tmp_path, cli(unsafe_fixes=False)).for_path(tmp_path).unsafe_fixes is False
        assert resolver(tmp_path).for_path(tmp_path).settings_for(tmp_path / "a.py").max_rank == 64

    def test_resolve_function_merges_layers(self, tmp_path):
        config = ConfigFile(path=None, root=tmp_path, selection=RuleSelection(ignore=("PF2",)))
        resolved = resolve(config, cli(extend_select=("PF201",)), known_codes=CODES, default_codes=CODES)
        assert resolved.enabled == set(CODES) - {"PF202", "PF203", "PF204", "PF205"}


class TestDiscovery:
    def test_nearest_pyproject_with_table_wins(self, tmp_path):
        outer = pyproject(tmp_path, 'select = ["PF1"]\n')
        inner = pyproject(tmp_path / "pkg", 'select = ["PF2"]\n')
        (tmp_path / "pkg" / "sub").mkdir()
        assert find_config_file(tmp_path / "pkg" / "sub" / "train.py") == inner
        assert find_config_file(tmp_path / "other.py") == outer

    def test_pyproject_without_table_is_skipped(self, tmp_path):
        outer = pyproject(tmp_path, 'select = ["PF1"]\n')
        (tmp_path / "pkg").mkdir()
        (tmp_path / "pkg" / "pyproject.toml").write_text("[project]\nname = 'inner'\n")
        assert find_config_file(tmp_path / "pkg") == outer

    def test_each_path_gets_its_own_config(self, tmp_path):
        pyproject(tmp_path / "a", 'select = ["PF1"]\n')
        pyproject(tmp_path / "b", 'select = ["PF2"]\n')
        configs = resolver(tmp_path)
        assert configs.for_path(tmp_path / "a").enabled == {"PF101"}
        assert configs.for_path(tmp_path / "b" / "x.py").enabled == {"PF201", "PF202", "PF203", "PF204", "PF205"}

    def test_explicit_config_file_beats_discovery(self, tmp_path):
        pyproject(tmp_path, 'select = ["PF1"]\n')
        explicit = tmp_path / "peftfix.toml"
        explicit.write_text('select = ["PF302"]\nmax-rank = 32\n')
        resolved = resolver(tmp_path, config_file=explicit).for_path(tmp_path)
        assert resolved.enabled == {"PF302"} and resolved.max_rank == 32

    def test_explicit_pyproject(self, tmp_path):
        path = pyproject(tmp_path / "cfg", 'ignore = ["PF3"]\n')
        assert "PF301" not in resolver(tmp_path, config_file=path).for_path(tmp_path).enabled


class TestValidation:
    @pytest.mark.parametrize(
        "body, fragment",
        [
            ('selct = ["PF2"]\n', "unknown key 'selct' (did you mean 'select'?)"),
            ('select = ["PF999"]\n', "unknown rule selector 'PF999'"),
            ('select = "PF2"\n', "'select' must be a list of strings"),
            ('per-file-ignores = { "tests/*" = ["XX1"] }\n', "unknown rule selector 'XX1'"),
            ('per-file-ignores = { "tests/*" = "PF2" }\n', "must be a list of rule codes"),
            ("unsafe-fixes = 1\n", "'unsafe-fixes' must be true or false"),
            ("max-rank = 0\n", "'max-rank' must be a positive integer"),
            ("max-rank = true\n", "'max-rank' must be a positive integer"),
            ("select = [\n", "invalid TOML"),
        ],
    )
    def test_bad_config_is_a_clear_error(self, tmp_path, body, fragment):
        path = pyproject(tmp_path, body)
        with pytest.raises(ConfigError) as raised:
            resolver(tmp_path).for_path(tmp_path)
        assert fragment in str(raised.value)
        assert str(path) in str(raised.value)

    def test_broken_unrelated_pyproject_is_skipped(self, tmp_path):
        outer = pyproject(tmp_path, 'select = ["PF1"]\n')
        (tmp_path / "pkg").mkdir()
        (tmp_path / "pkg" / "pyproject.toml").write_text("[project\n")
        assert find_config_file(tmp_path / "pkg") == outer

    def test_unknown_cli_code(self, tmp_path):
        with pytest.raises(ConfigError, match=r"--ignore: unknown rule selector 'PF9'"):
            resolver(tmp_path, cli(ignore=("PF9",)))

    def test_lowercase_selectors_are_accepted(self, tmp_path):
        assert resolver(tmp_path, cli(select=("pf301",))).for_path(None).enabled == {"PF301"}

    def test_missing_config_file(self, tmp_path):
        with pytest.raises(ConfigError, match="cannot read configuration file"):
            resolver(tmp_path, config_file=tmp_path / "nope.toml")

    def test_pyproject_without_table_given_explicitly(self, tmp_path):
        path = tmp_path / "pyproject.toml"
        path.write_text("[project]\nname = 'x'\n")
        with pytest.raises(ConfigError, match=r"no \[tool.peftfix\] table"):
            resolver(tmp_path, config_file=path)


class TestPerFileIgnores:
    def test_glob_relative_to_config_directory_and_basename(self, tmp_path):
        pyproject(tmp_path, '[tool.peftfix.per-file-ignores]\n"scripts/*" = ["PF3"]\n"conftest.py" = ["PF201"]\n')
        resolved = resolver(tmp_path).for_path(tmp_path)
        assert "PF301" not in resolved.settings_for(tmp_path / "scripts" / "deep" / "train.py").enabled
        assert "PF301" in resolved.settings_for(tmp_path / "src" / "scripts.py").enabled
        assert "PF201" not in resolved.settings_for(tmp_path / "tests" / "conftest.py").enabled
        assert resolved.settings_for(tmp_path / "src" / "train.py").enabled == set(CODES)

    def test_settings_objects_are_shared(self, tmp_path):
        resolved = resolver(tmp_path).for_path(tmp_path)
        assert resolved.settings_for(tmp_path / "a.py") is resolved.settings_for(tmp_path / "b.py")

    def test_exclude_is_anchored_at_the_config_directory(self, tmp_path):
        pyproject(tmp_path, 'exclude = ["legacy/*", "*_pb2.py"]\n')
        exclude = resolver(tmp_path).for_path(tmp_path).exclude
        assert exclude == (f"{tmp_path.as_posix()}/legacy/*", "*_pb2.py")


class TestGlobs:
    @pytest.mark.parametrize(
        "pattern, path, expected",
        [
            ("*.py", "a/b/c.py", True),
            ("tests/*", "tests/a/b.py", True),  # `*` crosses `/`, as in Ruff
            ("tests", "tests/a/b.py", True),  # a directory covers what is beneath it
            ("**/test_*.py", "test_x.py", True),
            ("**/test_*.py", "a/b/test_x.py", True),
            ("src/?.py", "src/a.py", True),
            ("src/[!a].py", "src/a.py", False),
            ("src/[ab].py", "src/b.py", True),
            ("./src/*.py", "src/a.py", True),
            ("docs/*", "src/docs.py", False),
        ],
    )
    def test_matches(self, tmp_path, pattern, path, expected):
        assert pathglob.matches_any(tmp_path / path, tmp_path, [pattern]) is expected

    def test_anchor_escapes_glob_characters_in_the_root(self):
        assert pathglob.anchor("a/*.py", Path("/x[1]")) == "/x[[]1]/a/*.py"
        assert pathglob.anchor("*.py", Path("/x")) == "*.py"
