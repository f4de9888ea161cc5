"""A bounded, seeded fuzz test of the source wing: the example scripts (each with its pitfalls), mutated the ways
hand edits and bad merges break files, go through check and --apply. Nothing may raise; a fixed file must parse;
fixing the fixed file again must change nothing; a file CPython rejects is PF000 and untouched."""

from __future__ import annotations

import random
import time
from pathlib import Path

from peftfix.source.engine import check_bytes
from peftfix.source.fixer import parses
from peftfix.source.registry import ALL_RULES
from peftfix.source.settings import Settings

EXAMPLES = sorted((Path(__file__).resolve().parents[3] / "examples").glob("*.py"))
EVERYTHING = Settings(enabled=frozenset(rule.code for rule in ALL_RULES), unsafe_fixes=True)
SEED = 20261203
MAX_CASES = 3000
BUDGET_S = 45.0  # about a minute on a slow CI machine, whatever MAX_CASES allows
SNIPPETS = [
    "model = PeftModel.from_pretrained(model, 'x')",
    "model = get_peft_model(model, config)",
    "model.merge_and_unload()",
    "tokenizer.add_tokens(['<x>'])",
    "trainer.train()",
    "if args.resume:",
    "try:",
    "except Exception:",
    "    pass",
    "return model",
    "(",
    ")",
    "'''",
    "\\",
    "\t",
    "é",
    "\x0c",
    "\r",
]


def mutate(text: str, rng: random.Random) -> str:
    lines = text.splitlines(keepends=True) or ["\n"]
    for _ in range(rng.randint(1, 3)):
        index = rng.randrange(len(lines))
        kind = rng.randrange(8)
        if kind == 0 and len(lines) > 1:
            del lines[index]
        elif kind == 1:
            lines.insert(index, lines[rng.randrange(len(lines))])
        elif kind == 2:
            other = rng.randrange(len(lines))
            lines[index], lines[other] = lines[other], lines[index]
        elif kind == 3:
            lines.insert(index, rng.choice(SNIPPETS) + "\n")
        elif kind == 4:
            line = lines[index]
            cut = rng.randrange(len(line) + 1)
            lines[index] = line[:cut] + rng.choice(SNIPPETS) + line[cut:]
        elif kind == 5:
            lines[index] = " " * rng.randint(1, 8) + lines[index]
        elif kind == 6:
            line = lines[index]
            cut = rng.randrange(len(line) + 1)
            lines[index] = line[:cut]
        else:
            lines = lines[: index + 1]
    return "".join(lines)


def test_mutated_examples_never_break_the_engine():
    rng = random.Random(SEED)
    sources = [path.read_text(encoding="utf-8") for path in EXAMPLES]
    assert sources
    started = time.monotonic()
    tried = fixed = rejected = 0
    while tried < MAX_CASES and time.monotonic() - started < BUDGET_S:
        text = mutate(rng.choice(sources), rng)
        data = text.encode("utf-8")
        tried += 1
        checked = check_bytes(data, "fuzz.py", EVERYTHING)
        outcome = check_bytes(data, "fuzz.py", EVERYTHING, fix=True)
        if not parses(text):
            rejected += 1
            assert [d.code for d in checked.diagnostics] == ["PF000"], text
            assert outcome.new_bytes is None, text
            continue
        assert "PF000" not in {d.code for d in checked.diagnostics}, text
        if outcome.new_bytes is None:
            continue
        fixed += 1
        new_text = outcome.new_bytes.decode("utf-8")
        assert parses(new_text), text
        again = check_bytes(outcome.new_bytes, "fuzz.py", EVERYTHING, fix=True)
        assert again.new_bytes is None, (text, new_text)
    assert tried >= 50, tried  # the budget allowed a real sample
    assert fixed > 0 and rejected > 0, (tried, fixed, rejected)
    print(f"fuzz: {tried} mutated scripts, {fixed} fixed, {rejected} rejected by CPython")
