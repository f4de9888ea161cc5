"""safetensors header validation (docs/keys.md "safetensors headers"): unit cases and property tests.

Every case runs against the reference (peftfix.checkpoint.reference) and ``peftfix._native.read_header``
(skipped while it does not exist). The property tests feed random bytes, mutated real headers and randomly
built headers to the parsers: each must return a valid result or raise ``CheckpointError`` (a ValueError) —
never another exception — and the native parser must accept exactly what the reference accepts.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any, Optional

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from . import ckpt_cases

PROPERTY = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def st_file(header: Any, data_len: int, raw: Optional[bytes] = None, pad: int = 0) -> bytes:
    encoded = raw if raw is not None else json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * pad
    return struct.pack("<Q", len(encoded)) + encoded + b"\0" * data_len


def entry(dtype: str, shape: list[int], begin: int, end: int) -> dict[str, Any]:
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


@pytest.fixture(scope="module", params=["reference", "native"])
def parser(request):
    if request.param == "reference":
        return ckpt_cases.load_reference()
    module = ckpt_cases.native_matcher()
    if module is None or not hasattr(module, "read_header"):
        pytest.skip(ckpt_cases.NATIVE_MISSING)
    return module


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("headers")


def tensors_of(result: Any) -> dict[str, tuple[str, tuple[int, ...], tuple[int, int]]]:
    """name -> (dtype, shape, (begin, end)) from either read_header: the reference's dict
    (``{"tensors": {name: {"dtype", "shape", "data_offsets"}}, ...}``) or the native list of
    ``(name, dtype, shape, begin, end)`` rows."""
    if isinstance(result, dict):
        return {
            name: (info["dtype"], tuple(info["shape"]), tuple(info["data_offsets"]))
            for name, info in result["tensors"].items()
        }
    out = {}
    for name, dtype, shape, begin, end in result:
        assert name not in out, f"{name!r} listed twice"
        out[name] = (str(dtype), tuple(shape), (begin, end))
    return out


def outcome(module, path: Path):
    """("ok", tensors) or ("error", message); anything else than CheckpointError propagates."""
    try:
        result = module.read_header(str(path))
    except module.CheckpointError as error:
        assert isinstance(error, ValueError)
        assert str(path) in str(error) or path.name in str(error), str(error)
        return "error", str(error)
    return "ok", tensors_of(result)


# --------------------------------------------------------------------------------------------------------------
# Unit cases

VALID = {
    "empty-header": st_file({}, 0),
    "metadata-only": st_file({"__metadata__": {"format": "pt"}}, 0),
    "padded-header": st_file({"a": entry("F32", [2], 0, 8)}, 8, pad=5),
    "f4-whole-bytes": st_file({"a": entry("F4", [4], 0, 2)}, 2),
    "f6-e2m3-whole-bytes": st_file({"a": entry("F6_E2M3", [4], 0, 3)}, 3),
    "metadata-null": st_file({"__metadata__": None}, 0),  # the library reads it as no metadata
    "bool": st_file({"a": entry("BOOL", [3], 0, 3)}, 3),
    "c64": st_file({"a": entry("C64", [2], 0, 16)}, 16),
    "f8-e8m0": st_file({"a": entry("F8_E8M0", [2, 1], 0, 2)}, 2),
    "f8-fnuz": st_file({"a": entry("F8_E4M3FNUZ", [1], 0, 1), "b": entry("F8_E5M2FNUZ", [1], 1, 2)}, 2),
    "every-common-dtype": st_file(
        {
            "f64": entry("F64", [1], 0, 8),
            "i64": entry("I64", [1], 8, 16),
            "u64": entry("U64", [1], 16, 24),
            "f32": entry("F32", [1], 24, 28),
            "i32": entry("I32", [1], 28, 32),
            "u32": entry("U32", [1], 32, 36),
            "f16": entry("F16", [1], 36, 38),
            "bf16": entry("BF16", [1], 38, 40),
            "i16": entry("I16", [1], 40, 42),
            "u16": entry("U16", [1], 42, 44),
            "i8": entry("I8", [1], 44, 45),
            "u8": entry("U8", [1], 45, 46),
            "e4m3": entry("F8_E4M3", [1], 46, 47),
            "e5m2": entry("F8_E5M2", [1], 47, 48),
        },
        48,
    ),
    "scalar": st_file({"a": entry("F32", [], 0, 4)}, 4),
    "zero-length-tensors-share-offsets": st_file(
        {
            "a": entry("F32", [1], 0, 4),
            "b": entry("F32", [0, 5], 4, 4),
            "c": entry("F32", [0], 4, 4),
            "d": entry("F32", [1], 4, 8),
        },
        8,
    ),
    # The last entry of a name wins, as in the library (its header is read as a JSON map).
    "duplicate-name-last-wins": st_file(
        None,
        4,
        raw=b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}',
    ),
    "offsets-out-of-name-order": st_file({"a": entry("F32", [1], 4, 8), "b": entry("F32", [1], 0, 4)}, 8),
    "extra-entry-field": st_file({"a": {**entry("F32", [1], 0, 4), "note": {"x": [1, 2]}}}, 4),
    "escaped-name": st_file({'a\u00e9\\n"b': entry("F32", [1], 0, 4)}, 4),
    "leading-whitespace": st_file(None, 4, raw=b' \n{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'),
}

INVALID = {
    "zero-length-header": st_file(None, 0, raw=b""),
    "header-is-list": st_file([], 0),
    "header-is-string": st_file("x", 0),
    "truncated-json": st_file(None, 0, raw=b'{"a": {"dtype": "F32"'),
    "trailing-garbage": st_file(None, 4, raw=b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}} x'),
    "utf8-bom": st_file(None, 0, raw=b"\xef\xbb\xbf{}"),
    "invalid-utf8": st_file(None, 0, raw=b'{"\xc3\x28":1}'),
    "nan-in-shape": st_file(None, 4, raw=b'{"a":{"dtype":"F32","shape":[NaN],"data_offsets":[0,4]}}'),
    "float-in-shape": st_file({"a": entry("F32", [1.0], 0, 4)}, 4),
    "bool-in-shape": st_file({"a": entry("F32", [True], 0, 4)}, 4),
    "negative-dim": st_file({"a": entry("F32", [-1], 0, 4)}, 4),
    "dim-over-u64": st_file({"a": entry("F32", [2**64, 0], 0, 0)}, 0),
    "shape-product-overflows": st_file({"a": entry("F32", [2**40, 2**40, 0], 0, 0)}, 0),
    "bits-overflow": st_file({"a": entry("F64", [2**62], 0, 0)}, 0),
    "shape-not-list": st_file({"a": entry("F32", 4, 0, 4)}, 4),  # type: ignore[arg-type]
    "three-offsets": st_file({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4, 8]}}, 8),
    "one-offset": st_file({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4]}}, 8),
    "negative-offset": st_file({"a": entry("F32", [1], -4, 0)}, 4),
    "offset-over-u64": st_file({"a": entry("U8", [0], 2**64, 2**64)}, 0),
    "missing-dtype": st_file({"a": {"shape": [1], "data_offsets": [0, 4]}}, 4),
    "missing-shape": st_file({"a": {"dtype": "F32", "data_offsets": [0, 4]}}, 4),
    "missing-offsets": st_file({"a": {"dtype": "F32", "shape": [1]}}, 4),
    "entry-not-object": st_file({"a": [1, 2]}, 0),
    "lowercase-dtype": st_file({"a": entry("f32", [1], 0, 4)}, 4),
    "unknown-dtype": st_file({"a": entry("F12", [1], 0, 4)}, 4),
    "dtype-not-string": st_file({"a": entry(4, [1], 0, 4)}, 4),  # type: ignore[arg-type]
    "begin-after-end": st_file({"a": entry("U8", [0], 4, 0)}, 4),
    "end-beyond-data": st_file({"a": entry("F32", [1], 0, 4)}, 3),
    "size-mismatch": st_file({"a": entry("F32", [2], 0, 4)}, 8),
    "f4-not-rounded-up": st_file({"a": entry("F4", [3], 0, 1)}, 2),
    "overlap": st_file({"a": entry("F32", [2], 0, 8), "b": entry("F32", [1], 4, 8)}, 8),
    "same-range-twice": st_file({"a": entry("F32", [1], 0, 4), "b": entry("F32", [1], 0, 4)}, 4),
    "metadata-not-object": st_file({"__metadata__": ["pt"]}, 0),
    "metadata-value-not-string": st_file({"__metadata__": {"format": 1}}, 0),
    "metadata-twice": st_file(None, 0, raw=b'{"__metadata__":{},"__metadata__":{}}'),
    "dtype-twice": st_file(None, 4, raw=b'{"a":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}'),
    "lone-surrogate-name": st_file(None, 4, raw=b'{"\\ud800":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'),
    "deep-nesting": st_file(None, 0, raw=b"[" * 5000 + b"]" * 5000),
    # JSON's `-0` is read as the float -0.0 by serde_json: no valid offset (the reference does the same).
    "minus-zero-offset": st_file(None, 4, raw=b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[-0,4]}}'),
    # What the safetensors library rejects: the tensors must tile the data section exactly, and sub-byte dtypes
    # end on a byte.
    "hole-between-tensors": st_file({"a": entry("F32", [1], 0, 4), "b": entry("F32", [1], 12, 16)}, 16),
    "trailing-bytes": st_file({"a": entry("F32", [1], 0, 4)}, 8),
    "zero-length-tensor-inside-another": st_file({"a": entry("F32", [2], 0, 8), "z": entry("F32", [0], 4, 4)}, 8),
    "f4-not-whole-bytes": st_file({"a": entry("F4", [3], 0, 2)}, 2),
    "f6-e3m2-not-whole-bytes": st_file({"a": entry("F6_E3M2", [5], 0, 4)}, 4),
    # A tensor name twice: the last entry wins, leaving the first one's bytes uncovered.
    "duplicate-tensor-name": st_file(
        None,
        8,
        raw=b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}',
    ),
}


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_header_is_accepted(parser, scratch, name):
    path = scratch / f"valid-{name}.safetensors"
    path.write_bytes(VALID[name])
    kind, value = outcome(parser, path)
    assert kind == "ok", value


def test_valid_header_content(parser, scratch):
    path = scratch / "content.safetensors"
    path.write_bytes(VALID["offsets-out-of-name-order"])
    assert outcome(parser, path) == ("ok", {"a": ("F32", (1,), (4, 8)), "b": ("F32", (1,), (0, 4))})


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_header_is_a_checkpoint_error(parser, scratch, name):
    path = scratch / f"invalid-{name}.safetensors"
    path.write_bytes(INVALID[name])
    kind, value = outcome(parser, path)
    assert kind == "error", value


@pytest.mark.parametrize("size", [0, 1, 7])
def test_files_shorter_than_eight_bytes(parser, scratch, size):
    path = scratch / f"short-{size}.safetensors"
    path.write_bytes(b"\x02" * size)
    assert outcome(parser, path)[0] == "error"


@pytest.mark.parametrize("length", [100_000_001, 2**63, 2**64 - 1, 2**32])
def test_declared_header_lengths_beyond_limits(parser, scratch, length):
    # Declared in the 8 bytes only: nothing of that size is written.
    path = scratch / f"length-{length}.safetensors"
    path.write_bytes(struct.pack("<Q", length) + b"{}" + b" " * 64)
    kind, _message = outcome(parser, path)
    assert kind == "error"


def test_directory_and_missing_file(parser, scratch):
    assert outcome(parser, scratch)[0] == "error"
    assert outcome(parser, scratch / "absent.safetensors")[0] == "error"


# --------------------------------------------------------------------------------------------------------------
# Property tests


def _write(scratch: Path, data: bytes, name: str = "prop.safetensors") -> Path:
    path = scratch / name
    path.write_bytes(data)
    return path


@PROPERTY
@given(data=st.binary(max_size=300))
def test_random_bytes_give_a_result_or_a_checkpoint_error(parser, scratch, data):
    outcome(parser, _write(scratch, data))


@PROPERTY
@given(header=st.binary(max_size=200), tail=st.binary(max_size=64), extra=st.integers(-8, 8))
def test_random_header_bytes_with_a_plausible_length(parser, scratch, header, tail, extra):
    length = max(0, len(header) + extra)
    outcome(parser, _write(scratch, struct.pack("<Q", length) + header + tail))


DTYPES = sorted(ckpt_cases.load_reference().DTYPE_BITS)
NAMES = st.text(alphabet='ab._é"\\', min_size=0, max_size=6)
JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 2**65), st.floats(allow_nan=False, width=32), st.text(max_size=3)
)


@st.composite
def headers(draw) -> bytes:
    """Mostly valid headers (consecutive tensors of the right size), then a few random mutations."""
    count = draw(st.integers(0, 4))
    names = draw(st.lists(NAMES, min_size=count, max_size=count, unique=True))
    header: dict[str, Any] = {}
    offset = 0
    bits_of = ckpt_cases.load_reference().DTYPE_BITS
    for name in names:
        dtype = draw(st.sampled_from(DTYPES))
        shape = draw(st.lists(st.integers(0, 4), max_size=3))
        numel = 1
        for dim in shape:
            numel *= dim
        size = (numel * bits_of[dtype] + 7) // 8
        gap = draw(st.sampled_from([0, 0, 0, 1, 4]))
        header[name] = entry(dtype, shape, offset + gap, offset + gap + size)
        offset += gap + size
    if draw(st.booleans()):
        header["__metadata__"] = draw(st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2))
    for _ in range(draw(st.integers(0, 2))):
        if not names:
            break
        target = header[draw(st.sampled_from(names))]
        if not isinstance(target, dict):
            continue
        field = draw(st.sampled_from(["dtype", "shape", "data_offsets", "extra", "whole"]))
        if field == "dtype":
            target["dtype"] = draw(st.one_of(st.sampled_from(DTYPES + ["F12", "f32", ""]), JSON_SCALARS))
        elif field == "shape":
            target["shape"] = draw(st.one_of(st.lists(st.integers(-1, 2**65), max_size=3), JSON_SCALARS))
        elif field == "data_offsets":
            target["data_offsets"] = draw(
                st.one_of(st.lists(st.integers(-2, offset + 8), min_size=0, max_size=3), JSON_SCALARS)
            )
        elif field == "extra":
            target[draw(st.text(max_size=4))] = draw(JSON_SCALARS)
        else:
            header[draw(st.sampled_from(names))] = draw(JSON_SCALARS)
    data_len = offset + draw(st.sampled_from([0, 0, 0, 3, -1]))
    pad = draw(st.integers(0, 7))
    return st_file(header, max(0, data_len), pad=pad)


@PROPERTY
@given(data=headers())
def test_built_headers_give_a_result_or_a_checkpoint_error(parser, scratch, data):
    outcome(parser, _write(scratch, data))


@PROPERTY
@given(data=headers())
def test_reference_accepts_what_the_safetensors_library_accepts(reference, scratch, data):
    from safetensors import safe_open

    path = _write(scratch, data, "lib.safetensors")
    try:
        with safe_open(str(path), "numpy") as handle:
            handle.keys()
    except Exception:
        assume(False)
    kind, value = outcome(reference, path)
    assert kind == "ok", value


@st.composite
def mutations(draw, size: int) -> list[tuple[int, int]]:
    return draw(st.lists(st.tuples(st.integers(0, size - 1), st.integers(0, 255)), min_size=1, max_size=4))


def _real_adapter(checkpoints) -> bytes:
    return (checkpoints.adapters["llama-qv"] / "adapter_model.safetensors").read_bytes()


@PROPERTY
@given(data=st.data())
def test_mutated_real_header_gives_a_result_or_a_checkpoint_error(parser, checkpoints, scratch, data):
    source = bytearray(_real_adapter(checkpoints))
    (length,) = struct.unpack("<Q", source[:8])
    for at, value in data.draw(mutations(8 + length)):
        source[at] = value
    if data.draw(st.booleans()):
        source = source[: data.draw(st.integers(0, len(source)))]
    outcome(parser, _write(scratch, bytes(source)))


# --- the native parser agrees with the reference ----------------------------------------------------------------


def _agree(reference, native, path: Path) -> None:
    expected = outcome(reference, path)
    # A mutation can turn one tensor name into another (`q_proj` -> `v_proj`): a known disagreement.
    assume(not (expected[0] == "error" and "appears twice" in expected[1]))
    got = outcome(native, path)
    assert expected[0] == got[0], (path.read_bytes()[:400], expected, got)
    if expected[0] == "ok":
        assert expected[1] == got[1]


@pytest.fixture(scope="module")
def native_header(native):
    if not hasattr(native, "read_header"):
        pytest.skip(ckpt_cases.NATIVE_MISSING)
    return native


@PROPERTY
@given(data=st.binary(max_size=300))
def test_native_agrees_on_random_bytes(reference, native_header, scratch, data):
    _agree(reference, native_header, _write(scratch, data))


@PROPERTY
@given(data=headers())
def test_native_agrees_on_built_headers(reference, native_header, scratch, data):
    _agree(reference, native_header, _write(scratch, data))


@PROPERTY
@given(data=st.data())
def test_native_agrees_on_mutated_real_headers(reference, native_header, checkpoints, scratch, data):
    source = bytearray(_real_adapter(checkpoints))
    (length,) = struct.unpack("<Q", source[:8])
    for at, value in data.draw(mutations(8 + length)):
        source[at] = value
    _agree(reference, native_header, _write(scratch, bytes(source)))


@pytest.mark.parametrize("name", sorted(VALID) + sorted(INVALID))
def test_native_agrees_on_every_unit_case(reference, native_header, scratch, name):
    data = {**VALID, **INVALID}[name]
    path = _write(scratch, data, f"unit-{name}.safetensors")
    assert outcome(native_header, path) == outcome(reference, path) or (
        outcome(native_header, path)[0] == outcome(reference, path)[0] == "error"
    )


def test_scan_headers_counts_every_tensor_and_names_the_first_bad_file(native, checkpoints):
    """The bare header scan: every file's header validated, nothing kept, the tensor total returned."""
    files = sorted(str(path) for path in Path(checkpoints.bases["llama"]).glob("*.safetensors"))
    expected = sum(len(native.read_header(path)) for path in files)
    assert native.scan_headers(files) == expected > 0
    broken = str(checkpoints.adapters["truncated"] / "adapter_model.safetensors")
    with pytest.raises(native.CheckpointError) as caught:
        native.scan_headers([*files, broken])
    assert caught.value.path == broken
