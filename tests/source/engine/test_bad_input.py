"""Bad input at the engine level: nothing crashes, nothing undecodable or unparsable is ever
rewritten, and the fixer's safety net drops a fix that would break the file while the other fixes still apply.

``check_bytes`` is what the CLI calls for every file; ``fix_until_stable`` is exercised directly with fake lint
functions so the safety net is tested independently of any rule.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Optional

import pytest

import peftfix
from peftfix.diagnostics import Applicability, Diagnostic, Edit, Fix, Location
from peftfix.source.engine import FileOutcome, check_bytes, fix_source
from peftfix.source.fixer import MAX_PASSES, fix_until_stable, parses
from peftfix.source.registry import ALL_RULES, default_settings
from peftfix.source.rules.pf203_frozen_adapter_training import FrozenAdapterTraining
from peftfix.source.settings import Settings

DEFAULT = default_settings()
EVERYTHING = Settings(enabled=frozenset(rule.code for rule in ALL_RULES), unsafe_fixes=True)
WITHOUT_PF000 = Settings(enabled=frozenset(rule.code for rule in ALL_RULES if rule.code != "PF000"))

# A file with a real, safely fixable finding (PF203), used to prove that bad bytes around it are never fixed.
FIXABLE = (
    b"from peft import PeftModel\n"
    b"from transformers import Trainer\n"
    b'model = PeftModel.from_pretrained(base, "adapter")\n'
    b"Trainer(model=model).train()\n"
)


def _only_pf000(outcome: FileOutcome) -> Diagnostic:
    assert [d.code for d in outcome.diagnostics] == ["PF000"], outcome.diagnostics
    (diagnostic,) = outcome.diagnostics
    assert diagnostic.message.strip()
    assert diagnostic.location is not None
    assert diagnostic.location.row >= 1 and diagnostic.location.column >= 1
    assert diagnostic.fix is None
    return diagnostic


# ------------------------------------------------------------------------------------------- syntax errors

SYNTAX_ERRORS = {
    # name: (source, row, column or None); rows and columns are where CPython reports the error.
    "bad-parameter-list": (b"import peft\n\ndef f(:\n    pass\n", 3, 7),
    "unclosed-call": (b"from peft import get_peft_model\nmodel = get_peft_model(model, cfg\n", 2, None),
    "unexpected-indent": (b"import peft\nx = 1\n  y = 2\n", 3, None),
    "missing-block": (b"import peft\nif x:\npass\n", 3, None),
    "unterminated-string": (b"import peft\nprint('a' 'b\n", 2, 11),
    "error-after-a-finding": (FIXABLE + b"def broken(\n", 5, None),
}


@pytest.mark.parametrize("name", sorted(SYNTAX_ERRORS))
@pytest.mark.parametrize("fix", [False, True], ids=["check", "fix"])
def test_syntax_error_is_one_pf000_at_the_error(name, fix):
    data, row, column = SYNTAX_ERRORS[name]
    outcome = check_bytes(data, "broken.py", DEFAULT, fix=fix)
    diagnostic = _only_pf000(outcome)
    assert diagnostic.location.row == row, diagnostic
    if column is not None:
        assert diagnostic.location.column == column, diagnostic
    assert outcome.new_bytes is None and outcome.new_source is None
    assert outcome.fixed == [] and outcome.dropped == []


def test_syntax_error_message_says_what_is_wrong():
    # Not just "Syntax Error @ 2:1.": the parser's reason must reach the user.
    data, _, _ = SYNTAX_ERRORS["unterminated-string"]
    diagnostic = _only_pf000(check_bytes(data, "broken.py", DEFAULT))
    assert "unterminated string" in diagnostic.message.lower(), diagnostic.message


def test_syntax_error_never_reports_rule_findings():
    # The file has a PF203 pattern, but nothing can be trusted in a file that does not parse.
    outcome = check_bytes(FIXABLE + b"def broken(\n", "broken.py", EVERYTHING, fix=True)
    assert [d.code for d in outcome.diagnostics] == ["PF000"]


# ---------------------------------------------------------------------------------------- undecodable bytes


@pytest.mark.parametrize(
    ("data", "byte", "row"),
    [
        pytest.param(b"import peft\nx = 1\ny = '\xff'\n", "0xff", 3, id="line-3"),
        pytest.param(b"# caf\xe9\nimport peft\n", "0xe9", 1, id="line-1"),  # inside the cookie-detection lines
        pytest.param(b"import peft\n# na\xefve\n" + FIXABLE, "0xef", 2, id="line-2-before-a-finding"),
        pytest.param(FIXABLE + b"# \x80\n", "0x80", 5, id="after-a-finding"),
    ],
)
@pytest.mark.parametrize("fix", [False, True], ids=["check", "fix"])
def test_non_utf8_without_cookie_names_the_byte(data, byte, row, fix):
    outcome = check_bytes(data, "latin.py", DEFAULT, fix=fix)
    diagnostic = _only_pf000(outcome)
    assert byte in diagnostic.message.lower(), diagnostic.message
    assert diagnostic.location.row == row
    assert outcome.new_bytes is None and outcome.source is None


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00", id="elf"),
        pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", id="png"),
        pytest.param(FIXABLE + b"x = '\x00'\n", id="nul-in-python"),
        pytest.param(FIXABLE.decode().encode("utf-16"), id="utf-16"),
    ],
)
@pytest.mark.parametrize("fix", [False, True], ids=["check", "fix"])
def test_binary_is_pf000(data, fix):
    outcome = check_bytes(data, "blob.py", DEFAULT, fix=fix)
    _only_pf000(outcome)
    assert outcome.new_bytes is None


# Text that libcst accepts but CPython (3.10-3.13) rejects: never "fixed", never an internal error.
REJECTED_BY_CPYTHON = {
    "python2-except": FIXABLE + b"try:\n    pass\nexcept Exception, e:\n    pass\n",
    "non-ascii-bytes-literal": FIXABLE + "x = b'\u00e9'\n".encode(),
    "truncated-hex-escape": FIXABLE + b"x = '\\x4'\n",
    "unknown-unicode-name": FIXABLE + b"x = '\\N{NO SUCH NAME}'\n",
}


@pytest.mark.parametrize("name", sorted(REJECTED_BY_CPYTHON))
@pytest.mark.parametrize("fix", [False, True], ids=["check", "fix"])
def test_what_cpython_rejects_is_pf000_and_never_modified(name, fix):
    data = REJECTED_BY_CPYTHON[name]
    with pytest.raises(SyntaxError):
        compile(data, "x.py", "exec")
    outcome = check_bytes(data, "bad.py", DEFAULT, fix=fix)
    diagnostic = _only_pf000(outcome)
    assert "syntax error" in diagnostic.message
    assert outcome.new_bytes is None


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\n\n   \n", id="blank-lines"),
        pytest.param(b"\xef\xbb\xbf", id="bom-only"),
        pytest.param(b"# just a comment", id="comment-no-newline"),
    ],
)
@pytest.mark.parametrize("fix", [False, True], ids=["check", "fix"])
def test_empty_file_has_no_findings(data, fix):
    outcome = check_bytes(data, "empty.py", EVERYTHING, fix=fix)
    assert outcome.diagnostics == []
    assert outcome.new_bytes is None


@pytest.mark.parametrize(
    ("data", "codec"),
    [
        pytest.param(b"# -*- coding: klingon -*-\n" + FIXABLE, "klingon", id="line-1"),
        pytest.param(
            b"#!/usr/bin/env python\n# vim: set fileencoding=no-such-codec :\n" + FIXABLE, "no-such-codec", id="line-2"
        ),
    ],
)
@pytest.mark.parametrize("fix", [False, True], ids=["check", "fix"])
def test_unknown_codec_cookie_is_pf000(data, codec, fix):
    outcome = check_bytes(data, "cookie.py", EVERYTHING, fix=fix)
    diagnostic = _only_pf000(outcome)
    assert codec in diagnostic.message
    assert outcome.new_bytes is None


def test_bom_contradicting_cookie_is_pf000():
    # Python itself refuses a UTF-8 BOM followed by a latin-1 cookie.
    outcome = check_bytes(b"\xef\xbb\xbf# coding: latin-1\n" + FIXABLE, "bom.py", EVERYTHING, fix=True)
    _only_pf000(outcome)
    assert outcome.new_bytes is None


BAD_INPUTS = [
    pytest.param(SYNTAX_ERRORS["unclosed-call"][0], id="syntax"),
    pytest.param(FIXABLE + b"y = '\xff'\n", id="not-utf8"),
    pytest.param(FIXABLE + b"\x00", id="binary"),
    pytest.param(b"# coding: klingon\n" + FIXABLE, id="unknown-codec"),
]


@pytest.mark.parametrize("data", BAD_INPUTS)
def test_fix_never_returns_bytes_for_bad_input(data):
    for settings in (DEFAULT, EVERYTHING, WITHOUT_PF000):
        outcome = check_bytes(data, "bad.py", settings, fix=True)
        assert outcome.new_bytes is None and outcome.new_source is None
        assert outcome.fixed == [] and outcome.dropped == []


@pytest.mark.parametrize("data", BAD_INPUTS)
def test_pf000_not_selected_means_silence_not_a_crash(data):
    outcome = check_bytes(data, "bad.py", WITHOUT_PF000, fix=False)
    assert outcome.diagnostics == []


# ------------------------------------------------------------------- valid but unusual or extreme files


def test_lone_cr_line_endings():
    # Old Mac line endings: Python and libcst both accept them; findings and fixes must land on the right text.
    data = FIXABLE.replace(b"\n", b"\r")
    found = check_bytes(data, "mac.py", DEFAULT).diagnostics
    assert [(d.code, d.location) for d in found] == [("PF203", Location(3, 9))]
    outcome = check_bytes(data, "mac.py", DEFAULT, fix=True)
    assert outcome.new_bytes == (
        b"from peft import PeftModel\rfrom transformers import Trainer\r"
        b'model = PeftModel.from_pretrained(base, "adapter", is_trainable=True)\rTrainer(model=model).train()\r'
    )


def test_stray_lone_cr_does_not_shift_fixes():
    # One stray CR inside a CRLF file: the fix must still edit the load call, not a neighbouring line.
    data = FIXABLE.replace(b"\n", b"\r\n").replace(
        b"from transformers import Trainer\r\n", b"x = 1\ry = 2\r\nfrom transformers import Trainer\r\n"
    )
    outcome = check_bytes(data, "mixed.py", DEFAULT, fix=True)
    assert outcome.dropped == []
    assert outcome.new_bytes == data.replace(b'"adapter")', b'"adapter", is_trainable=True)')


def test_no_trailing_newline():
    outcome = check_bytes(FIXABLE.rstrip(b"\n"), "eof.py", DEFAULT, fix=True)
    assert outcome.new_bytes == FIXABLE.rstrip(b"\n").replace(b'"adapter")', b'"adapter", is_trainable=True)')


def _isolated(data: bytes, fix: bool, timeout: int = 120) -> dict:
    """check_bytes in a child process: a parser that overflows its stack must not take the test run down."""
    script = (
        "import json, sys\n"
        "from peftfix.source.engine import check_bytes\n"
        "from peftfix.source.registry import default_settings\n"
        "data = sys.stdin.buffer.read()\n"
        "try:\n"
        f"    o = check_bytes(data, 'deep.py', default_settings(), fix={fix!r})\n"
        "    print(json.dumps({'codes': [d.code for d in o.diagnostics], 'new_bytes': o.new_bytes is not None}))\n"
        "except BaseException as e:\n"
        "    print(json.dumps({'error': f'{type(e).__name__}: {e}'}))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(peftfix.__file__).resolve().parent.parent))
    proc = subprocess.run([sys.executable, "-c", script], input=data, capture_output=True, timeout=timeout, env=env)
    assert proc.returncode == 0, f"the engine died (exit {proc.returncode}): {proc.stderr[-500:]!r}"
    lines = proc.stdout.decode().strip().splitlines()
    assert lines, proc.stderr[-500:]
    return json.loads(lines[-1])


DEEP_BUT_VALID = {
    # CPython compiles all of these.
    "nested-lists-200": b"import peft\nx = " + b"[" * 200 + b"]" * 200 + b"\n",
    "string-concatenation-400": b"import peft\nPROMPT = " + b" + ".join([b"'line\\n'"] * 400) + b"\n",
    "sum-chain-2000": b"import peft\ntotal = " + b" + ".join([b"1"] * 2000) + b"\n",
}


@pytest.mark.parametrize("name", sorted(DEEP_BUT_VALID))
@pytest.mark.parametrize("fix", [False, True], ids=["check", "fix"])
def test_deep_but_valid_file_does_not_crash(name, fix):
    result = _isolated(DEEP_BUT_VALID[name], fix)
    assert "error" not in result, result["error"]
    assert set(result["codes"]) <= {"PF000"}  # checked (nothing to find) or reported as uncheckable
    assert result["new_bytes"] is False


# What CPython parses is analysed, however deep: no PF000 (the analysis runs on a large stack).
DEEP_AND_CHECKED = {
    "nested-lists-190": b"import peft\nx = " + b"[" * 190 + b"]" * 190 + b"\n",
    "string-concatenation-20000": b"import peft\nPROMPT = " + b" + ".join([b"'line\\n'"] * 20000) + b"\n",
    "call-chain-2000": b"from transformers import AutoModelForCausalLM\nmodel = AutoModelForCausalLM.from_pretrained('m')"
    + b".to('cpu')" * 2000
    + b"\n",
}


@pytest.mark.parametrize("name", sorted(DEEP_AND_CHECKED))
@pytest.mark.parametrize("fix", [False, True], ids=["check", "fix"])
def test_deep_valid_file_is_checked_not_pf000(name, fix):
    result = _isolated(DEEP_AND_CHECKED[name], fix)
    assert result == {"codes": [], "new_bytes": False}


@pytest.mark.parametrize("fix", [False, True], ids=["check", "fix"])
def test_finding_in_a_file_too_deep_for_libcst_keeps_its_finding(fix):
    """A 20,000-term concatenation and a pitfall: the finding is reported (check with edits, and --apply) in
    seconds, its fix dropped because libcst would take minutes to parse the file; the file is not modified."""
    data = (
        b"from peft import PeftModel, get_peft_model\nPROMPT = "
        + b" + ".join([b"'line\\n'"] * 20000)
        + b"\nmodel = get_peft_model(base, config)\nmodel = PeftModel.from_pretrained(model, 'adapter')\n"
    )
    result = _isolated(data, fix, timeout=60)
    assert result == {"codes": ["PF201"], "new_bytes": False}


@pytest.mark.parametrize("fix", [False, True], ids=["check", "fix"])
def test_too_deeply_nested_is_pf000(fix):
    # CPython: "SyntaxError: too many nested parentheses".
    result = _isolated(b"import peft\nx = " + b"(" * 3000 + b"1" + b")" * 3000 + b"\n", fix)
    assert result == {"codes": ["PF000"], "new_bytes": False}


# ----------------------------------------------------------------------------- the fixer's safety net


def _location(source: str, offset: int) -> Location:
    before = source[:offset]
    row = before.count("\n") + 1
    return Location(row, offset - (before.rfind("\n") + 1) + 1)


def _diagnostic(
    source: str,
    code: str,
    start: int,
    end: int,
    content: str,
    message: Optional[str] = None,
    applicability: Applicability = Applicability.SAFE,
) -> Diagnostic:
    edit = Edit(start, end, content, _location(source, start), _location(source, end))
    return Diagnostic(
        code=code,
        message=message or f"{code} finding",
        filename="fake.py",
        location=edit.location,
        end_location=edit.end_location,
        fix=Fix(applicability, f"fix {code}", (edit,)),
    )


class FakeLint:
    """A lint function built from ``rules``: each maps the current text to zero or more diagnostics."""

    def __init__(self, *rules: Callable[[str], list]):
        self.rules = rules
        self.calls = 0

    def __call__(self, source: str) -> list[Diagnostic]:
        self.calls += 1
        return [d for rule in self.rules for d in rule(source)]


def rename_x(source: str) -> list:
    """A good fix: ``x = ...`` becomes ``renamed = ...``."""
    at = source.find("x = ")
    return [] if at < 0 else [_diagnostic(source, "PF900", at, at + 1, "renamed")]


def delete_closing_paren(source: str) -> list:
    """A broken fix: delete the closing parenthesis of ``g(2)``."""
    at = source.find("g(2)")
    return [] if at < 0 else [_diagnostic(source, "PF901", at + 3, at + 4, "")]


def test_broken_fix_is_dropped_and_the_good_one_applies():
    source = "x = f(1)\ny = g(2)\n"
    lint = FakeLint(rename_x, delete_closing_paren)
    result = fix_until_stable(source, lint, unsafe_fixes=False)
    assert result.source == "renamed = f(1)\ny = g(2)\n"
    assert [d.code for d in result.fixed] == ["PF900"]
    assert [d.code for d in result.dropped] == ["PF901"]
    assert [d.code for d in result.remaining] == ["PF901"]  # still reported, just not fixed
    assert parses(result.source)


def test_broken_fix_is_dropped_even_when_alone():
    source = "y = g(2)\n"
    result = fix_until_stable(source, FakeLint(delete_closing_paren), unsafe_fixes=False)
    assert result.source == source
    assert result.fixed == []
    assert [d.code for d in result.dropped] == ["PF901"]


def test_fixes_fine_alone_but_broken_together():
    # Deleting either statement is fine; deleting both leaves `if a:` without a body.
    source = "if a:\n    x = 1\n    y = 2\nz = 3\n"

    def delete_line(text: str, code: str):
        def rule(current: str) -> list:
            at = current.find(text)
            return [] if at < 0 else [_diagnostic(current, code, at, at + len(text), "")]

        return rule

    lint = FakeLint(delete_line("    x = 1\n", "PF910"), delete_line("    y = 2\n", "PF911"))
    result = fix_until_stable(source, lint, unsafe_fixes=False)
    assert parses(result.source)
    assert result.source == "if a:\n    y = 2\nz = 3\n"
    assert [d.code for d in result.fixed] == ["PF910"]
    assert [d.code for d in result.dropped] == ["PF911"]


def test_fix_loop_terminates_on_a_fix_that_never_settles():
    # A fix that always finds something more to do (like two rules undoing each other) must stop.
    def always(source: str) -> list:
        return [_diagnostic(source, "PF920", 0, 0, "# again\n")]

    lint = FakeLint(always)
    result = fix_until_stable("x = 1\n", lint, unsafe_fixes=False)
    assert len(result.fixed) == MAX_PASSES
    assert result.source == "# again\n" * MAX_PASSES + "x = 1\n"
    assert lint.calls <= MAX_PASSES + 1


def test_fix_loop_stops_on_a_fix_that_changes_nothing():
    def identity(source: str) -> list:
        return [_diagnostic(source, "PF921", 0, 1, source[0])]

    lint = FakeLint(identity)
    result = fix_until_stable("x = 1\n", lint, unsafe_fixes=False)
    assert result.source == "x = 1\n"
    assert lint.calls <= 2


def test_only_applicable_fixes_are_applied():
    def findings(source: str) -> list:
        found = []
        for word, code, applicability in (
            ("aaa", "PF930", Applicability.UNSAFE),
            ("bbb", "PF931", Applicability.DISPLAY_ONLY),
            ("ccc", "PF932", Applicability.SAFE),
        ):
            at = source.find(word)
            if at >= 0:
                found.append(_diagnostic(source, code, at, at + 3, word.upper(), applicability=applicability))
        return found

    source = "aaa = bbb = ccc = 1\n"
    assert fix_until_stable(source, FakeLint(findings), unsafe_fixes=False).source == "aaa = bbb = CCC = 1\n"
    assert fix_until_stable(source, FakeLint(findings), unsafe_fixes=True).source == "AAA = bbb = CCC = 1\n"


def test_second_fix_run_is_a_no_op_with_the_fake_lint():
    source = "x = f(1)\ny = g(2)\n"
    first = fix_until_stable(source, FakeLint(rename_x, delete_closing_paren), unsafe_fixes=False)
    second = fix_until_stable(first.source, FakeLint(rename_x, delete_closing_paren), unsafe_fixes=False)
    assert second.source == first.source
    assert second.fixed == []


# ------------------------------------------------------------- the safety net with a real, sabotaged rule


def _broken_pf203_fix(self, wrap):
    """PF203's fix, sabotaged: it deletes the load call's closing parenthesis."""

    def build(context):
        _, end = wrap.module.span(wrap.node)
        return [context.cst.edit(end - 1, end, "")]

    return self.plan("Add `is_trainable=True`", Applicability.SAFE, build)


SABOTAGED = b"""from peft import LoraConfig, PeftModel
from transformers import Trainer

config = LoraConfig(target_modules=["q_proj", "v_proj", "dropout"])
model = PeftModel.from_pretrained(base, "adapter")
Trainer(model=model).train()
"""


def test_real_rule_with_broken_fix_is_dropped_and_others_apply(monkeypatch):
    monkeypatch.setattr(FrozenAdapterTraining, "_fix", _broken_pf203_fix)
    outcome = check_bytes(SABOTAGED, "train.py", DEFAULT, fix=True)
    assert outcome.new_bytes == SABOTAGED.replace(b', "dropout"]', b"]")
    assert [d.code for d in outcome.fixed] == ["PF301"]
    assert [d.code for d in outcome.dropped] == ["PF203"]
    assert [d.code for d in outcome.diagnostics] == ["PF203"]
    assert parses(outcome.new_source)
    # And the original file is what the outcome says it was.
    assert outcome.source == SABOTAGED.decode()


def test_dropped_fix_is_reported_once_even_when_other_fixes_move_it(monkeypatch):
    # PF201's fix deletes a line above the sabotaged PF203 load, so PF203's message ("line N") changes between
    # passes; the broken fix must still be dropped once, not retried and reported again on every pass.
    monkeypatch.setattr(FrozenAdapterTraining, "_fix", _broken_pf203_fix)
    data = b"""from peft import LoraConfig, PeftModel, get_peft_model
from transformers import Trainer

config = LoraConfig(target_modules=["q_proj", "v_proj", "dropout"])
get_peft_model(base, config)
model = PeftModel.from_pretrained(base, "adapter")
Trainer(model=model).train()
"""
    outcome = check_bytes(data, "train.py", DEFAULT, fix=True)
    assert (
        outcome.new_bytes
        == b"""from peft import LoraConfig, PeftModel
from transformers import Trainer

config = LoraConfig(target_modules=["q_proj", "v_proj"])
model = PeftModel.from_pretrained(base, "adapter")
Trainer(model=model).train()
"""
    )
    assert sorted(d.code for d in outcome.fixed) == ["PF201", "PF301"]
    assert [d.code for d in outcome.dropped] == ["PF203"]


def test_fix_loop_terminates_with_a_real_rule_that_never_settles(monkeypatch):
    # A sabotaged PF203 fix that never resolves its finding (it adds a space before the load call's closing
    # parenthesis): the loop applies it once per pass and stops after MAX_PASSES.
    def restless_fix(self, wrap):
        def build(context):
            _, end = wrap.module.span(wrap.node)
            return [context.cst.edit(end - 1, end - 1, " ")]

        return self.plan("restless", Applicability.SAFE, build)

    monkeypatch.setattr(FrozenAdapterTraining, "_fix", restless_fix)
    outcome = check_bytes(FIXABLE, "train.py", DEFAULT, fix=True)
    assert len(outcome.fixed) == MAX_PASSES
    assert outcome.new_bytes == FIXABLE.replace(b'"adapter")', b'"adapter"' + b" " * MAX_PASSES + b")")
    assert [d.code for d in outcome.diagnostics] == ["PF203"]


# --------------------------------------------------------------------------------------- idempotence

IDEMPOTENCE = {
    "several-rules": b"""from transformers import AutoModel, AutoTokenizer
from peft import LoraConfig, PeftModel
from trl import SFTTrainer

tokenizer = AutoTokenizer.from_pretrained("adapter")
model = AutoModel.from_pretrained("base")
model = PeftModel.from_pretrained(model, "adapter")
config = LoraConfig(target_modules=["q_proj", "lora_dropout"])
SFTTrainer(model=model, train_dataset=data).train()
""",
    "crlf-bom": b"\xef\xbb\xbf" + FIXABLE.replace(b"\n", b"\r\n"),
    "latin-1": b"# -*- coding: latin-1 -*-\n# \xe9t\xe9\n" + FIXABLE,
}


@pytest.mark.parametrize("name", sorted(IDEMPOTENCE))
def test_second_apply_changes_nothing(name):
    data = IDEMPOTENCE[name]
    first = check_bytes(data, "train.py", EVERYTHING, fix=True)
    assert first.new_bytes is not None and first.fixed
    assert first.dropped == []
    second = check_bytes(first.new_bytes, "train.py", EVERYTHING, fix=True)
    assert second.new_bytes is None
    assert second.fixed == []
    # What remains to report is the same whether or not the fixed file is checked again.
    assert [d.code for d in check_bytes(first.new_bytes, "train.py", EVERYTHING).diagnostics] == [
        d.code for d in first.diagnostics
    ]


def test_fixed_bytes_keep_bom_newlines_and_encoding():
    first = check_bytes(IDEMPOTENCE["crlf-bom"], "train.py", DEFAULT, fix=True)
    assert first.new_bytes.startswith(b"\xef\xbb\xbf")
    assert first.new_bytes.count(b"\r\n") == first.new_bytes.count(b"\n")
    latin = check_bytes(IDEMPOTENCE["latin-1"], "train.py", DEFAULT, fix=True)
    assert latin.new_bytes.startswith(b"# -*- coding: latin-1 -*-\n# \xe9t\xe9\n")


def test_fix_source_on_unparsable_text_returns_it_unchanged():
    outcome = fix_source("def f(:\n", "broken.py", EVERYTHING)
    assert outcome.new_source is None
    assert [d.code for d in outcome.diagnostics] == ["PF000"]
