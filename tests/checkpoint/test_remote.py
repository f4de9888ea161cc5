"""`peftfix.checkpoint` on checkpoints that live elsewhere: HTTP, S3 (moto), the Hugging Face cache and Hub.

Every checkpoint case of ``ckpt_cases`` is checked from each place and must give the findings of the local run;
corrupt ones must give PK000 naming the remote file. Real servers on 127.0.0.1 (``tests/remote/servers.py``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from peftfix.checkpoint import BaseIndex, check_adapter
from remote.servers import RangeServer, S3Server, lay_out_hf_cache

from .ckpt_cases import CASE_NAMES, CASES_BY_NAME, CORRUPT, CORRUPT_NAMES

CORRUPT_BY_NAME = {case.name: case for case in CORRUPT}
BUCKET = "checkpoints"
# Bigger files are not uploaded to S3 (the over-100-MB headers); their cases are checked over HTTP.
S3_MAX_FILE = 20 * 1024 * 1024


def _summary(report) -> dict[str, Any]:
    """What must not depend on where the files are: codes with details, counts, the rewrite."""
    findings = sorted((f.code, json.dumps(f.details, sort_keys=True)) for f in report.findings if f.code != "PK000")
    return {
        "findings": findings,
        "pk000": [f.code for f in report.findings if f.code == "PK000"],
        "counts": report.counts,
        "rewrite": report.rewrite,
    }


@pytest.fixture(scope="module")
def http_root(checkpoints):
    with RangeServer(checkpoints.root) as server:
        yield server


@pytest.fixture(scope="module")
def s3_root(checkpoints, s3_server: S3Server):
    s3_server.reset()
    client = s3_server.client()
    client.create_bucket(Bucket=BUCKET)
    for path in checkpoints.root.rglob("*"):
        if path.is_file() and path.stat().st_size <= S3_MAX_FILE:
            client.upload_file(str(path), BUCKET, path.relative_to(checkpoints.root).as_posix())
    return s3_server


@pytest.fixture(scope="module")
def emulated_stores(checkpoints, tmp_path_factory):
    """One HTTP server standing in for Google Cloud Storage's XML API (``/<bucket>/<object>``, reached through a
    service-account file with ``gcs_base_url``, as object_store's own tests reach fake-gcs-server) and Azure Blob
    Storage (``/<account>/<container>/<blob>``, object_store's emulator mode, ``AZURITE_BLOB_STORAGE_URL``): the
    reads peftfix makes are ranged GETs and HEADs, which it serves."""
    top = tmp_path_factory.mktemp("stores")
    (top / "bucket").symlink_to(checkpoints.root)
    (top / "devstoreaccount1").mkdir()
    (top / "devstoreaccount1" / "container").symlink_to(checkpoints.root)
    credentials = top / "service-account.json"
    with RangeServer(top) as server:
        account = {"private_key": "", "private_key_id": "", "client_email": "t@example.com"}
        credentials.write_text(json.dumps({**account, "gcs_base_url": server.url, "disable_oauth": True}))
        yield server, credentials


def _remote(path: str, root: Path, prefix: str) -> str:
    return f"{prefix}/{Path(path).relative_to(root).as_posix()}"


def _forms(backend: str, checkpoints, request) -> str:
    if backend == "http":
        return request.getfixturevalue("http_root").url
    if backend in ("gcs", "azure"):
        server, credentials = request.getfixturevalue("emulated_stores")
        monkeypatch = request.getfixturevalue("monkeypatch")
        for name in list(os.environ):
            if name.startswith(("GOOGLE_", "AZURE_", "AZURITE_")):
                monkeypatch.delenv(name)
        if backend == "gcs":
            monkeypatch.setenv("GOOGLE_SERVICE_ACCOUNT", str(credentials))
            return "gs://bucket"
        monkeypatch.setenv("AZURE_STORAGE_USE_EMULATOR", "true")
        monkeypatch.setenv("AZURITE_BLOB_STORAGE_URL", server.url)
        return "az://container"
    request.getfixturevalue("s3_env")
    request.getfixturevalue("s3_root")
    return f"s3://{BUCKET}"


def _hub_id(path: str, cache: Path, repo: str) -> str:
    """``path`` (a directory, or a file in one) laid out as Hub repo ``repo`` in the HF cache: its hf:// id, with the
    file as a subfolder path when ``path`` is a file."""
    source = Path(path)
    directory = source if source.is_dir() else source.parent
    lay_out_hf_cache(cache, repo, directory)
    return f"hf://{repo}" if source.is_dir() else f"hf://{repo}/{source.name}"


@pytest.mark.parametrize("name", CASE_NAMES)
def test_case_from_the_hf_cache_reports_what_the_local_run_reports(checkpoints, tmp_path, monkeypatch, name):
    """Every case with adapter and base as Hub repos in the local cache (offline), files as subfolder paths."""
    from huggingface_hub import constants

    cache = tmp_path / "hf-cache"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    case = CASES_BY_NAME[name]
    adapter, base = checkpoints.adapter_path(case), checkpoints.base_path(case)
    local = check_adapter(adapter, base, load_as=case.load_as, cache=False)
    hub = check_adapter(
        _hub_id(adapter, cache, "org/adapter"), _hub_id(base, cache, "org/base"), load_as=case.load_as, cache=False
    )
    assert _summary(hub) == _summary(local)


BACKENDS = ["http", "s3", "gcs", "azure"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", CASE_NAMES)
def test_remote_case_reports_what_the_local_run_reports(checkpoints, request, backend, name):
    case = CASES_BY_NAME[name]
    adapter, base = checkpoints.adapter_path(case), checkpoints.base_path(case)
    local = check_adapter(adapter, base, load_as=case.load_as, cache=False)
    prefix = _forms(backend, checkpoints, request)
    remote = check_adapter(
        _remote(adapter, checkpoints.root, prefix),
        _remote(base, checkpoints.root, prefix),
        load_as=case.load_as,
        cache=False,
    )
    assert _summary(remote) == _summary(local)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", CORRUPT_NAMES)
def test_remote_corrupt_case_is_pk000_naming_the_url(checkpoints, request, backend, name):
    case = CORRUPT_BY_NAME[name]
    adapter, base, broken = checkpoints.corrupt_paths(case)
    if backend == "s3" and any(
        p.is_file() and p.stat().st_size > S3_MAX_FILE for p in (Path(adapter), Path(base), Path(broken))
    ):
        pytest.skip("over the S3 upload limit of this test; checked over HTTP")
    local = check_adapter(adapter, base, cache=False)
    prefix = _forms(backend, checkpoints, request)
    remote = check_adapter(
        _remote(adapter, checkpoints.root, prefix), _remote(base, checkpoints.root, prefix), cache=False
    )
    assert remote.codes == ["PK000"] == local.codes
    details, local_details = remote.findings[0].details, local.findings[0].details
    # The same file as the local run names (the URL of it), for the same reason.
    assert details["path"] == _remote(local_details["path"], checkpoints.root, prefix), (details, local_details)
    assert os.path.basename(broken) in remote.findings[0].message
    assert case.reason.lower() in remote.findings[0].message.lower(), details
    assert remote.findings[0].filename == _remote(adapter, checkpoints.root, prefix)


def test_hub_ids_resolve_through_the_hf_cache_offline(checkpoints, tmp_path, monkeypatch):
    """hf://org/name, hf://org/name@revision/subfolder and a bare org/name, read from the cache huggingface_hub
    lays out, with HF_HUB_OFFLINE=1: the findings of the local run."""
    from huggingface_hub import constants

    cache = tmp_path / "hf-cache"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    case = CASES_BY_NAME["orig-mod"]
    adapter, base = Path(checkpoints.adapter_path(case)), Path(checkpoints.base_path(case))
    lay_out_hf_cache(cache, "org/base", base)
    nested = tmp_path / "nested"
    shutil.copytree(adapter, nested / "checkpoint-500")
    commit = lay_out_hf_cache(cache, "org/runs", nested)
    local = check_adapter(adapter, base, cache=False)
    assert local.codes == ["PK001"]
    for adapter_id, base_id in [
        ("hf://org/runs/checkpoint-500", "hf://org/base"),
        (f"hf://org/runs@{commit}/checkpoint-500", "org/base"),
        ("hf://org/runs@main/checkpoint-500", "hf://org/base@main"),
    ]:
        report = check_adapter(adapter_id, base_id, cache=False)
        assert _summary(report) == _summary(local), (adapter_id, base_id)
        assert report.adapter == adapter_id
    missing = check_adapter("hf://org/absent", base_id, cache=False)
    assert missing.codes == ["PK000"]
    assert "HF_HUB_OFFLINE" in missing.findings[0].message
    assert "hf://org/absent" in missing.findings[0].message


def test_hub_ids_are_read_remotely_through_hf_endpoint_with_the_token(checkpoints, hub_server, monkeypatch, tmp_path):
    """Not cached and online: the revision is pinned to its commit and the files are fetched under
    <endpoint>/<repo>/resolve/<commit>/ with the token; without the token the Hub refuses (PK000)."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    case = CASES_BY_NAME["llama-qv"]
    adapter, base = checkpoints.adapter_path(case), checkpoints.base_path(case)
    local = check_adapter(adapter, base, load_as=case.load_as, cache=False)
    server = hub_server({"org/adapter": Path(adapter), "org/base": Path(base)}, token="hf_secret")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    report = check_adapter("hf://org/adapter", "org/base", load_as=case.load_as, cache=False)
    assert _summary(report) == _summary(local)
    commit = server.commit("org/base")
    assert any(f"/org/base/resolve/{commit}/" in path for _, path, _, _ in server.requests)
    monkeypatch.setenv("HF_TOKEN", "hf_wrong")
    refused = check_adapter("hf://org/adapter", "org/base", load_as=case.load_as, cache=False)
    assert refused.codes == ["PK000"]
    assert "hf://org/adapter" in refused.findings[0].message


@pytest.mark.parametrize("backend", ["http", "s3"])
def test_base_index_takes_urls_and_checks_many_remote_adapters(checkpoints, request, backend):
    cases = [CASES_BY_NAME[name] for name in CASE_NAMES if CASES_BY_NAME[name].base == "llama"]
    cases = [case for case in cases if case.load_as == "causal-lm" and case.base_form == "dir"]
    base = checkpoints.base_path(cases[0])
    adapters = [checkpoints.adapter_path(case) for case in cases]
    local = BaseIndex(base, cache=False).check_many(adapters)
    prefix = _forms(backend, checkpoints, request)
    index = BaseIndex(_remote(base, checkpoints.root, prefix), cache=False)
    assert index.error is None and index.shard_count == 3
    remote = index.check_many([_remote(a, checkpoints.root, prefix) for a in adapters])
    assert [_summary(r) for r in remote] == [_summary(r) for r in local]


def test_shard_headers_are_fetched_concurrently(checkpoints):
    """Every request of a server that takes 1 s to answer: the three shards of a base together cost one second,
    not three (a look for model.safetensors, the index, then all shards at once)."""
    import time

    case = CASES_BY_NAME["llama-qv"]
    base = checkpoints.base_path(case)
    with RangeServer(checkpoints.root, mode="slow", delay=1.0) as server:
        started = time.monotonic()
        index = BaseIndex(_remote(base, checkpoints.root, server.url), cache=False)
        elapsed = time.monotonic() - started
    assert index.error is None and index.shard_count == 3
    assert 3.0 <= elapsed < 4.5, elapsed


def test_cli_reads_urls_and_prints_what_the_local_run_prints(checkpoints, http_root):
    case = CASES_BY_NAME["orig-mod"]
    adapter, base = checkpoints.adapter_path(case), checkpoints.base_path(case)

    def run(*args: str) -> list:
        result = subprocess.run(
            [sys.executable, "-m", "peftfix", "keys", *args, "--format", "json", "--no-cache"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 1, result.stderr
        return json.loads(result.stdout)

    local = run(adapter, "--base", base)
    remote = run(
        _remote(adapter, checkpoints.root, http_root.url), "--base", _remote(base, checkpoints.root, http_root.url)
    )
    assert [(f["code"], f["details"]) for f in remote] == [(f["code"], f["details"]) for f in local]
    assert remote[0]["filename"] == _remote(adapter, checkpoints.root, http_root.url)


def test_stores_without_credentials_fail_clearly(monkeypatch):
    """az:// without an account and gs:// with an unreadable service-account file: PK000 naming the URL, fast."""
    for name in list(os.environ):
        if name.startswith(("AZURE_", "GOOGLE_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("GOOGLE_SERVICE_ACCOUNT", "/nonexistent/service-account.json")
    monkeypatch.setenv("PEFTFIX_TIMEOUT", "5")
    for url in ("az://container/adapter", "gs://bucket/adapter"):
        report = check_adapter(url, url.replace("adapter", "base"), cache=False)
        assert report.codes == ["PK000"], url
        assert report.findings[0].details["path"].startswith(url.split("/adapter")[0]), report.findings[0].details


def _keys_json(args: list[str], env: dict[str, str]) -> list:
    result = subprocess.run(
        [sys.executable, "-m", "peftfix", "keys", *args, "--format", "json", "--no-cache"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode in (0, 1), result.stderr
    return json.loads(result.stdout)


def test_cli_reads_s3_and_the_hub_as_the_local_run(checkpoints, s3_root, hub_server, tmp_path):
    """The CLI in a fresh process, configured by environment variables only: AWS_* for moto's S3; HF_ENDPOINT,
    HF_TOKEN and an empty cache for the stand-in Hub, with the base named by the adapter's config."""
    case = CASES_BY_NAME["orig-mod"]
    adapter, base = checkpoints.adapter_path(case), checkpoints.base_path(case)
    local = _keys_json([adapter, "--base", base], dict(os.environ))
    expected = [(f["code"], f["details"]) for f in local]
    assert [code for code, _ in expected] == ["PK001"]

    s3_env = s3_root.subprocess_env(os.environ)
    s3 = _keys_json(
        [
            _remote(adapter, checkpoints.root, f"s3://{BUCKET}"),
            "--base",
            _remote(base, checkpoints.root, f"s3://{BUCKET}"),
        ],
        s3_env,
    )
    assert [(f["code"], f["details"]) for f in s3] == expected

    named = tmp_path / "adapter"
    shutil.copytree(adapter, named)
    config = json.loads((named / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = "org/base"
    (named / "adapter_config.json").write_text(json.dumps(config))
    server = hub_server({"org/adapter": named, "org/base": Path(base)}, token="hf_secret", patch_hf=False)
    hub_env = {**os.environ, **server.env(), "HF_HUB_CACHE": str(tmp_path / "empty-cache")}
    hub_env.update({"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"})
    hub = _keys_json(["hf://org/adapter"], hub_env)
    assert [(f["code"], f["details"]) for f in hub] == expected
    assert hub[0]["filename"] == "hf://org/adapter"


def test_a_hub_id_is_resolved_once_for_a_fleet(checkpoints, hub_server, monkeypatch, tmp_path):
    """Many adapters naming one Hub base, checked in several calls: the Hub is asked for its commit once."""
    from huggingface_hub import constants

    from peftfix.checkpoint import locate

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(locate, "_COMMITS", {})
    case = CASES_BY_NAME["llama-qv"]
    adapter, base = checkpoints.adapter_path(case), checkpoints.base_path(case)
    server = hub_server({"org/base": Path(base)})
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    reports = [check_adapter(adapter, "org/base", cache=False) for _ in range(3)]
    assert all(report.codes == [] for report in reports)
    info_requests = [path for _, path, _, _ in server.requests if path.startswith("/api/models/org/base")]
    assert len(info_requests) == 1, info_requests
    monkeypatch.setattr(locate, "COMMIT_TTL_SECONDS", 0.0)  # expired: asked again
    check_adapter(adapter, "org/base", cache=False)
    assert len([path for _, path, _, _ in server.requests if path.startswith("/api/models/org/base")]) == 2
