"""The repository's shape: one Rust file per checkpoint check with its catalog entry, and texts that stand alone."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from peftfix import catalog

ROOT = Path(__file__).resolve().parents[2]


def test_every_checkpoint_check_is_one_rust_file_with_a_catalog_entry():
    files = {path.stem.upper() for path in (ROOT / "rust" / "matcher").glob("pk[0-9][0-9][0-9].rs")}
    # PK000 is not a check but the error every unreadable checkpoint becomes (rust/checkpoint/error.rs).
    codes = {info.code for info in catalog.codes_for("keys") if info.code.startswith("PK")} - {"PK000"}
    assert files == codes
    # Further cases of a code live beside it, named after it (pk005_tied_copy.rs).
    extra = {path.stem.split("_")[0].upper() for path in (ROOT / "rust" / "matcher").glob("pk[0-9][0-9][0-9]_*.rs")}
    assert extra <= codes


def test_every_serving_check_is_one_python_file_with_a_catalog_entry():
    checks = ROOT / "python" / "peftfix" / "serving" / "checks"
    files = {path.stem.upper() for path in checks.glob("ps[0-9][0-9][0-9].py")}
    assert files == {info.code for info in catalog.codes_for("keys") if info.code.startswith("PS")}


def test_every_code_documents_the_four_sections():
    for info in catalog.all_codes():
        for title in ("What it does", "Why is this bad?", "Example"):
            assert info.section(title), (info.code, title)
        assert info.section("Fix safety") is not None, info.code


# Words that would point a reader at documents that are not in the repository.
OUTSIDE_REFERENCES = re.compile(r"\bSPEC\b|(?i:\bseeds?/|\bseed 0\d\d\b|\bthe seeds?\b|seed articles?)")


def test_no_text_refers_to_documents_outside_the_repository():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    offending = []
    for name in tracked.splitlines():
        path = ROOT / name
        if path.suffix not in {".py", ".rs", ".md", ".pyi", ".toml", ".yaml", ".yml"} or "tests/corpus/" in name:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if OUTSIDE_REFERENCES.search(line) and "OUTSIDE_REFERENCES" not in line:
                offending.append(f"{name}:{number}: {line.strip()}")
    assert offending == []
