"""End to end: the `peftfix` command over real files and the real rule engine.

Most tests run the CLI in-process (click's CliRunner, from a temporary working directory); those that need a
real process (stdin bytes, `python -m peftfix`, parallel workers, the exact exit status) use a subprocess.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import textwrap

import jsonschema
import pytest

from peftfix import about, catalog
from peftfix.source import registry

from .conftest import CLEAN_PEFT, RANK_AND_DROPOUT, RANK_AND_DROPOUT_FIXED_PREFIX, run_module, write
from .sarif_schema import SARIF_2_1_0_SUBSET

# Reported at `LoraConfig(` (PF302, column 10) and at the `"dropout"` element (PF301, column 55), line 2.
PF302_LINE = "train.py:2:10: PF302"
PF301_LINE = "train.py:2:55: PF301 [*]"

UNSAFE_REWRAP = textwrap.dedent("""\
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained("base")
    model = PeftModel.from_pretrained(base, "adapter")
    model = get_peft_model(model, LoraConfig(r=8, target_modules=["q_proj"]))
    """)


@pytest.fixture
def project(tmp_path):
    """A working directory with one file that has a safe-fixable and a display-only finding."""
    write(tmp_path / "train.py", RANK_AND_DROPOUT)
    return tmp_path


def codes(result_output: str) -> list[str]:
    return [item["code"] for item in json.loads(result_output)]


def stdout_lines(result) -> list[str]:
    return result.stdout.splitlines()


# --- the default command and the basics ------------------------------------------------------------------------


class TestDefaultCommand:
    def test_bare_paths_mean_check(self, invoke, project):
        implicit = invoke(["train.py"], cwd=project)
        explicit = invoke(["check", "train.py"], cwd=project)
        assert implicit.exit_code == explicit.exit_code == 1
        assert implicit.stdout == explicit.stdout
        assert any(line.startswith(PF302_LINE) for line in stdout_lines(implicit))
        assert PF301_LINE in implicit.stdout

    def test_options_before_paths(self, invoke, project):
        result = invoke(["--format", "json", "train.py"], cwd=project)
        assert result.exit_code == 1 and sorted(codes(result.stdout)) == ["PF301", "PF302"]

    def test_no_path_checks_the_working_directory(self, invoke, project):
        result = invoke([], cwd=project)
        assert result.exit_code == 1 and "train.py:2" in result.stdout

    def test_directory_named_like_a_subcommand(self, invoke, tmp_path):
        write(tmp_path / "rules" / "train.py", RANK_AND_DROPOUT)
        checked = invoke(["check", "rules"], cwd=tmp_path)
        assert checked.exit_code == 1 and "rules/train.py:2:10: PF302" in checked.stdout
        dotted = invoke(["./rules"], cwd=tmp_path)
        assert dotted.exit_code == 1 and "PF302" in dotted.stdout
        listed = invoke(["rules"], cwd=tmp_path)
        assert listed.exit_code == 0 and "PF201" in listed.stdout

    def test_python_dash_m(self, project):
        result = run_module(["train.py"], cwd=project)
        assert result.returncode == 1, result.stderr
        assert PF301_LINE.encode() in result.stdout

    def test_clean_file(self, invoke, tmp_path):
        write(tmp_path / "ok.py", CLEAN_PEFT)
        result = invoke(["ok.py"], cwd=tmp_path)
        assert result.exit_code == 0 and result.stdout == "All checks passed!\n"

    def test_summary(self, invoke, project):
        lines = stdout_lines(invoke(["train.py"], cwd=project))
        assert lines[-2:] == ["Found 2 errors.", "[*] 1 fixable with the `--apply` option."]

    def test_version(self, invoke):
        result = invoke(["--version"])
        assert result.exit_code == 0 and result.stdout.startswith("peftfix ")

    def test_help_mentions_the_default_command(self, invoke):
        result = invoke(["--help"])
        assert result.exit_code == 0 and "peftfix check" in result.stdout


# --- formats ------------------------------------------------------------------------------------------------------


class TestFormats:
    def test_json_shape(self, invoke, project):
        result = invoke(["--format", "json", "train.py"], cwd=project)
        data = json.loads(result.stdout)
        assert result.exit_code == 1 and len(data) == 2
        for item in data:
            assert set(item) == {
                "code",
                "message",
                "filename",
                "severity",
                "location",
                "end_location",
                "fix",
                "details",
            }
            assert item["filename"] == "train.py" and item["severity"] == "error"
            assert item["location"]["row"] == 2 and item["location"]["column"] >= 1
            assert item["end_location"]["row"] >= item["location"]["row"]
        pf301 = next(item for item in data if item["code"] == "PF301")
        assert pf301["location"] == {"row": 2, "column": 55}
        assert pf301["fix"]["applicability"] == "safe" and pf301["fix"]["edits"]
        for edit in pf301["fix"]["edits"]:
            assert edit["location"]["row"] >= 1 and edit["location"]["column"] >= 1
        pf302 = next(item for item in data if item["code"] == "PF302")
        assert pf302["location"] == {"row": 2, "column": 10}
        assert pf302["fix"] is None or pf302["fix"]["applicability"] == "display-only"

    def test_sarif_is_valid_and_documents_every_rule(self, invoke, project):
        result = invoke(["--format", "sarif", "train.py"], cwd=project)
        assert result.exit_code == 1
        log = json.loads(result.stdout)
        jsonschema.validate(log, SARIF_2_1_0_SUBSET)
        run = log["runs"][0]
        rules = run["tool"]["driver"]["rules"]
        assert [rule["id"] for rule in rules] == [info.code for info in catalog.all_codes()]
        for rule in rules:
            assert rule["shortDescription"]["text"] and rule["help"]["text"]
            assert rule["helpUri"] == about.rule_url(rule["id"])
        assert sorted(result["ruleId"] for result in run["results"]) == ["PF301", "PF302"]
        pf301 = next(result for result in run["results"] if result["ruleId"] == "PF301")
        assert rules[pf301["ruleIndex"]]["id"] == "PF301"
        assert pf301["fixes"][0]["artifactChanges"][0]["artifactLocation"]["uri"] == "train.py"

    def test_github(self, invoke, project):
        result = invoke(["--format", "github", "train.py"], cwd=project)
        lines = stdout_lines(result)
        assert result.exit_code == 1 and len(lines) == 2
        assert lines[0].startswith("::error title=peftfix (PF302),file=train.py,line=2,col=10,endLine=")
        assert all("::PF30" in line for line in lines)
        assert lines[0].endswith(f" (see {about.rule_url('PF302')})")

    def test_bad_format_is_a_usage_error(self, invoke, project):
        result = invoke(["--format", "xml", "train.py"], cwd=project)
        assert result.exit_code == 2 and "xml" in result.stderr


# --- rule selection and configuration -------------------------------------------------------------------------


class TestSelection:
    @pytest.mark.parametrize(
        "args, expected",
        [
            (["--select", "PF301"], ["PF301"]),
            (["--select", "PF3"], ["PF301", "PF302"]),
            (["--select", "PF2"], []),
            (["--select", "PF2,PF302"], ["PF302"]),
            (["--select", "PF2", "--select", "PF301"], ["PF301"]),
            (["--ignore", "PF302"], ["PF301"]),
            (["--ignore", "PF3"], []),
            (["--select", "ALL", "--ignore", "PF301"], ["PF302"]),
            (["--select", "PF2", "--extend-select", "PF302"], ["PF302"]),
        ],
    )
    def test_cli_selectors(self, invoke, project, args, expected):
        result = invoke(["--format", "json", *args, "train.py"], cwd=project)
        assert sorted(codes(result.stdout)) == expected
        assert result.exit_code == (1 if expected else 0)

    def test_unknown_code_is_a_usage_error(self, invoke, project):
        result = invoke(["--select", "PF999", "train.py"], cwd=project)
        assert result.exit_code == 2 and "PF999" in result.stderr and "Traceback" not in result.output

    def test_config_select_then_cli_select_wins(self, invoke, project):
        write(project / "pyproject.toml", '[tool.peftfix]\nselect = ["PF301"]\n')
        assert codes(invoke(["--format", "json", "train.py"], cwd=project).stdout) == ["PF301"]
        assert codes(invoke(["--format", "json", "--select", "PF302", "train.py"], cwd=project).stdout) == ["PF302"]

    def test_config_ignore_then_cli_extend_select(self, invoke, project):
        write(project / "pyproject.toml", '[tool.peftfix]\nignore = ["PF3"]\n')
        assert codes(invoke(["--format", "json", "train.py"], cwd=project).stdout) == []
        result = invoke(["--format", "json", "--extend-select", "PF302", "train.py"], cwd=project)
        assert codes(result.stdout) == ["PF302"]

    def test_config_max_rank(self, invoke, project):
        write(project / "pyproject.toml", "[tool.peftfix]\nmax-rank = 2048\n")
        assert codes(invoke(["--format", "json", "train.py"], cwd=project).stdout) == ["PF301"]

    def test_config_found_from_the_checked_path(self, invoke, tmp_path):
        write(tmp_path / "proj" / "pyproject.toml", '[tool.peftfix]\nignore = ["PF302"]\n')
        write(tmp_path / "proj" / "src" / "train.py", RANK_AND_DROPOUT)
        result = invoke(["--format", "json", "proj/src"], cwd=tmp_path)
        assert codes(result.stdout) == ["PF301"]

    def test_explicit_config_file(self, invoke, project):
        write(project / "pyproject.toml", '[tool.peftfix]\nselect = ["PF301"]\n')
        write(project / "ci" / "peftfix.toml", 'select = ["PF302"]\n')
        result = invoke(["--format", "json", "--config", "ci/peftfix.toml", "train.py"], cwd=project)
        assert codes(result.stdout) == ["PF302"]

    def test_per_file_ignores(self, invoke, project):
        write(project / "scripts" / "train.py", RANK_AND_DROPOUT)
        write(project / "pyproject.toml", '[tool.peftfix.per-file-ignores]\n"scripts/*" = ["PF3"]\n')
        result = invoke(["--format", "json", "."], cwd=project)
        assert sorted((item["filename"], item["code"]) for item in json.loads(result.stdout)) == [
            ("train.py", "PF301"),
            ("train.py", "PF302"),
        ]

    def test_exclude(self, invoke, project):
        write(project / "legacy" / "old.py", RANK_AND_DROPOUT)
        write(project / "pyproject.toml", '[tool.peftfix]\nexclude = ["legacy"]\n')
        result = invoke(["--format", "json", "."], cwd=project)
        assert {item["filename"] for item in json.loads(result.stdout)} == {"train.py"}
        # A file named explicitly is checked even when excluded (as in Ruff).
        explicit = invoke(["--format", "json", "legacy/old.py"], cwd=project)
        assert {item["filename"] for item in json.loads(explicit.stdout)} == {"legacy/old.py"}

    def test_gitignore(self, invoke, project):
        write(project / "generated" / "gen.py", RANK_AND_DROPOUT)
        write(project / ".gitignore", "generated/\n")
        assert {item["filename"] for item in json.loads(invoke(["--format", "json", "."], cwd=project).stdout)} == {
            "train.py"
        }
        result = invoke(["--format", "json", "--no-respect-gitignore", "."], cwd=project)
        assert {item["filename"] for item in json.loads(result.stdout)} == {"train.py", "generated/gen.py"}

    @pytest.mark.parametrize(
        "config, fragment",
        [
            ('[tool.peftfix]\nselct = ["PF3"]\n', "unknown key 'selct'"),
            ('[tool.peftfix]\nselect = ["XX"]\n', "unknown rule selector 'XX'"),
            ("[tool.peftfix]\nmax-rank = -1\n", "max-rank"),
            ("[tool.peftfix\n", "invalid TOML"),
            ("[tool.peftfix]\nselect = " + "[" * 50_000 + "]" * 50_000 + "\n", "nested too deeply"),
        ],
    )
    def test_bad_config_exits_2_with_a_message(self, invoke, project, config, fragment):
        write(project / "pyproject.toml", config)
        result = invoke(["train.py"], cwd=project)
        assert result.exit_code == 2
        assert fragment in result.stderr and "pyproject.toml" in result.stderr
        assert "Traceback" not in result.output
        assert (project / "train.py").read_text() == RANK_AND_DROPOUT

    def test_missing_config_file(self, invoke, project):
        result = invoke(["--config", "nope.toml", "train.py"], cwd=project)
        assert result.exit_code == 2 and "nope.toml" in result.stderr


# --- exit codes ----------------------------------------------------------------------------------------------------


class TestExitCodes:
    def test_exit_zero_hides_findings(self, invoke, project):
        result = invoke(["--exit-zero", "train.py"], cwd=project)
        assert result.exit_code == 0 and "PF301" in result.stdout

    def test_missing_path_is_an_error_and_others_are_still_checked(self, invoke, project):
        result = invoke(["--format", "json", "missing.py", "train.py"], cwd=project)
        assert result.exit_code == 2
        assert "missing.py" in result.stderr
        assert sorted(codes(result.stdout)) == ["PF301", "PF302"]

    def test_exit_zero_never_hides_errors(self, invoke, project):
        assert invoke(["--exit-zero", "missing.py", "train.py"], cwd=project).exit_code == 2

    def test_unreadable_file_is_an_error_and_others_are_still_checked(self, invoke, project, monkeypatch):
        write(project / "other.py", RANK_AND_DROPOUT)
        real_open = os.open

        def open_failing_for_other(path, *args, **kwargs):
            if os.fspath(path).endswith("other.py"):
                raise PermissionError(13, "Permission denied")
            return real_open(path, *args, **kwargs)

        # Source files are read through os.open (non-blocking, type-checked: peftfix.files).
        monkeypatch.setattr(os, "open", open_failing_for_other)
        result = invoke(["--format", "json", "other.py", "train.py"], cwd=project)
        assert result.exit_code == 2
        assert "other.py: cannot read: Permission denied" in result.stderr
        assert {item["filename"] for item in json.loads(result.stdout)} == {"train.py"}

    def test_parse_error_is_reported_and_other_files_checked(self, invoke, project):
        write(project / "broken.py", "from peft import LoraConfig\nconfig = LoraConfig(r=\n")
        result = invoke(["--format", "json", "."], cwd=project)
        assert result.exit_code == 1
        assert sorted((item["filename"], item["code"]) for item in json.loads(result.stdout)) == [
            ("broken.py", "PF000"),
            ("train.py", "PF301"),
            ("train.py", "PF302"),
        ]

    def test_internal_error_in_one_file(self, invoke, project, monkeypatch):
        from peftfix.source import engine

        real_check_bytes = engine.check_bytes
        write(project / "other.py", RANK_AND_DROPOUT)

        def crashing(data, filename, settings, fix=False, **options):
            if filename == "other.py":
                raise RuntimeError("boom")
            return real_check_bytes(data, filename, settings, fix, **options)

        monkeypatch.setattr(engine, "check_bytes", crashing)
        result = invoke(["--format", "json", "."], cwd=project)
        assert result.exit_code == 2
        assert "other.py: internal error while checking: RuntimeError: boom" in result.stderr
        assert "Traceback" not in result.output
        assert {item["filename"] for item in json.loads(result.stdout)} == {"train.py"}

    def test_unexpected_exception_exits_2_without_traceback(self, invoke, project, monkeypatch):
        from peftfix.source import runner

        def broken(*args, **kwargs):
            raise RuntimeError("unexpected")

        monkeypatch.setattr(runner, "run_check", broken)
        result = invoke(["train.py"], cwd=project)
        assert result.exit_code == 2
        assert "internal error: RuntimeError: unexpected" in result.stderr and "Traceback" not in result.output

    def test_debug_shows_the_traceback(self, invoke, project, monkeypatch):
        from peftfix.source import runner

        def broken(*args, **kwargs):
            raise RuntimeError("unexpected")

        monkeypatch.setattr(runner, "run_check", broken)
        monkeypatch.setenv("PEFTFIX_DEBUG", "1")
        with pytest.raises(RuntimeError, match="unexpected"):
            invoke(["train.py"], cwd=project)

    def test_real_process_exit_codes(self, project):
        assert run_module(["train.py"], cwd=project).returncode == 1
        assert run_module(["--exit-zero", "train.py"], cwd=project).returncode == 0
        missing = run_module(["nope.py"], cwd=project)
        assert missing.returncode == 2 and b"nope.py" in missing.stderr and b"Traceback" not in missing.stderr
        assert run_module(["--select"], cwd=project).returncode == 2


# --- fixing -------------------------------------------------------------------------------------------------------


class TestApply:
    def test_apply_fixes_in_place_and_reports_what_remains(self, invoke, project):
        target = project / "train.py"
        target.chmod(0o640)
        inode = target.stat().st_ino
        result = invoke(["--apply", "train.py"], cwd=project)
        assert result.exit_code == 1  # PF302 is display-only: it remains
        fixed = target.read_text()
        assert RANK_AND_DROPOUT_FIXED_PREFIX in fixed
        assert stat.S_IMODE(target.stat().st_mode) == 0o640
        assert target.stat().st_ino != inode  # written by rename
        assert sorted(set(os.listdir(project)) - {".peftfix_cache"}) == ["train.py"]  # no temporary file left behind
        assert "Found 2 errors (1 fixed, 1 remaining)." in result.stdout
        assert "PF302" in result.stdout and "PF301" not in result.stdout

    def test_second_apply_changes_nothing(self, invoke, project):
        invoke(["--apply", "train.py"], cwd=project)
        once = (project / "train.py").read_bytes()
        result = invoke(["--apply", "train.py"], cwd=project)
        assert (project / "train.py").read_bytes() == once
        assert "Found 1 error." in result.stdout

    def test_apply_everything_fixed_exits_0(self, invoke, project):
        result = invoke(["--apply", "--select", "PF301", "train.py"], cwd=project)
        assert result.exit_code == 0 and "Found 1 error (1 fixed, 0 remaining)." in result.stdout

    def test_unparsable_file_is_left_untouched(self, invoke, tmp_path):
        broken = "from peft import LoraConfig\nconfig = LoraConfig(r=1024, target_modules=['dropout']\n"
        write(tmp_path / "broken.py", broken)
        result = invoke(["--apply", "broken.py"], cwd=tmp_path)
        assert result.exit_code == 1 and "PF000" in result.stdout
        assert (tmp_path / "broken.py").read_text() == broken

    def test_unsafe_fixes_are_applied_only_when_asked(self, invoke, tmp_path):
        write(tmp_path / "rewrap.py", UNSAFE_REWRAP)
        shown = invoke(["--select", "PF202", "rewrap.py"], cwd=tmp_path)
        assert "PF202" in shown.stdout and "[*]" not in shown.stdout
        assert "hidden fix can be enabled with the `--unsafe-fixes` option" in shown.stdout
        assert "[*]" in invoke(["--select", "PF202", "--unsafe-fixes", "rewrap.py"], cwd=tmp_path).stdout
        invoke(["--apply", "--select", "PF202", "rewrap.py"], cwd=tmp_path)
        assert (tmp_path / "rewrap.py").read_text() == UNSAFE_REWRAP
        invoke(["--apply", "--unsafe-fixes", "--select", "PF202", "rewrap.py"], cwd=tmp_path)
        assert (tmp_path / "rewrap.py").read_text() != UNSAFE_REWRAP

    def test_unsafe_fixes_from_config(self, invoke, tmp_path):
        write(tmp_path / "rewrap.py", UNSAFE_REWRAP)
        write(tmp_path / "pyproject.toml", "[tool.peftfix]\nunsafe-fixes = true\n")
        assert "[*]" in invoke(["--select", "PF202", "rewrap.py"], cwd=tmp_path).stdout
        assert "[*]" not in invoke(["--select", "PF202", "--no-unsafe-fixes", "rewrap.py"], cwd=tmp_path).stdout


class TestDiff:
    def test_diff_writes_nothing_and_prints_a_unified_diff(self, invoke, project):
        before = (project / "train.py").read_bytes()
        mtime = (project / "train.py").stat().st_mtime_ns
        result = invoke(["--diff", "train.py"], cwd=project)
        assert result.exit_code == 1
        assert (project / "train.py").read_bytes() == before
        assert (project / "train.py").stat().st_mtime_ns == mtime
        lines = stdout_lines(result)
        assert lines[:2] == ["--- a/train.py", "+++ b/train.py"]
        assert any(line.startswith("-") and "dropout" in line for line in lines[2:])
        assert any(line.startswith("+") and RANK_AND_DROPOUT_FIXED_PREFIX in line for line in lines)
        assert "Would fix 1 error (1 remaining)." in result.stderr

    @pytest.mark.skipif(shutil.which("patch") is None, reason="needs patch(1)")
    def test_diff_matches_what_apply_does(self, invoke, project, tmp_path_factory):
        diff = invoke(["--diff", "train.py"], cwd=project).stdout
        invoke(["--apply", "train.py"], cwd=project)
        fixed = (project / "train.py").read_text()
        copy = tmp_path_factory.mktemp("patched")
        write(copy / "train.py", RANK_AND_DROPOUT)
        subprocess.run(["patch", "-p1", "-s"], input=diff.encode(), cwd=copy, check=True)
        assert (copy / "train.py").read_text() == fixed

    def test_nothing_to_fix(self, invoke, tmp_path):
        write(tmp_path / "ok.py", CLEAN_PEFT)
        result = invoke(["--diff", "ok.py"], cwd=tmp_path)
        assert result.exit_code == 0 and result.stdout == ""

    def test_apply_and_diff_together_is_a_usage_error(self, invoke, project):
        result = invoke(["--apply", "--diff", "train.py"], cwd=project)
        assert result.exit_code == 2
        assert (project / "train.py").read_text() == RANK_AND_DROPOUT


# --- stdin ----------------------------------------------------------------------------------------------------------


class TestStdin:
    def test_dash_reads_stdin(self, tmp_path):
        result = run_module(["-", "--format", "json"], cwd=tmp_path, input=RANK_AND_DROPOUT.encode())
        assert result.returncode == 1
        assert {item["filename"] for item in json.loads(result.stdout)} == {"-"}

    def test_stdin_filename(self, invoke, tmp_path):
        result = invoke(["--stdin-filename", "pkg/train.py", "--format", "json"], cwd=tmp_path, input=RANK_AND_DROPOUT)
        assert result.exit_code == 1
        assert {item["filename"] for item in json.loads(result.stdout)} == {"pkg/train.py"}

    def test_stdin_filename_governs_per_file_ignores(self, invoke, tmp_path):
        write(tmp_path / "pyproject.toml", '[tool.peftfix.per-file-ignores]\n"pkg/*" = ["PF302"]\n')
        result = invoke(
            ["-", "--stdin-filename", "pkg/train.py", "--format", "json"], cwd=tmp_path, input=RANK_AND_DROPOUT
        )
        assert codes(result.stdout) == ["PF301"]

    def test_apply_writes_fixed_source_to_stdout_and_diagnostics_to_stderr(self, tmp_path):
        result = run_module(
            ["--apply", "-", "--stdin-filename", "train.py"], cwd=tmp_path, input=RANK_AND_DROPOUT.encode()
        )
        assert result.returncode == 1
        assert RANK_AND_DROPOUT_FIXED_PREFIX.encode() in result.stdout
        assert b"PF302" in result.stderr and b"PF302" not in result.stdout
        assert os.listdir(tmp_path) == []

    def test_apply_on_clean_stdin_echoes_it(self, tmp_path):
        result = run_module(["--apply", "-"], cwd=tmp_path, input=CLEAN_PEFT.encode())
        assert result.returncode == 0 and result.stdout == CLEAN_PEFT.encode()

    def test_stdin_diff(self, tmp_path):
        result = run_module(["--diff", "-", "--stdin-filename", "x.py"], cwd=tmp_path, input=RANK_AND_DROPOUT.encode())
        assert result.returncode == 1 and result.stdout.startswith(b"--- a/x.py\n+++ b/x.py\n")

    def test_dash_with_other_paths_is_a_usage_error(self, invoke, project):
        assert invoke(["-", "train.py"], cwd=project, input="").exit_code == 2


# --- many files -----------------------------------------------------------------------------------------------------


def test_parallel_run_matches_sequential(tmp_path):
    """Above the parallel threshold the runner uses worker processes; findings and fixes must not change."""
    count = 24
    for index in range(count):
        write(tmp_path / "pkg" / f"m{index:02}.py", RANK_AND_DROPOUT)
    write(tmp_path / "pkg" / "unrelated.py", "print('no peft here')\n")
    result = run_module(["--format", "json", "pkg"], cwd=tmp_path)
    data = json.loads(result.stdout)
    assert result.returncode == 1, result.stderr
    assert len(data) == 2 * count
    assert [item["filename"] for item in data] == sorted(item["filename"] for item in data)
    applied = run_module(["--apply", "pkg"], cwd=tmp_path)
    assert applied.returncode == 1, applied.stderr
    assert f"Found {2 * count} errors ({count} fixed, {count} remaining).".encode() in applied.stdout
    assert all(
        RANK_AND_DROPOUT_FIXED_PREFIX in (tmp_path / "pkg" / f"m{index:02}.py").read_text() for index in range(count)
    )


# --- rules and explain -------------------------------------------------------------------------------------------------


class TestRulesAndExplain:
    def test_rules_table(self, invoke):
        result = invoke(["rules"])
        assert result.exit_code == 0
        for rule in registry.ALL_RULES:
            assert rule.code in result.stdout and rule.name in result.stdout
        for line in result.stdout.splitlines():
            if "PK001" in line:
                assert "prefix-mismatch" in line and "keys" in line
            if "PV001" in line:
                assert "no-output-delta" in line and "verify" in line

    def test_rules_json_lists_every_code_with_its_command(self, invoke):
        result = invoke(["rules", "--format", "json"])
        data = json.loads(result.stdout)
        checkpoint = [f"PK00{n}" for n in range(7)]
        serving = [f"PS00{n}" for n in range(1, 6)]
        runtime = [f"PV00{n}" for n in range(1, 5)]
        assert [item["code"] for item in data] == registry.all_codes() + checkpoint + serving + runtime
        commands = {item["code"]: item["command"] for item in data}
        assert {commands[code] for code in registry.all_codes()} == {"check"}
        assert {commands[code] for code in checkpoint + serving} == {"keys"}
        assert {commands[code] for code in runtime} == {"verify"}
        for item in data:
            assert set(item) == {"code", "name", "summary", "command", "fix_availability", "default_enabled"}
            assert item["fix_availability"] in {"safe", "unsafe", "sometimes", "display-only", "none"}
            assert isinstance(item["default_enabled"], bool)

    @pytest.mark.parametrize("code", [info.code for info in catalog.all_codes()])
    def test_explain_every_code(self, invoke, code):
        result = invoke(["explain", code.lower()])
        assert result.exit_code == 0
        assert result.stdout.startswith(f"# {code} (")
        for section in ("## What it does", "## Why is this bad?", "## Example"):
            assert section in result.stdout, section
        command = catalog.code_info(code).command
        assert f"Reported by: peftfix {command}" in result.stdout
        assert f"\nDocumentation: {about.rule_url(code)}\n" in result.stdout

    def test_explain_unknown_code(self, invoke):
        result = invoke(["explain", "PF999"])
        assert result.exit_code == 2 and "PF999" in result.stderr and "Traceback" not in result.output


# --- robustness and extension points ------------------------------------------------------------------------------


def test_unwritable_file_is_an_error_and_keeps_its_findings(invoke, project, monkeypatch):
    from peftfix.source import runner

    def failing_write(path, data, expected=None):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(runner, "write_atomically", failing_write)
    result = invoke(["--apply", "train.py"], cwd=project)
    assert result.exit_code == 2
    assert "train.py: cannot write fixes: Permission denied" in result.stderr
    assert (project / "train.py").read_text() == RANK_AND_DROPOUT
    assert "PF301" in result.stdout and "PF302" in result.stdout


def test_dropped_fix_is_reported(invoke, project, monkeypatch):
    from peftfix.source import engine

    real_check_bytes = engine.check_bytes

    def dropping(data, filename, settings, fix=False, **options):
        outcome = real_check_bytes(data, filename, settings, fix, **options)
        outcome.dropped = [item for item in outcome.diagnostics if item.code == "PF302"]
        return outcome

    monkeypatch.setattr(engine, "check_bytes", dropping)
    result = invoke(["--apply", "train.py"], cwd=project)
    assert "warning: train.py:2:10: PF302 fix not applied" in result.stderr


def test_lazy_subcommands_are_listed_and_loaded(invoke, monkeypatch):
    import click

    from peftfix import cli as cli_module

    @click.command()
    def hello() -> None:
        click.echo("hello from a lazy subcommand")

    monkeypatch.setattr(cli_module, "lazy_hello", hello, raising=False)
    monkeypatch.setitem(cli_module.LAZY_SUBCOMMANDS, "hello", "peftfix.cli:lazy_hello")
    assert "hello" in invoke(["--help"]).stdout
    assert invoke(["hello"]).stdout == "hello from a lazy subcommand\n"


def test_an_edit_made_during_apply_is_kept(invoke, project, monkeypatch):
    """The user saves the file while it is being fixed: the fix is not written over the edit (exit 2)."""
    from peftfix.source import engine

    real_check_bytes = engine.check_bytes
    edited = "# edited by the user meanwhile\n" + RANK_AND_DROPOUT

    def editing(data, filename, settings, fix=False, **options):
        outcome = real_check_bytes(data, filename, settings, fix, **options)
        if fix:  # the fixing pass read the file; the user saves before it writes
            (project / "train.py").write_text(edited)
        return outcome

    monkeypatch.setattr(engine, "check_bytes", editing)
    result = invoke(["--apply", "train.py"], cwd=project)
    assert result.exit_code == 2
    assert "train.py: cannot write fixes: changed on disk since it was read" in result.stderr
    assert (project / "train.py").read_text() == edited
    assert "PF301" in result.stdout
