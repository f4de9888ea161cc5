"""Fixtures for the checkpoint matcher tests (PK000-PK006): real checkpoints, both matchers.

- ``checkpoints``: every base, adapter and corrupted file of ``ckpt_cases`` (built once per test run; pytest-xdist
  workers share one build through a file lock).
- ``reference``: the plain-Python reference matcher (peftfix.checkpoint.reference).
- ``native``: ``peftfix._native`` with the checkpoint matcher; the test is skipped while the extension lacks it.
- ``matcher``: parametrized over both, so behaviour tests run against the reference and the native matcher.
- ``layer``: ``peftfix.checkpoint`` backed by the reference or by the native module (parametrized likewise).
"""

from __future__ import annotations

import json
import os

import pytest

from . import ckpt_cases


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory, worker_id) -> ckpt_cases.Built:
    if worker_id == "master":
        return ckpt_cases.build(tmp_path_factory.mktemp("checkpoints"))
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp().parent
    marker = shared / "peftfix-checkpoints.json"
    with FileLock(str(marker) + ".lock"):
        if marker.is_file():
            return ckpt_cases.from_description(json.loads(marker.read_text()))
        built = ckpt_cases.build(shared / "peftfix-checkpoints")
        marker.write_text(json.dumps(ckpt_cases.describe(built)))
        return built


@pytest.fixture(scope="session")
def worker_id(request) -> str:
    """pytest-xdist's worker id ("master" without xdist); defined here too so the tests run without xdist."""
    workerinput = getattr(request.config, "workerinput", None)
    return workerinput["workerid"] if workerinput else "master"


@pytest.fixture(scope="session")
def reference():
    return ckpt_cases.load_reference()


@pytest.fixture(scope="session")
def native():
    module = ckpt_cases.native_matcher()
    if module is None:
        pytest.skip(ckpt_cases.NATIVE_MISSING)
    return module


@pytest.fixture(params=["reference", "native"])
def matcher(request):
    """The module that matches: reference or native (same API)."""
    return request.getfixturevalue(request.param)


@pytest.fixture(params=["reference", "native"])
def layer(request, monkeypatch):
    """``peftfix.checkpoint`` over the reference or over ``peftfix._native``."""
    import peftfix.checkpoint as checkpoint
    from peftfix.checkpoint import backend

    monkeypatch.setattr(backend, "_backend", request.getfixturevalue(request.param))
    return checkpoint


@pytest.fixture(scope="session", autouse=True)
def _offline() -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
