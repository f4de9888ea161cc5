"""The documentation pages of every code, generated from the catalog: `docs/rules/<CODE>.md` and an index,
`docs/rules/README.md`. `about.rule_url` links to these pages from SARIF, GitHub annotations and `peftfix explain`.

    python -m peftfix.rule_docs            # (re)write the pages, delete pages of codes that no longer exist
    python -m peftfix.rule_docs --check    # exit 1 listing the pages that are missing, stale or extra

Run it from the repository root (or pass `--dir`). The catalog is the one source: a page is never edited by
hand, so a code's documentation reads the same in `peftfix explain`, in SARIF viewers and on the web.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from peftfix import about
from peftfix.catalog import all_codes, reported_by
from peftfix.diagnostics import CodeInfo

INDEX_PAGE = "README.md"
REGENERATE = "python -m peftfix.rule_docs"
# First line of every page: a reader of the Markdown source learns where it comes from (GitHub hides it).
GENERATED_NOTE = f"<!-- Generated from the catalog by `{REGENERATE}`; edit the code's documentation, not this page. -->"


def page_name(code: str) -> str:
    return f"{code}.md"


def render_page(info: CodeInfo) -> str:
    """One code's page: what `peftfix explain` prints, as Markdown."""
    lines = [
        GENERATED_NOTE,
        "",
        f"# {info.code} ({info.name})",
        "",
        f"- Reported by: `{reported_by(info)}`",
        f"- Fix availability: {info.fix_availability}",
        f"- Enabled by default: {'yes' if info.default_enabled else 'no'}",
    ]
    if info.summary:
        lines += ["", info.summary]
    lines += ["", info.documentation.strip(), "", f"[All codes]({INDEX_PAGE})"]
    return "\n".join(lines) + "\n"


def _table_cell(text: str) -> str:
    # A table row is one line, and `|` would end its cell.
    return " ".join(text.split()).replace("|", "\\|")


def render_index(infos: Iterable[CodeInfo]) -> str:
    """The table of every code, each linking its page, in the catalog's order (by command, then code)."""
    lines = [
        GENERATED_NOTE,
        "",
        "# Codes",
        "",
        "Every code peftfix reports: the source rules (PF, `peftfix check`), the checkpoint and serving checks",
        "(PK, PS, `peftfix keys`) and the runtime checks (PV, `peftfix verify`). `peftfix rules` prints the same",
        "list and `peftfix explain CODE` a page.",
        "",
        "| Code | Name | Reported by | Fix | Summary |",
        "|---|---|---|---|---|",
    ]
    for info in infos:
        cells = [
            f"[{info.code}]({page_name(info.code)})",
            f"`{info.name}`",
            f"`{reported_by(info)}`",
            info.fix_availability,
            _table_cell(info.summary),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def expected_pages(infos: Optional[Sequence[CodeInfo]] = None) -> dict[str, str]:
    """File name -> content of every page the directory must hold."""
    infos = all_codes() if infos is None else infos
    pages = {page_name(info.code): render_page(info) for info in infos}
    pages[INDEX_PAGE] = render_index(infos)
    return pages


@dataclass(frozen=True)
class Problems:
    """How a directory differs from the pages the catalog gives (file names, sorted)."""

    missing: tuple[str, ...]
    stale: tuple[str, ...]
    extra: tuple[str, ...]  # pages of codes that are not in the catalog

    def __bool__(self) -> bool:
        return bool(self.missing or self.stale or self.extra)

    def lines(self, directory: Path, labels: tuple[str, str, str] = ("missing", "stale", "extra")) -> list[str]:
        """One line per file, labelled by kind (``labels`` name missing, stale and extra pages, in this order)."""
        kinds = zip(labels, (self.missing, self.stale, self.extra), strict=True)
        return [f"{label}: {directory / name}" for label, names in kinds for name in names]


def find_problems(directory: Path, pages: Optional[dict[str, str]] = None) -> Problems:
    pages = expected_pages() if pages is None else pages
    present = {path.name for path in directory.glob("*.md")} if directory.is_dir() else set()
    return Problems(
        missing=tuple(sorted(set(pages) - present)),
        stale=tuple(
            sorted(
                name
                for name in set(pages) & present
                # Compared as bytes: "\n" line endings are part of the page.
                if (directory / name).read_bytes() != pages[name].encode("utf-8")
            )
        ),
        extra=tuple(sorted(present - set(pages))),
    )


def write_pages(directory: Path, pages: Optional[dict[str, str]] = None) -> Problems:
    """Make ``directory`` hold exactly the pages; returns what it had to change."""
    pages = expected_pages() if pages is None else pages
    problems = find_problems(directory, pages)
    directory.mkdir(parents=True, exist_ok=True)
    for name in (*problems.missing, *problems.stale):
        (directory / name).write_bytes(pages[name].encode("utf-8"))
    for name in problems.extra:
        (directory / name).unlink()
    return problems


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog=REGENERATE, description="Generate the documentation page of every code.")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a page is missing or stale")
    parser.add_argument(
        "--dir", type=Path, default=Path(about.RULE_DOCS_DIR), help=f"default: {about.RULE_DOCS_DIR} (of the cwd)"
    )
    args = parser.parse_args(argv)
    if args.check:
        problems = find_problems(args.dir)
        if problems:
            print("\n".join(problems.lines(args.dir)))
            print(f"The rule docs are out of date: run `{REGENERATE}` from the repository root.")
            return 1
        print(f"{args.dir}: every page is up to date.")
        return 0
    changed = write_pages(args.dir)
    for line in changed.lines(args.dir, labels=("wrote", "rewrote", "deleted")):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
