"""The test servers do what ``servers.py`` says: ranges, counters, fault modes, the Hub API, the cache layout, S3."""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import http.client
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from .fixtures import HubServerFactory, RangeServerFactory
from .servers import (
    ByteRange,
    HubServer,
    RangeNotSatisfiable,
    RangeServer,
    RequestRecord,
    S3Server,
    default_commit,
    lay_out_hf_cache,
    parse_byte_range,
)

DATA = bytes(range(256)) * 4  # 1024 bytes, every byte at a known place
SIZE = len(DATA)
REPO = "peftfix-tests/tiny-adapter"


@contextlib.contextmanager
def _connect(server: RangeServer | HubServer) -> Iterator[http.client.HTTPConnection]:
    """One keep-alive connection to ``server``, closed on exit."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        yield conn
    finally:
        conn.close()


def _fetch(
    conn: http.client.HTTPConnection, path: str, *, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[http.client.HTTPResponse, bytes]:
    conn.request(method, path, headers=headers or {})
    response = conn.getresponse()
    return response, response.read()


def _git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """A folder with ``f.bin`` (``DATA``) and ``sub/g.bin``."""
    root = tmp_path / "files"
    (root / "sub").mkdir(parents=True)
    (root / "f.bin").write_bytes(DATA)
    (root / "sub" / "g.bin").write_bytes(b"0123456789")
    return root


@pytest.fixture
def adapter(tmp_path: Path) -> Path:
    """A tiny PEFT-like repo: adapter_config.json, adapter_model.safetensors and a file in a subfolder."""
    root = tmp_path / "adapter"
    (root / "docs").mkdir(parents=True)
    (root / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 4}))
    tensors = {
        "base_model.model.layers.0.q_proj.lora_A.weight": np.arange(32, dtype=np.float32).reshape(4, 8),
        "base_model.model.layers.0.q_proj.lora_B.weight": np.ones((8, 4), dtype=np.float32),
    }
    save_file(tensors, str(root / "adapter_model.safetensors"))
    (root / "docs" / "README.md").write_text("# tiny adapter\n")
    return root


# ---------------------------------------------------------------------------------------------------------------------
# RangeServer, normal mode


def test_head_reports_size_etag_and_dates(files: Path, range_server: RangeServerFactory) -> None:
    server = range_server(files)
    assert server.url == f"http://127.0.0.1:{server.port}"
    with _connect(server) as conn:
        response, body = _fetch(conn, "/f.bin", method="HEAD")
    assert response.status == 200
    assert body == b""
    assert response.getheader("Content-Length") == str(SIZE)
    assert response.getheader("Accept-Ranges") == "bytes"
    assert response.getheader("Content-Type") == "application/octet-stream"
    etag = response.getheader("ETag")
    assert etag is not None and etag.startswith('"') and etag.endswith('"') and len(etag) > 2
    last_modified = email.utils.parsedate_to_datetime(response.getheader("Last-Modified") or "")
    assert int(last_modified.timestamp()) == int((files / "f.bin").stat().st_mtime)
    assert server.bytes_sent == 0
    assert server.requests == [RequestRecord("HEAD", "/f.bin", None, 200)]


@pytest.mark.parametrize(
    ("range_header", "status", "body", "content_range"),
    [
        ("bytes=0-7", 206, DATA[:8], "bytes 0-7/1024"),
        ("bytes=1000-", 206, DATA[1000:], "bytes 1000-1023/1024"),
        ("bytes=-10", 206, DATA[-10:], "bytes 1014-1023/1024"),
        ("bytes=-5000", 206, DATA, "bytes 0-1023/1024"),
        ("bytes=500-99999", 206, DATA[500:], "bytes 500-1023/1024"),
        ("bytes=1023-1023", 206, DATA[1023:], "bytes 1023-1023/1024"),
        (None, 200, DATA, None),
        ("bytes=0-1,4-5", 200, DATA, None),  # several ranges: ignored, as RFC 9110 allows
        ("bytes=9-3", 200, DATA, None),  # invalid: ignored
        ("bytes=1024-", 416, b"", "bytes */1024"),
        ("bytes=5000-6000", 416, b"", "bytes */1024"),
        ("bytes=-0", 416, b"", "bytes */1024"),
    ],
)
def test_range_requests(
    files: Path,
    range_server: RangeServerFactory,
    range_header: str | None,
    status: int,
    body: bytes,
    content_range: str | None,
) -> None:
    server = range_server(files)
    with _connect(server) as conn:
        response, received = _fetch(conn, "/f.bin", headers={"Range": range_header} if range_header else None)
    assert response.status == status
    assert received == body
    assert response.getheader("Content-Length") == str(len(body))
    assert response.getheader("Content-Range") == content_range
    assert server.bytes_sent == len(body)
    assert server.requests == [RequestRecord("GET", "/f.bin", range_header, status)]


def test_parse_byte_range_edges() -> None:
    assert parse_byte_range(None, 10) is None
    assert parse_byte_range("items=0-1", 10) is None
    assert parse_byte_range("bytes=-", 10) is None
    assert parse_byte_range("bytes=2-", 10) == ByteRange(2, 9)
    assert parse_byte_range(" bytes = 2 - 3 ", 10) == ByteRange(2, 3)
    assert ByteRange(2, 3).length == 2
    for header in ("bytes=0-", "bytes=-1"):
        with pytest.raises(RangeNotSatisfiable):
            parse_byte_range(header, 0)


def test_keep_alive_counters_and_reset(files: Path, range_server: RangeServerFactory) -> None:
    server = range_server(files)
    with _connect(server) as conn:
        _fetch(conn, "/f.bin", headers={"Range": "bytes=0-99"})
        sock = conn.sock
        _fetch(conn, "/sub/g.bin")
        _fetch(conn, "/f.bin", method="HEAD")
        assert conn.sock is sock, "the connection was not kept alive"
    assert server.bytes_sent == 100 + 10
    assert server.requests == [
        RequestRecord("GET", "/f.bin", "bytes=0-99", 206),
        RequestRecord("GET", "/sub/g.bin", None, 200),
        RequestRecord("HEAD", "/f.bin", None, 200),
    ]
    server.reset()
    assert server.bytes_sent == 0
    assert server.requests == []


@pytest.mark.parametrize("path", ["/missing.bin", "/sub", "/sub/", "/", "/sub/missing"])
def test_missing_files_and_folders_are_404(files: Path, range_server: RangeServerFactory, path: str) -> None:
    server = range_server(files)
    with _connect(server) as conn:
        assert _fetch(conn, path)[0].status == 404
        assert _fetch(conn, path, method="HEAD")[0].status == 404


def test_paths_cannot_leave_the_root(files: Path, range_server: RangeServerFactory) -> None:
    server = range_server(files / "sub")
    with _connect(server) as conn:
        assert _fetch(conn, "/g.bin")[0].status == 200
        for path in ("/../f.bin", "/%2e%2e/f.bin", "/./../f.bin", "/..%2ff.bin"):
            assert _fetch(conn, path)[0].status == 404, path


def test_large_file_goes_out_whole_and_in_ranges(tmp_path: Path, range_server: RangeServerFactory) -> None:
    size = 20 * 1024 * 1024 + 7  # several sendfile chunks, not a multiple of one
    data = hashlib.sha256(b"peftfix").digest() * (size // 32 + 1)
    (tmp_path / "big.bin").write_bytes(data[:size])
    server = range_server(tmp_path)
    with _connect(server) as conn:
        response, body = _fetch(conn, "/big.bin")
        assert response.status == 200 and body == data[:size]
        start = 8 * 1024 * 1024 - 3
        response, body = _fetch(conn, "/big.bin", headers={"Range": f"bytes={start}-{start + 9_999_999}"})
        assert response.status == 206 and body == data[start : start + 10_000_000]
    assert server.bytes_sent == size + 10_000_000


# ---------------------------------------------------------------------------------------------------------------------
# RangeServer, fault modes


def test_ignore_range_sends_everything_and_survives_early_close(
    tmp_path: Path, range_server: RangeServerFactory
) -> None:
    size = 64 * 1024 * 1024  # far more than loopback socket buffers hold
    with open(tmp_path / "big.bin", "wb") as file:
        file.truncate(size)
    server = range_server(tmp_path, mode="ignore-range")
    with _connect(server) as conn:
        response, _ = _fetch(conn, "/big.bin", method="HEAD")
        assert response.getheader("Accept-Ranges") == "bytes"  # the lie the mode is about
        conn.request("GET", "/big.bin", headers={"Range": "bytes=0-7"})
        response = conn.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Length") == str(size)
        assert response.getheader("Content-Range") is None
        assert response.read(8) == b"\0" * 8
    server.stop()  # joins the handler, which must have given up quietly on the closed connection
    assert 8 <= server.bytes_sent < size
    assert server.requests[-1] == RequestRecord("GET", "/big.bin", "bytes=0-7", 200)


@pytest.mark.parametrize(("mode", "status"), [("404", 404), ("403", 403)])
def test_error_modes_answer_every_request(
    files: Path, range_server: RangeServerFactory, mode: str, status: int
) -> None:
    server = range_server(files, mode=mode)
    with _connect(server) as conn:
        for method in ("GET", "HEAD"):
            for path in ("/f.bin", "/missing"):
                response, body = _fetch(conn, path, method=method, headers={"Range": "bytes=0-7"})
                assert response.status == status
                if mode == "403" and method == "GET":
                    assert b"AccessDenied" in body


def test_drop_sends_half_the_body_then_closes(files: Path, range_server: RangeServerFactory) -> None:
    server = range_server(files, mode="drop")
    with _connect(server) as conn:
        response, _ = _fetch(conn, "/f.bin", method="HEAD")
        assert response.status == 200 and response.getheader("Content-Length") == str(SIZE)
        conn.request("GET", "/f.bin", headers={"Range": "bytes=100-299"})
        response = conn.getresponse()
        assert response.status == 206
        assert response.getheader("Content-Range") == "bytes 100-299/1024"
        assert response.getheader("Content-Length") == "200"
        with pytest.raises(http.client.IncompleteRead) as excinfo:
            response.read()
        assert excinfo.value.partial == DATA[100:200]
    with _connect(server) as conn:
        conn.request("GET", "/f.bin")
        response = conn.getresponse()
        assert response.status == 200 and response.getheader("Content-Length") == str(SIZE)
        with pytest.raises(http.client.IncompleteRead) as excinfo:
            response.read()
        assert excinfo.value.partial == DATA[: SIZE // 2]


def test_truncate_sends_a_short_but_well_formed_answer(files: Path, range_server: RangeServerFactory) -> None:
    server = range_server(files, mode="truncate")
    with _connect(server) as conn:
        response, body = _fetch(conn, "/f.bin", headers={"Range": "bytes=0-999"})
        assert response.status == 206
        assert response.getheader("Content-Range") == "bytes 0-999/1024"
        assert response.getheader("Content-Length") == "500"
        assert body == DATA[:500]
        response, body = _fetch(conn, "/f.bin")  # same connection: the answer was complete
        assert response.status == 200 and body == DATA[: SIZE // 2]


def test_slow_mode_delays_answers(files: Path, range_server: RangeServerFactory) -> None:
    server = range_server(files, mode="slow", delay=0.3)
    with _connect(server) as conn:
        started = time.monotonic()
        response, body = _fetch(conn, "/f.bin", headers={"Range": "bytes=0-3"})
        assert time.monotonic() - started >= 0.3
        assert response.status == 206 and body == DATA[:4]


def test_stop_interrupts_a_slow_answer(files: Path) -> None:
    server = RangeServer(files, mode="slow", delay=60).start()
    errors: list[BaseException] = []

    def client() -> None:
        try:
            with _connect(server) as conn:
                _fetch(conn, "/f.bin")
        except (OSError, http.client.HTTPException) as exc:
            errors.append(exc)

    thread = threading.Thread(target=client)
    thread.start()
    time.sleep(0.2)  # let the request arrive and its handler start waiting
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 3
    thread.join(5)
    assert not thread.is_alive()
    assert len(errors) == 1, "the client should see the connection closed without an answer"
    assert server.requests == []


def test_flaky_fails_the_first_get_of_each_path(files: Path, range_server: RangeServerFactory) -> None:
    server = range_server(files, mode="flaky")
    with _connect(server) as conn:
        response, _ = _fetch(conn, "/f.bin", headers={"Range": "bytes=0-3"})
        assert response.status == 503 and response.getheader("Retry-After") == "0"
        response, body = _fetch(conn, "/f.bin?again", headers={"Range": "bytes=0-3"})
        assert response.status == 206 and body == DATA[:4]
        assert _fetch(conn, "/sub/g.bin", method="HEAD")[0].status == 200
        assert _fetch(conn, "/sub/g.bin")[0].status == 503
        assert _fetch(conn, "/sub/g.bin")[0].status == 200
    assert [record.status for record in server.requests] == [503, 206, 200, 503, 200]


# ---------------------------------------------------------------------------------------------------------------------
# The Hugging Face hub cache layout


def test_lay_out_hf_cache_is_read_by_huggingface_hub(tmp_path: Path, adapter: Path) -> None:
    from huggingface_hub import hf_hub_download, scan_cache_dir, snapshot_download

    cache = tmp_path / "hub"
    commit = lay_out_hf_cache(cache, REPO, adapter)
    assert commit == default_commit(REPO)
    repo_dir = cache / "models--peftfix-tests--tiny-adapter"
    assert (repo_dir / "refs" / "main").read_text() == commit

    config = (adapter / "adapter_config.json").read_bytes()
    weights = (adapter / "adapter_model.safetensors").read_bytes()
    snapshot = repo_dir / "snapshots" / commit
    assert os.readlink(snapshot / "adapter_config.json") == f"../../blobs/{_git_blob_sha1(config)}"
    assert os.readlink(snapshot / "adapter_model.safetensors") == f"../../blobs/{hashlib.sha256(weights).hexdigest()}"
    assert os.readlink(snapshot / "docs" / "README.md").startswith("../../../blobs/")

    info = scan_cache_dir(cache)
    assert info.warnings == []
    (repo,) = info.repos
    assert repo.repo_id == REPO and repo.repo_type == "model"
    (revision,) = repo.revisions
    assert revision.commit_hash == commit and revision.refs == frozenset({"main"})
    assert sorted(file.file_name for file in revision.files) == [
        "README.md",
        "adapter_config.json",
        "adapter_model.safetensors",
    ]

    for rev in ("main", commit):
        assert snapshot_download(REPO, cache_dir=cache, revision=rev, local_files_only=True) == str(snapshot)
        path = hf_hub_download(REPO, "adapter_model.safetensors", cache_dir=cache, revision=rev, local_files_only=True)
        assert path == str(snapshot / "adapter_model.safetensors")
        assert load_file(path)["base_model.model.layers.0.q_proj.lora_B.weight"].shape == (8, 4)
    readme = hf_hub_download(REPO, "README.md", subfolder="docs", cache_dir=cache, local_files_only=True)
    assert Path(readme).read_text() == "# tiny adapter\n"


def test_lay_out_hf_cache_revisions(tmp_path: Path, adapter: Path) -> None:
    from huggingface_hub import scan_cache_dir

    cache = tmp_path / "hub"
    pinned = "0123456789abcdef0123456789abcdef01234567"
    assert lay_out_hf_cache(cache, REPO, adapter, revision=pinned) == pinned
    assert lay_out_hf_cache(cache, REPO, adapter, revision="v1.0") == default_commit(REPO, "v1.0")
    assert lay_out_hf_cache(cache, REPO, adapter, revision="refs/pr/1", commit=pinned) == pinned
    refs = cache / "models--peftfix-tests--tiny-adapter" / "refs"
    assert sorted(str(p.relative_to(refs)) for p in refs.rglob("*") if p.is_file()) == ["refs/pr/1", "v1.0"]
    info = scan_cache_dir(cache)
    assert info.warnings == []
    assert {rev.commit_hash: set(rev.refs) for rev in next(iter(info.repos)).revisions} == {
        pinned: {"refs/pr/1"},
        default_commit(REPO, "v1.0"): {"v1.0"},
    }
    with pytest.raises(ValueError, match="40"):
        lay_out_hf_cache(cache, REPO, adapter, commit="main")


# ---------------------------------------------------------------------------------------------------------------------
# HubServer


@pytest.fixture
def _online(monkeypatch: pytest.MonkeyPatch) -> None:
    """huggingface_hub online for the test (the suite's conftest turns it offline before it is imported)."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


def test_hub_model_info_and_errors(adapter: Path, hub_server: HubServerFactory) -> None:
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    hub = hub_server({REPO: adapter})
    api = HfApi(endpoint=hub.url, token=False)
    commit = hub.commit(REPO)
    for revision in (None, "main", commit):
        info = api.model_info(REPO, revision=revision)
        assert info.id == REPO and info.sha == commit and info.private is False
        assert [s.rfilename for s in info.siblings or []] == [
            "adapter_config.json",
            "adapter_model.safetensors",
            "docs/README.md",
        ]
    weights = (adapter / "adapter_model.safetensors").read_bytes()
    by_name = {s.rfilename: s for s in api.model_info(REPO, files_metadata=True).siblings or []}
    lfs = by_name["adapter_model.safetensors"].lfs
    assert lfs is not None and lfs.sha256 == hashlib.sha256(weights).hexdigest() and lfs.size == len(weights)
    assert by_name["adapter_config.json"].lfs is None
    assert by_name["adapter_config.json"].blob_id == _git_blob_sha1((adapter / "adapter_config.json").read_bytes())
    tree = {entry.path for entry in api.list_repo_tree(REPO, recursive=True)}
    assert tree == {"adapter_config.json", "adapter_model.safetensors", "docs", "docs/README.md"}
    assert {entry.path for entry in api.list_repo_tree(REPO, path_in_repo="docs")} == {"docs/README.md"}

    with pytest.raises(RepositoryNotFoundError):
        api.model_info("peftfix-tests/missing")
    with pytest.raises(RevisionNotFoundError):
        api.model_info(REPO, revision="v2")


def test_hub_resolve_headers(adapter: Path, hub_server: HubServerFactory) -> None:
    hub = hub_server({REPO: adapter}, patch_hf=False)
    commit = hub.commit(REPO)
    weights = (adapter / "adapter_model.safetensors").read_bytes()
    with _connect(hub) as conn:
        response, _ = _fetch(conn, f"/{REPO}/resolve/main/adapter_model.safetensors", method="HEAD")
        assert response.status == 200
        assert response.getheader("X-Repo-Commit") == commit
        sha256 = hashlib.sha256(weights).hexdigest()
        assert response.getheader("X-Linked-Etag") == response.getheader("ETag") == f'"{sha256}"'
        assert response.getheader("X-Linked-Size") == response.getheader("Content-Length") == str(len(weights))

        response, _ = _fetch(conn, f"/{REPO}/resolve/{commit}/adapter_config.json", method="HEAD")
        config = (adapter / "adapter_config.json").read_bytes()
        assert response.getheader("ETag") == f'"{_git_blob_sha1(config)}"'
        assert response.getheader("X-Linked-Etag") is None

        response, body = _fetch(conn, f"/{REPO}/resolve/main/adapter_model.safetensors", headers={"Range": "bytes=0-7"})
        assert response.status == 206 and body == weights[:8]

        response, _ = _fetch(conn, f"/{REPO}/resolve/main/missing.json")
        assert response.status == 404
        assert response.getheader("X-Error-Code") == "EntryNotFound"
        assert response.getheader("X-Repo-Commit") == commit


@pytest.mark.usefixtures("_online")
def test_hub_download_matches_the_cache_layout(tmp_path: Path, adapter: Path, hub_server: HubServerFactory) -> None:
    from huggingface_hub import hf_hub_download, snapshot_download
    from huggingface_hub.errors import RemoteEntryNotFoundError

    hub = hub_server({REPO: adapter}, patch_hf=False)  # reached through endpoint= only
    downloaded = tmp_path / "downloaded"
    path = hf_hub_download(REPO, "adapter_model.safetensors", cache_dir=downloaded, endpoint=hub.url, token=False)
    assert Path(path).read_bytes() == (adapter / "adapter_model.safetensors").read_bytes()
    assert ("GET", f"/{REPO}/resolve/main/adapter_model.safetensors") in {(r.method, r.path) for r in hub.requests}
    with pytest.raises(RemoteEntryNotFoundError):
        hf_hub_download(REPO, "missing.json", cache_dir=downloaded, endpoint=hub.url, token=False)

    snapshot = snapshot_download(REPO, cache_dir=downloaded, endpoint=hub.url, token=False)
    laid_out = tmp_path / "laid-out"
    commit = lay_out_hf_cache(laid_out, REPO, adapter)
    assert Path(snapshot).name == commit

    def layout(cache: Path) -> dict[str, str]:
        repo_dir = cache / "models--peftfix-tests--tiny-adapter"
        snapshots = (repo_dir / "snapshots").rglob("*")
        links = {str(p.relative_to(repo_dir)): os.readlink(p) for p in snapshots if p.is_symlink()}
        blobs = {f"blobs/{p.name}": p.read_bytes().hex() for p in (repo_dir / "blobs").iterdir()}
        return {**links, **blobs, "refs/main": (repo_dir / "refs" / "main").read_text()}

    assert layout(downloaded) == layout(laid_out)


def test_hub_download_through_patched_constants(tmp_path: Path, adapter: Path, hub_server: HubServerFactory) -> None:
    from huggingface_hub import constants, snapshot_download

    hub = hub_server({REPO: adapter})
    assert hub.url == constants.ENDPOINT
    snapshot = Path(snapshot_download(REPO, cache_dir=tmp_path / "cache", token=False))
    assert (snapshot / "docs" / "README.md").read_text() == "# tiny adapter\n"
    assert f"/api/models/{REPO}/revision/main" in {r.path for r in hub.requests}


def test_hub_token(tmp_path: Path, adapter: Path, hub_server: HubServerFactory) -> None:
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError

    hub = hub_server({REPO: adapter}, token="hf_test_token")
    assert HfApi(endpoint=hub.url, token="hf_test_token").model_info(REPO).sha == hub.commit(REPO)
    path = hf_hub_download(REPO, "adapter_config.json", cache_dir=tmp_path, token="hf_test_token")
    assert json.loads(Path(path).read_text())["r"] == 4

    with pytest.raises(GatedRepoError):
        HfApi(endpoint=hub.url, token=False).model_info(REPO)
    with pytest.raises(HfHubHTTPError) as excinfo:
        HfApi(endpoint=hub.url, token="hf_wrong").model_info(REPO)
    assert excinfo.value.response.status_code == 401
    with pytest.raises(GatedRepoError):
        hf_hub_download(REPO, "adapter_model.safetensors", cache_dir=tmp_path / "other", token=False)
    assert hub.env() == {"HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0", "HF_TOKEN": "hf_test_token"}


# ---------------------------------------------------------------------------------------------------------------------
# S3 through moto


def test_s3_upload_and_ranged_get(adapter: Path, s3_server: S3Server, s3_env: dict[str, str]) -> None:
    keys = s3_server.upload_tree("peftfix-upload", adapter, "adapters/tiny/")
    assert keys == [
        "adapters/tiny/adapter_config.json",
        "adapters/tiny/adapter_model.safetensors",
        "adapters/tiny/docs/README.md",
    ]
    weights = (adapter / "adapter_model.safetensors").read_bytes()
    client = s3_server.client()
    got = client.get_object(Bucket="peftfix-upload", Key=keys[1], Range="bytes=0-7")
    assert got["Body"].read() == weights[:8]
    assert got["ContentRange"] == f"bytes 0-7/{len(weights)}"
    head = client.head_object(Bucket="peftfix-upload", Key=keys[1])
    assert head["ContentLength"] == len(weights)
    assert head["ETag"].startswith('"') and len(head["ETag"]) > 2

    # The environment alone is enough for a client that reads it (as object_store's from_env does).
    import boto3

    assert os.environ["AWS_ENDPOINT_URL"] == s3_server.endpoint == s3_env["AWS_ENDPOINT_URL"]
    assert os.environ["AWS_ALLOW_HTTP"] == "true"
    env_client = boto3.client("s3")
    try:
        listed = env_client.list_objects_v2(Bucket="peftfix-upload", Prefix="adapters/")
        assert sorted(obj["Key"] for obj in listed["Contents"]) == keys
    finally:
        env_client.close()


def test_s3_server_is_one_per_process(s3_server: S3Server) -> None:
    with pytest.raises(RuntimeError, match="already runs"):
        S3Server().start()
    env = s3_server.subprocess_env({"AWS_PROFILE": "dev", "AWS_SESSION_TOKEN": "x", "PATH": "/bin"})
    assert env["PATH"] == "/bin"
    assert "AWS_PROFILE" not in env and "AWS_SESSION_TOKEN" not in env
    assert env["AWS_ENDPOINT_URL"] == s3_server.endpoint
