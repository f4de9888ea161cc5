"""Fixtures for the remote-storage tests: servers of ``servers.py`` started and stopped around tests.

Registered once for the whole suite by the root ``tests/conftest.py`` (one moto server per process: its state is
global), so the checkpoint tests and the server tests share them.

- ``range_server(root, mode="normal", delay=0.0) -> RangeServer``: factory, each server stopped after the test.
- ``hub_server(repos, token=None, *, mode="normal", delay=0.0, patch_hf=True) -> HubServer``: factory; with
  ``patch_hf`` the server also becomes ``huggingface_hub``'s endpoint for the test, online (see below).
- ``s3_server``: one :class:`S3Server` (moto) for the session; tests use their own bucket names.
- ``s3_env``: ``os.environ`` for the test with every ``AWS_*`` variable of the outer environment removed and
  :meth:`S3Server.env` set (plus no config/credentials files, no instance metadata); returns the variables set.

``huggingface_hub`` reads ``HF_ENDPOINT`` and ``HF_HUB_OFFLINE`` when imported (and the suite's root conftest
sets ``HF_HUB_OFFLINE=1`` before that), so ``patch_hf`` sets ``huggingface_hub.constants.ENDPOINT``,
``HUGGINGFACE_CO_URL_TEMPLATE`` and ``HF_HUB_OFFLINE`` for the test instead of environment variables.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from remote.servers import HubServer, Mode, RangeServer, S3Server, loopback_no_proxy

RangeServerFactory = Callable[..., RangeServer]
HubServerFactory = Callable[..., HubServer]


@pytest.fixture
def range_server() -> Iterator[RangeServerFactory]:
    """Start a :class:`RangeServer` of ``root``: ``range_server(root, mode="normal", delay=0.0)``."""
    servers: list[RangeServer] = []

    def start(root: Path | str, mode: Mode = "normal", delay: float = 0.0) -> RangeServer:
        server = RangeServer(root, mode=mode, delay=delay)
        servers.append(server)
        return server.start()

    yield start
    for server in reversed(servers):
        server.stop()


@pytest.fixture
def hub_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServerFactory]:
    """Start a :class:`HubServer`: ``hub_server(repos, token=None, *, mode="normal", delay=0.0, patch_hf=True)``.

    With ``patch_hf``, in-process ``huggingface_hub`` calls without ``endpoint=`` reach this server and offline
    mode is off, until the end of the test (the last server started with ``patch_hf`` wins); ``NO_PROXY`` gets
    127.0.0.1 too.
    """
    servers: list[HubServer] = []

    def start(
        repos: Mapping[str, Path | str],
        token: str | None = None,
        *,
        mode: Mode = "normal",
        delay: float = 0.0,
        patch_hf: bool = True,
    ) -> HubServer:
        server = HubServer(repos, token, mode=mode, delay=delay)
        servers.append(server)
        server.start()
        if patch_hf:
            from huggingface_hub import constants

            for name, value in server.hf_constants().items():
                monkeypatch.setattr(constants, name, value)
            for name, value in loopback_no_proxy().items():
                monkeypatch.setenv(name, value)
        return server

    yield start
    for server in reversed(servers):
        server.stop()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 for the whole session (moto state is process-wide: one server at a time)."""
    pytest.importorskip("moto.server", reason="S3 tests need moto[server]")
    pytest.importorskip("boto3", reason="S3 tests need boto3")
    with S3Server() as server:
        yield server


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point boto3 and ``object_store`` (``AmazonS3Builder::from_env``) of this process at ``s3_server``.

    Removes every ``AWS_*`` variable first (a profile, a session token, another endpoint or ``AWS_BUCKET`` of the
    developer's shell would change what clients do), then sets :meth:`S3Server.env` and
    :meth:`S3Server.isolation_env` (no AWS config or credentials file, no instance metadata, no proxy for
    127.0.0.1). Subprocesses inherit
    it; :meth:`S3Server.subprocess_env` builds the same environment without ``monkeypatch``. Returns what it set.
    """
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    env = {**s3_server.env(), **s3_server.isolation_env()}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env
