"""Every rule's own VALID/INVALID examples (declared in the rule's module), collected automatically."""

from __future__ import annotations

import pytest

from peftfix.source.engine import check_source, fix_source
from peftfix.source.fixer import parses
from peftfix.source.registry import ALL_RULES
from peftfix.source.settings import Settings

EVERYTHING = Settings(enabled=frozenset(rule.code for rule in ALL_RULES), unsafe_fixes=True)


def _cases(kind: str) -> list:
    return [
        pytest.param(rule, case, id=f"{rule.code}-{kind.lower()}-{index}")
        for rule in ALL_RULES
        for index, case in enumerate(getattr(rule, kind))
    ]


@pytest.mark.parametrize(("rule", "source"), _cases("VALID"))
def test_valid_example_is_not_reported(rule, source):
    found = [d for d in check_source(source, "example.py", EVERYTHING) if d.code == rule.code]
    assert found == []


@pytest.mark.parametrize(("rule", "case"), _cases("INVALID"))
def test_invalid_example_is_reported(rule, case):
    found = [d for d in check_source(case.code, "example.py", EVERYTHING) if d.code == rule.code]
    assert found, f"{rule.code} not reported"
    for diagnostic in found:
        assert diagnostic.message.strip()
        assert diagnostic.location.row >= 1 and diagnostic.location.column >= 1


@pytest.mark.parametrize(("rule", "case"), _cases("INVALID"))
def test_invalid_example_fix(rule, case):
    outcome = fix_source(case.code, "example.py", EVERYTHING)
    if not parses(case.code):  # PF000: a file that cannot be parsed is never modified
        assert outcome.new_source is None and [d.code for d in outcome.diagnostics] == ["PF000"]
        return
    result = outcome.new_source if outcome.new_source is not None else case.code
    if case.fixed is not None:
        assert result == case.fixed
        assert not [d for d in outcome.diagnostics if d.code == rule.code]
    assert parses(result)
    assert outcome.dropped == []
    # Idempotent: fixing the fixed text changes nothing.
    again = fix_source(result, "example.py", EVERYTHING)
    assert again.new_source is None


@pytest.mark.parametrize("rule", ALL_RULES, ids=lambda rule: rule.code)
def test_rule_has_enough_examples_and_docs(rule):
    assert len(rule.VALID) >= 6 and len(rule.INVALID) >= 6
    for section in ("## What it does", "## Why is this bad?", "## Example", "## Fix safety"):
        assert section in rule.__doc__
