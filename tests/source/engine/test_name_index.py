"""The name index fixes use to decide whether a name is read elsewhere (import removal, fix safety)."""

from peftfix.source.context import _line_starts
from peftfix.source.name_index import NameIndex


def index(source: str) -> NameIndex:
    return NameIndex(source, _line_starts(source))


def test_offsets_count_characters_not_utf8_bytes():
    source = "s = 'héllo'; model = f(model)\n"
    names = index(source)
    assert names.reads["model"] == [source.index("model)")]
    assert names.reads["f"] == [source.index("f(")]


def test_binds_cover_params_defs_imports_and_handlers():
    source = "import os.path\nfrom peft import get_peft_model as gpm\ndef f(model):\n    try:\n        pass\n    except E as err:\n        pass\nclass C: pass\n"
    names = index(source)
    for name in ("os", "gpm", "f", "model", "err", "C"):
        assert names.bound_between(name, 0, len(source)), name
    assert not names.bound_between("get_peft_model", 0, len(source))


def test_attribute_names_are_not_reads():
    names = index("import peft\npeft.get_peft_model(m, c)\n")
    assert "get_peft_model" not in names.reads and names.reads_between("peft", 0, 100)


def test_unparsable_by_this_interpreter_is_pessimistic():
    names = index("x = (\n")  # stands in for syntax newer than the running CPython
    assert not names.complete
    assert names.reads_of("x") and names.reads_between("x", 0, 5) and names.bound_between("x", 0, 5)
