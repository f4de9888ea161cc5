"""A real LSP client (pytest-lsp, on pygls) driving `python -m peftfix server` over stdio.

One server process per test session (per xdist worker): starting one costs seconds (lsprotocol alone takes a
second to import), a check milliseconds. It is initialised with Visual Studio Code's capabilities plus notebook
sync and UTF-16 positions (what VS Code negotiates), and shut down with `shutdown` + `exit` at the end. Each test
works in a project directory of its own (its own pyproject.toml): the server finds the configuration of each file
from its path, as `peftfix check` does.
"""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

SERVER_COMMAND = [sys.executable, "-m", "peftfix", "server"]
# Generous for a loaded CI machine; a check answers in milliseconds.
TIMEOUT = 20.0


@pytest.fixture(scope="session")
def workspace_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("lsp-workspace")


@pytest.fixture
def workspace(workspace_root: Path, request: pytest.FixtureRequest) -> Path:
    """This test's project: a pyproject.toml configuring peftfix (nothing changed), so that no configuration
    above the temporary directory applies."""
    project = workspace_root / re.sub(r"\W", "_", request.node.name)
    project.mkdir()
    (project / "pyproject.toml").write_text("[tool.peftfix]\n", encoding="utf-8")
    return project


def vscode_capabilities() -> types.ClientCapabilities:
    capabilities = client_capabilities("visual-studio-code")
    capabilities.general = types.GeneralClientCapabilities(position_encodings=[types.PositionEncodingKind.Utf16])
    capabilities.notebook_document = types.NotebookDocumentClientCapabilities(
        synchronization=types.NotebookDocumentSyncClientCapabilities()
    )
    return capabilities


async def _session(client: LanguageClient, root: Path, capabilities: types.ClientCapabilities):
    """Initialise ``client`` (``initialize_result``: the server's answer), and shut the server down after."""
    client.initialize_result = await client.initialize_session(
        types.InitializeParams(
            capabilities=capabilities,
            root_uri=root.as_uri(),
            workspace_folders=[types.WorkspaceFolder(uri=root.as_uri(), name="workspace")],
        )
    )
    yield
    await client.shutdown_session()


@pytest_lsp.fixture(scope="session", config=ClientServerConfig(server_command=SERVER_COMMAND))
async def client(lsp_client: LanguageClient, workspace_root: Path):
    async for _ in _session(lsp_client, workspace_root, vscode_capabilities()):
        yield


@pytest_lsp.fixture(scope="session", config=ClientServerConfig(server_command=SERVER_COMMAND))
async def neovim_client(lsp_client: LanguageClient, workspace_root: Path):
    """A second server, for a client with Neovim 0.11's capabilities: it prefers UTF-8 positions and takes
    workspace edits as plain `changes` (no versioned `documentChanges`)."""
    async for _ in _session(lsp_client, workspace_root, client_capabilities("neovim@v0.11.0")):
        yield


async def published(client: LanguageClient, *uris: str) -> list[list[types.Diagnostic]]:
    """The diagnostics next published for each of ``uris``; call :func:`forget` on them before the message that
    makes the server publish (publishing may come before this coroutine first runs)."""

    async def all_published() -> None:
        while not all(uri in client.diagnostics for uri in uris):
            await asyncio.sleep(0.005)

    await asyncio.wait_for(all_published(), TIMEOUT)
    return [list(client.diagnostics[uri]) for uri in uris]


def forget(client: LanguageClient, *uris: str) -> None:
    for uri in uris:
        client.diagnostics.pop(uri, None)


async def open_python(client: LanguageClient, path: Path, text: str, version: int = 1) -> list[types.Diagnostic]:
    """Open ``path`` holding ``text`` (written to disk too, as an editor opens a saved file); its diagnostics."""
    path.write_text(text, encoding="utf-8")
    uri = path.as_uri()
    forget(client, uri)
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="python", version=version, text=text)
        )
    )
    (diagnostics,) = await published(client, uri)
    return diagnostics
