"""The documentation pages in docs/rules are the catalog's, up to date, one per code, and the links point at them."""

from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path

from peftfix import about, catalog, rule_docs

if sys.version_info >= (3, 11):
    import tomllib
else:  # a dependency of peftfix on 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / about.RULE_DOCS_DIR


def test_checked_in_pages_are_those_the_catalog_gives():
    problems = rule_docs.find_problems(DOCS)
    assert not problems, (
        "docs/rules does not match the catalog:\n"
        + "\n".join(problems.lines(DOCS))
        + f"\nRegenerate with `{rule_docs.REGENERATE}` from the repository root."
    )


def test_every_code_has_a_page_and_its_url_names_that_page():
    for info in catalog.all_codes():
        url = about.rule_url(info.code)
        assert url.startswith(about.REPOSITORY_URL + "/")
        assert url.endswith(f"/{about.RULE_DOCS_DIR}/{info.code}.md")
        page = (DOCS / f"{info.code}.md").read_text(encoding="utf-8")
        assert f"\n# {info.code} ({info.name})\n" in page
        assert f"- Reported by: `{catalog.reported_by(info)}`" in page
        assert info.documentation.strip() in page
    assert about.rule_url(" pf201 ") == about.rule_url("PF201")


def test_index_links_every_page_once():
    index = (DOCS / rule_docs.INDEX_PAGE).read_text(encoding="utf-8")
    linked = re.findall(r"^\| \[(\w+)\]\((\w+)\.md\) \|", index, flags=re.MULTILINE)
    codes = [info.code for info in catalog.all_codes()]
    assert [code for code, _ in linked] == codes
    assert all(code == target for code, target in linked)


def test_table_cells_stay_on_one_row():
    info = catalog.code_info("PF201")
    assert info is not None
    odd = dataclasses.replace(info, summary="a | b\nc")
    row = rule_docs.render_index([odd]).splitlines()[-1]
    assert row.endswith("| a \\| b c |")


def test_check_names_missing_stale_and_extra_pages_and_regenerating_fixes_them(tmp_path, capsys):
    docs = tmp_path / "rules"
    assert rule_docs.main(["--dir", str(docs)]) == 0
    assert rule_docs.main(["--check", "--dir", str(docs)]) == 0

    (docs / "PF201.md").unlink()
    (docs / "PK001.md").write_text("# PK001\n\nedited by hand\n", encoding="utf-8")
    (docs / "PF999.md").write_text("# a code that no longer exists\n", encoding="utf-8")
    capsys.readouterr()
    assert rule_docs.main(["--check", "--dir", str(docs)]) == 1
    out = capsys.readouterr().out
    assert f"missing: {docs / 'PF201.md'}" in out
    assert f"stale: {docs / 'PK001.md'}" in out
    assert f"extra: {docs / 'PF999.md'}" in out
    assert rule_docs.REGENERATE in out
    assert not (docs / "PF201.md").exists()  # --check writes nothing

    assert rule_docs.main(["--dir", str(docs)]) == 0
    assert not (docs / "PF999.md").exists()
    assert rule_docs.main(["--check", "--dir", str(docs)]) == 0
    assert sorted(path.name for path in docs.iterdir()) == sorted(rule_docs.expected_pages())


def test_a_page_with_other_line_endings_is_stale(tmp_path):
    docs = tmp_path / "rules"
    rule_docs.write_pages(docs)
    page = docs / "PV001.md"
    page.write_bytes(page.read_bytes().replace(b"\n", b"\r\n"))
    assert rule_docs.find_problems(docs).stale == ("PV001.md",)


def test_the_package_metadata_names_the_repository_the_links_point_into():
    urls = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["urls"]
    assert urls["Homepage"] == urls["Repository"] == about.REPOSITORY_URL
    assert urls["Documentation"] == f"{about.REPOSITORY_URL}/tree/main/docs"
