"""Every example in ``examples/`` is reported under the rule it was written for, exactly as written.

The examples are the pitfalls as users write them; a rule that misses one misses the real thing.
This runs the source engine in process (no torch needed), so it is fast and runs without the verify extra.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from peftfix.source.engine import check_bytes
from peftfix.source.registry import default_settings

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

# example -> (codes that must be reported, codes that may also be reported)
EXPECTED: dict[str, tuple[set[str], set[str]]] = {
    "automodel_labels.py": ({"PF101"}, set()),
    "stray_get_peft_model.py": ({"PF201"}, set()),
    # the stage-one adapter is loaded without is_trainable=True and its re-wrapped result is trained
    "rewrap_peft_model.py": ({"PF202", "PF301"}, {"PF203"}),
    "frozen_adapter.py": ({"PF203"}, set()),
    "kbit_prep_after_peft.py": ({"PF204"}, set()),
    "merge_quantized.py": ({"PF205"}, set()),
    "non_linear_targets.py": ({"PF301"}, set()),
    "excessive_rank.py": ({"PF302"}, set()),
    "resize_before_load.py": ({"PF401"}, set()),
}


def test_every_example_is_listed():
    assert sorted(EXPECTED) == sorted(path.name for path in EXAMPLES.glob("*.py"))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_is_valid_python(name):
    ast.parse((EXAMPLES / name).read_text(), filename=name)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_reports_its_rule(name):
    required, allowed = EXPECTED[name]
    outcome = check_bytes((EXAMPLES / name).read_bytes(), name, settings=default_settings())
    found = {diagnostic.code for diagnostic in outcome.diagnostics}
    listing = "\n".join(f"  {d.code} {d.location.row if d.location else '-'}: {d.message}" for d in outcome.diagnostics)
    assert required <= found, f"{name}: missing {sorted(required - found)}; reported:\n{listing}"
    assert found <= required | allowed, f"{name}: unexpected {sorted(found - required - allowed)}; reported:\n{listing}"
