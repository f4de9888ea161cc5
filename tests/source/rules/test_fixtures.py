"""Fixture pairs: ``tests/fixtures/<rule-name>/<case>.in.py`` must become ``<case>.out.py`` under ``--apply``.

A pair's directory is the rule's name (``stray-get-peft-model``); cases whose name starts with ``unsafe_`` are
fixed with unsafe fixes enabled. Collected automatically, like TorchFix's tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from peftfix.source.engine import check_bytes, decode
from peftfix.source.fixer import parses
from peftfix.source.registry import ALL_RULES
from peftfix.source.settings import Settings

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
RULES_BY_NAME = {rule.name: rule for rule in ALL_RULES}
PAIRS = sorted(FIXTURES.glob("*/*.in.py"))


def _settings(case: Path) -> Settings:
    codes = frozenset(rule.code for rule in ALL_RULES)
    return Settings(enabled=codes, unsafe_fixes=case.name.startswith("unsafe_"))


@pytest.mark.parametrize("case", PAIRS, ids=lambda p: f"{p.parent.name}/{p.name[:-6]}")
def test_fixture_pair(case: Path):
    rule = RULES_BY_NAME[case.parent.name]
    expected = case.with_name(case.name[: -len(".in.py")] + ".out.py").read_bytes()
    original = case.read_bytes()
    outcome = check_bytes(original, str(case), _settings(case), fix=True)
    assert any(d.code == rule.code for d in outcome.fixed), "the rule's fix was not applied"
    assert outcome.new_bytes == expected
    assert parses(decode(expected)[0])
    again = check_bytes(expected, str(case), _settings(case), fix=True)
    assert again.new_bytes is None, "a second --apply changed the file"


def test_every_fixable_rule_has_fixture_pairs():
    fixable = {rule.name for rule in ALL_RULES if rule.fix_availability in ("safe", "unsafe", "sometimes")}
    covered = {path.parent.name for path in PAIRS}
    assert fixable <= covered, f"no fixture pairs for {sorted(fixable - covered)}"
