"""Source encodings end to end: wide encodings are reported, not passed over by the pre-filter; fixes never
change bytes outside their edits, and a file whose codec cannot promise that is left alone with a message."""

from __future__ import annotations

import pytest

CAUSAL_AUTOMODEL = 'from transformers import AutoModel\nm = AutoModel.from_pretrained("x")\nm.generate()\n'


@pytest.mark.parametrize("codec", ["utf-16", "utf-32"])
@pytest.mark.parametrize("through", ["file", "directory"])
def test_wide_encoding_with_bom_is_pf000(check_cli, tmp_path, codec, through):
    path = tmp_path / "train.py"
    data = CAUSAL_AUTOMODEL.encode(codec)  # Python's utf-16/utf-32 codecs write a byte-order mark
    path.write_bytes(data)
    result = check_cli("--apply", "train.py" if through == "file" else ".", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "train.py:1:1: PF000" in result.stdout and codec.upper() in result.stdout
    assert path.read_bytes() == data


@pytest.mark.parametrize(
    "cookie, tail",
    [
        ("utf-7", 'x = "\u00e9"\n'.encode("utf-7")),
        ("raw_unicode_escape", b'x = "\\u00e9"\n'),
    ],
)
def test_codec_that_cannot_rewrite_faithfully_is_not_fixed(check_cli, tmp_path, cookie, tail):
    path = tmp_path / "train.py"
    data = f"# -*- coding: {cookie} -*-\n".encode() + CAUSAL_AUTOMODEL.encode(cookie) + tail
    path.write_bytes(data)
    result = check_cli("--apply", ".", cwd=tmp_path)
    assert result.returncode == 2
    assert "PF101" in result.stdout  # still reported
    assert "train.py: not fixed" in result.stderr and cookie in result.stderr
    assert path.read_bytes() == data


def test_single_byte_codec_keeps_every_byte_outside_the_edit(check_cli, tmp_path):
    path = tmp_path / "train.py"
    data = b"# -*- coding: latin-1 -*-\n" + CAUSAL_AUTOMODEL.encode() + 'x = "\u00e9\u00e0"\n'.encode("latin-1")
    path.write_bytes(data)
    result = check_cli("--apply", ".", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    expected = data.replace(b"AutoModel", b"AutoModelForCausalLM")
    assert path.read_bytes() == expected
