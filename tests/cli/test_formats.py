"""Output formats, fed with hand-built diagnostics (no rule engine needed)."""

from __future__ import annotations

import json

import jsonschema
import pytest

from peftfix import about
from peftfix.diagnostics import Applicability, CodeInfo, Finding, Report
from peftfix.output import FORMAT_NAMES, github, renderer, sarif, text

from .conftest import make_diagnostic, make_fix
from .sarif_schema import SARIF_2_1_0_SUBSET

RULE_DOC = """\
## What it does
Flags `target_modules` entries that are never Linear layers.

## Why is this bad?
PEFT cannot wrap them.

## Example
```python
LoraConfig(target_modules=["dropout"])
```

## Fix safety
Safe.
"""
RULES = [
    CodeInfo("PF301", "non-linear-target-module", "target_modules names a non-Linear module", "safe", True, RULE_DOC),
    CodeInfo("PF302", "excessive-rank", "LoRA rank is very large", "display-only", True, ""),
]


def mixed_report() -> Report:
    """Safe fix, unsafe fix (hidden), display-only finding and a checkpoint finding without a location."""
    return Report.build(
        [
            Finding(make_diagnostic(fix=make_fix()), fix_applicable=True),
            Finding(make_diagnostic(code="PF202", row=5, fix=make_fix(Applicability.UNSAFE)), fix_applicable=False),
            Finding(make_diagnostic(code="PF302", row=2, column=8, message="rank 1024 is large"), fix_applicable=False),
            Finding(
                make_diagnostic(
                    code="PK001",
                    filename="adapter",
                    message="keys need prefix `model.`",
                    located=False,
                    details={"coverage": 1.0},
                ),
                fix_applicable=False,
            ),
        ]
    )


class TestText:
    def test_lines_and_summary(self):
        output = text.render(mixed_report())
        assert output.splitlines() == [
            "adapter: PK001 keys need prefix `model.`",
            "train.py:2:8: PF302 rank 1024 is large",
            "train.py:2:50: PF301 [*] `dropout` is not a Linear layer",
            "train.py:5:50: PF202 `dropout` is not a Linear layer",
            "Found 4 errors.",
            "[*] 1 fixable with the `--apply` option (1 hidden fix can be enabled with the `--unsafe-fixes` option).",
        ]

    def test_no_colour_unless_asked(self):
        assert "\x1b[" not in text.render(mixed_report())
        assert "\x1b[" in text.render(mixed_report(), color=True)

    def test_all_checks_passed(self):
        assert text.render(Report.build([])) == "All checks passed!\n"

    def test_fixed_and_remaining(self):
        report = Report.build(
            [Finding(make_diagnostic(code="PF302"), False)], fixed=[make_diagnostic(), make_diagnostic(row=3)]
        )
        assert text.summary_lines(report) == ["Found 3 errors (2 fixed, 1 remaining)."]

    def test_everything_fixed(self):
        assert text.summary_lines(Report.build([], fixed=[make_diagnostic()])) == [
            "Found 1 error (1 fixed, 0 remaining)."
        ]

    def test_only_hidden_fixes(self):
        report = Report.from_diagnostics([make_diagnostic(fix=make_fix(Applicability.UNSAFE))])
        assert text.summary_lines(report)[-1] == (
            "No fixes available (1 hidden fix can be enabled with the `--unsafe-fixes` option)."
        )

    def test_unsafe_fix_is_marked_fixable_with_unsafe_fixes(self):
        report = Report.from_diagnostics([make_diagnostic(fix=make_fix(Applicability.UNSAFE))], unsafe_fixes=True)
        assert "[*]" in text.render(report)

    def test_display_only_and_editless_fixes_are_never_fixable(self):
        report = Report.from_diagnostics(
            [
                make_diagnostic(fix=make_fix(Applicability.DISPLAY_ONLY)),
                make_diagnostic(row=3, fix=make_fix(with_edits=False)),
            ],
            unsafe_fixes=True,
        )
        assert "[*]" not in text.render(report)
        assert report.fixable_count == 0 and report.hidden_unsafe_fix_count == 0


class TestJson:
    def test_shape(self):
        data = json.loads(renderer("json")(mixed_report()))
        assert isinstance(data, list) and len(data) == 4
        keys = {"code", "message", "filename", "severity", "location", "end_location", "fix", "details"}
        for item in data:
            assert set(item) == keys
            assert isinstance(item["code"], str) and isinstance(item["message"], str)
            assert isinstance(item["details"], dict)
        located = next(item for item in data if item["code"] == "PF301")
        assert located["location"] == {"row": 2, "column": 50}
        assert located["end_location"] == {"row": 2, "column": 59}
        assert located["fix"]["applicability"] == "safe"
        edit = located["fix"]["edits"][0]
        assert set(edit) == {"content", "location", "end_location"}
        assert edit["location"]["row"] >= 1 and edit["location"]["column"] >= 1
        checkpoint = next(item for item in data if item["code"] == "PK001")
        assert checkpoint["location"] is None and checkpoint["end_location"] is None and checkpoint["fix"] is None
        assert checkpoint["details"] == {"coverage": 1.0}

    def test_empty(self):
        assert json.loads(renderer("json")(Report.build([]))) == []


class TestSarif:
    def log(self, report=None):
        return json.loads(sarif.render(report or mixed_report(), rules=RULES))

    def test_valid_against_schema(self):
        jsonschema.validate(self.log(), SARIF_2_1_0_SUBSET)
        jsonschema.validate(self.log(Report.build([])), SARIF_2_1_0_SUBSET)

    def test_schema_subset_rejects_mistakes(self):
        log = self.log()
        log["runs"][0]["results"][1]["locations"][0]["physicalLocation"]["region"]["startcolumn"] = 1
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(log, SARIF_2_1_0_SUBSET)

    def test_header_and_driver(self):
        log = self.log()
        assert log["version"] == "2.1.0" and log["$schema"].startswith("https://")
        (run,) = log["runs"]
        driver = run["tool"]["driver"]
        assert driver["name"] == "peftfix" and driver["version"] and driver["informationUri"].startswith("http")
        assert run["columnKind"] == "unicodeCodePoints"

    def test_rules_carry_documentation(self):
        rule = self.log()["runs"][0]["tool"]["driver"]["rules"][0]
        assert rule["id"] == "PF301" and rule["name"] == "non-linear-target-module"
        assert rule["shortDescription"]["text"] == "target_modules names a non-Linear module"
        assert rule["fullDescription"]["text"] == "Flags `target_modules` entries that are never Linear layers."
        assert "## Why is this bad?" in rule["help"]["markdown"]
        assert rule["defaultConfiguration"] == {"enabled": True, "level": "error"}
        assert rule["helpUri"] == "https://github.com/peftfix/peftfix/blob/main/docs/rules/PF301.md"

    def test_codes_outside_the_rules_get_no_help_link(self):
        rules = self.log()["runs"][0]["tool"]["driver"]["rules"]
        bare = next(rule for rule in rules if rule["id"] == "PK001")  # not in RULES: no page is promised
        assert "helpUri" not in bare

    def test_results_index_their_rules(self):
        run = self.log()["runs"][0]
        rules = run["tool"]["driver"]["rules"]
        for result in run["results"]:
            assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert {rule["id"] for rule in rules} == {"PF301", "PF302", "PF202", "PK001"}

    def test_result_location_and_fix(self):
        results = self.log()["runs"][0]["results"]
        located = next(result for result in results if result["ruleId"] == "PF301")
        assert located["level"] == "error" and located["message"]["text"] == "`dropout` is not a Linear layer"
        physical = located["locations"][0]["physicalLocation"]
        assert physical["artifactLocation"]["uri"] == "train.py"
        assert physical["region"] == {"startLine": 2, "startColumn": 50, "endLine": 2, "endColumn": 59}
        (fix,) = located["fixes"]
        assert fix["description"]["text"] == "Remove `dropout` from `target_modules`"
        (replacement,) = fix["artifactChanges"][0]["replacements"]
        assert replacement == {
            "deletedRegion": {"startLine": 2, "startColumn": 48, "endLine": 2, "endColumn": 59},
            "insertedContent": {"text": ""},
        }

    def test_finding_without_location(self):
        results = self.log()["runs"][0]["results"]
        checkpoint = next(result for result in results if result["ruleId"] == "PK001")
        assert checkpoint["locations"] == [{"physicalLocation": {"artifactLocation": {"uri": "adapter"}}}]
        assert checkpoint["properties"] == {"coverage": 1.0}
        assert "fixes" not in checkpoint

    def test_uris(self, tmp_path):
        assert sarif.artifact_uri("dir with space/a.py") == "dir%20with%20space/a.py"
        assert sarif.artifact_uri(str(tmp_path / "a.py")).startswith("file:///")


class TestGithub:
    def test_lines(self):
        lines = github.render(mixed_report()).splitlines()
        assert lines[0] == (
            "::error title=peftfix (PK001),file=adapter::PK001 keys need prefix `model.`"
            " (see https://github.com/peftfix/peftfix/blob/main/docs/rules/PK001.md)"
        )
        assert lines[2] == (
            "::error title=peftfix (PF301),file=train.py,line=2,col=50,endLine=2,endColumn=59::"
            f"PF301 `dropout` is not a Linear layer (see {about.rule_url('PF301')})"
        )

    def test_escaping(self):
        diagnostic = make_diagnostic(message="100% broken\r\nnext: a, b", filename="we:ird,name.py")
        line = github.format_diagnostic(diagnostic)
        assert "file=we%3Aird%2Cname.py" in line
        assert line.endswith(f"::PF301 100%25 broken%0D%0Anext: a, b (see {about.rule_url('PF301')})")
        assert "\n" not in line

    def test_warning_severity(self):
        diagnostic = make_diagnostic()
        diagnostic.severity = "warning"
        assert github.format_diagnostic(diagnostic).startswith("::warning ")


@pytest.mark.parametrize("format_name", FORMAT_NAMES)
def test_every_format_renders_findings_without_location(format_name):
    render = renderer(format_name)
    report = Report.build([Finding(make_diagnostic(code="PV001", filename="adapter", located=False), False)])
    output = render(report, rules=RULES) if format_name == "sarif" else render(report)
    assert "PV001" in output


def test_unknown_format():
    with pytest.raises(ValueError, match="unknown output format"):
        renderer("xml")
