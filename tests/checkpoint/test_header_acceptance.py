"""peftfix reads a safetensors header exactly when the safetensors library does: a seeded property test over
random headers (valid ones, and ones broken the ways real files break: gaps, trailing bytes, overlaps, sizes,
sub-byte slices, metadata shapes, duplicate names), each written to a file and opened by both."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

safetensors = pytest.importorskip("safetensors")

pytestmark = pytest.mark.usefixtures("native")

BITS = {"BOOL": 8, "U8": 8, "I8": 8, "F8_E4M3": 8, "F8_E5M2": 8, "F16": 16, "BF16": 16, "I32": 32, "F32": 32}
BITS |= {"F64": 64, "I64": 64, "F4": 4, "F6_E2M3": 6}
DTYPES = sorted(BITS)


@st.composite
def headers(draw) -> bytes:
    count = draw(st.integers(0, 4))
    names = draw(st.lists(st.sampled_from(["a", "b", "c", "d.weight"]), min_size=count, max_size=count))
    entries = []
    offset = 0
    for name in names:
        dtype = draw(st.sampled_from(DTYPES))
        shape = draw(st.lists(st.integers(0, 5), max_size=3))
        numel = 1
        for dim in shape:
            numel *= dim
        size = -(-numel * BITS[dtype] // 8)
        begin = offset + draw(st.sampled_from([0, 0, 0, 0, 1, -1]))  # mostly contiguous; sometimes a gap/overlap
        end = begin + size + draw(st.sampled_from([0, 0, 0, 0, 1, -1]))  # mostly the right size
        begin, end = max(begin, 0), max(end, 0)
        entries.append((name, {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}))
        offset = max(offset, end)
    if draw(st.booleans()):
        draw(st.randoms()).shuffle(entries)
    body = {}
    pairs = []
    metadata = draw(st.sampled_from(["absent", "absent", "null", "empty", "strings", "number"]))
    if metadata != "absent":
        value = {"null": None, "empty": {}, "strings": {"format": "pt"}, "number": {"format": 1}}[metadata]
        pairs.append(("__metadata__", value))
    pairs += entries
    text = "{" + ",".join(f"{json.dumps(key)}:{json.dumps(value)}" for key, value in pairs) + "}"
    del body
    data_len = max([entry["data_offsets"][1] for _, entry in entries], default=0)
    data_len += draw(st.sampled_from([0, 0, 0, 1]))  # sometimes trailing bytes
    encoded = text.encode()
    encoded += b" " * (-len(encoded) % 8)
    return struct.pack("<Q", len(encoded)) + encoded + b"\0" * data_len


def library_accepts(path: Path) -> bool:
    try:
        with safetensors.safe_open(str(path), "numpy"):
            return True
    except Exception:  # SafetensorError and friends: what the library refuses
        return False


def peftfix_accepts(native, path: Path) -> bool:
    try:
        native.read_header(str(path))
    except native.CheckpointError:
        return False
    return True


@settings(max_examples=1500, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=headers())
def test_peftfix_and_safetensors_accept_the_same_headers(native, tmp_path_factory, data):
    path = tmp_path_factory.mktemp("header") / "x.safetensors"
    path.write_bytes(data)
    assert peftfix_accepts(native, path) == library_accepts(path), data[8:].decode(errors="replace")


@st.composite
def mutated_real_headers(draw, source: bytes) -> bytes:
    """A real adapter file with a few header bytes changed (and sometimes cut short): what corruption looks like."""
    data = bytearray(source)
    (length,) = struct.unpack("<Q", data[:8])
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(8, 8 + length - 1))  # inside the JSON: the length prefix is covered by random bytes
        data[at] = draw(st.sampled_from([*b'{}[]",:0123456789 -.eEnulltrufasF\\', 0x00, 0x7F, 0xC3, 0xFF]))
    if draw(st.integers(0, 9)) == 0:
        data = data[: draw(st.integers(8, len(data)))]
    return bytes(data)


@settings(max_examples=1500, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_mutated_real_headers_are_accepted_exactly_when_the_library_accepts_them(
    native, checkpoints, tmp_path_factory, data
):
    source = (checkpoints.adapters["llama-qv"] / "adapter_model.safetensors").read_bytes()
    mutated = data.draw(mutated_real_headers(source))
    path = tmp_path_factory.mktemp("mutated") / "x.safetensors"
    path.write_bytes(mutated)
    assert peftfix_accepts(native, path) == library_accepts(path), mutated[8:400]
