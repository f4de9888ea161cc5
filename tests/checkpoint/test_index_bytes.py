"""A base index sent to another process: its byte form and pickling (what Ray's object store uses), and
`peftfix keys --from-file` for fleets too long for the command line. Bases and adapters are the real PEFT saves of
the checkpoint cases."""

from __future__ import annotations

import json
import multiprocessing
import pickle
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor

import pytest

from peftfix import _native
from peftfix.checkpoint import BaseIndex

from .ckpt_cases import CASES, CASES_BY_NAME

FLEET = ["llama-qv", "orig-mod", "untrained", "resized-vocab", "zero3-empty", "config-missing"]


def _summary(reports) -> list:
    return [(r.adapter, r.codes, [f.details for f in r.findings], r.counts) for r in reports]


def _check_in_child(index: BaseIndex, adapters: list[str]) -> list:
    return _summary(index.check_many(adapters))


@pytest.mark.parametrize("base", ["llama", "gpt2"])
def test_a_pickled_index_checks_exactly_like_the_original(checkpoints, base):
    cases = [case for case in CASES if case.base == base and case.adapter in checkpoints.adapters]
    adapters = [checkpoints.adapter_path(case) for case in cases]
    index = BaseIndex(str(checkpoints.bases[base]), cache=False)
    again = pickle.loads(pickle.dumps(index))
    assert (again.tensor_count, again.shard_count, again.header_bytes, again.base_model_prefix) == (
        index.tensor_count,
        index.shard_count,
        index.header_bytes,
        index.base_model_prefix,
    )
    assert _summary(again.check_many(adapters)) == _summary(index.check_many(adapters))


def test_an_index_unpickled_in_another_process_reads_no_shard_and_gives_the_same_reports(checkpoints, tmp_path):
    adapters = [checkpoints.adapter_path(CASES_BY_NAME[name]) for name in FLEET]
    index = BaseIndex(str(checkpoints.bases["llama"]), cache=False)
    expected = _summary(index.check_many(adapters))
    # A fresh interpreter, as Ray's workers are (forking a process whose native thread pools run can deadlock);
    # the index travels pickled, as Ray's object store ships it.
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        assert pool.submit(_check_in_child, index, adapters).result() == expected


def test_the_byte_form_is_rebuilt_from_headers_validated_again(checkpoints):
    native = _native.BaseIndex(str(checkpoints.bases["llama"]))
    data = native.to_bytes()
    again = _native.base_index_from_bytes(data)
    assert again.to_bytes() == data and again.path == native.path and again.load_as == native.load_as
    for broken in (b"", b"not an index", data[: len(data) // 2], data + b"\0", data[:-12] + b"\xff" + data[-11:]):
        with pytest.raises(ValueError, match="base index"):
            _native.base_index_from_bytes(broken)


def test_an_unreadable_base_pickles_and_still_reports_pk000(checkpoints):
    index = BaseIndex(str(checkpoints.bases["missing-shard"]), cache=False)
    again = pickle.loads(pickle.dumps(index))
    [report] = again.check_many([checkpoints.adapter_path(CASES_BY_NAME["llama-qv"])])
    assert report.codes == ["PK000"] and "model-00002-of-00003.safetensors" in report.findings[0].message


def _keys(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "peftfix", "keys", "--no-cache", "--format", "json", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_from_file_checks_the_listed_adapters_like_the_command_line(checkpoints, tmp_path):
    adapters = [checkpoints.adapter_path(CASES_BY_NAME[name]) for name in FLEET]
    base = str(checkpoints.bases["llama"])
    listing = tmp_path / "fleet.txt"
    listing.write_text("# nightly checkpoints\n\n" + "\n".join(f"  {a}  " for a in adapters[1:]) + "\n")
    on_argv = _keys("--base", base, *adapters)
    from_file = _keys("--base", base, adapters[0], "--from-file", str(listing))
    from_stdin = _keys("--base", base, "--from-file", "-", stdin="\n".join(adapters))
    assert on_argv.returncode == from_file.returncode == from_stdin.returncode
    assert json.loads(from_file.stdout) == json.loads(on_argv.stdout) == json.loads(from_stdin.stdout)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from-file", "/nonexistent/fleet.txt"], "cannot read the adapter list"),
        ([], "no adapter to check"),
    ],
)
def test_from_file_problems_are_usage_errors(args, message):
    result = _keys(*args)
    assert result.returncode == 2 and message in result.stderr


def test_an_empty_list_is_a_usage_error(tmp_path):
    listing = tmp_path / "empty.txt"
    listing.write_text("# nothing yet\n")
    result = _keys("--from-file", str(listing))
    assert result.returncode == 2 and "no adapter to check" in result.stderr
