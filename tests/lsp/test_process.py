"""`peftfix server` as a process: stdout carries LSP messages and nothing else, the exit status is the one LSP asks
for (0 after `shutdown`, 1 without), a client that goes away does not leave the server running, and the other
commands do not load pygls."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from lsp.conftest import SERVER_COMMAND

TIMEOUT = 60
_HEADER = re.compile(rb"Content-Length: (\d+)\r\n(?:[\w-]+: [^\r\n]*\r\n)*\r\n")


def frame(method: str, params: Any = None, id: int | None = None) -> bytes:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params
    if id is not None:
        message["id"] = id
    body = json.dumps(message).encode("utf-8")
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def parse_stream(data: bytes) -> list[dict[str, Any]]:
    """The messages of an LSP byte stream; fails on any byte that is not part of a framed message."""
    messages, position = [], 0
    while position < len(data):
        header = _HEADER.match(data, position)
        assert header is not None, f"not an LSP message at byte {position}: {data[position : position + 80]!r}"
        start = header.end()
        end = start + int(header.group(1))
        messages.append(json.loads(data[start:end]))
        position = end
    return messages


def initialize(root: Path) -> bytes:
    params = {"processId": None, "rootUri": root.as_uri(), "capabilities": {}}
    return frame("initialize", params, id=1) + frame("initialized", {})


def run_server(messages: bytes, tmp_path: Path, close_stdin: bool = False) -> tuple[int, bytes, bytes]:
    """(exit status, stdout, stderr) of a server sent ``messages``. Its stdin stays open, as an editor keeps it
    (the server must leave on `exit` alone), unless ``close_stdin``. Output goes to files: nothing can block."""
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        server = subprocess.Popen(SERVER_COMMAND, stdin=subprocess.PIPE, stdout=stdout, stderr=stderr)
        assert server.stdin is not None
        try:
            server.stdin.write(messages)
            server.stdin.flush()
            if close_stdin:
                server.stdin.close()
            status = server.wait(timeout=TIMEOUT)
        finally:
            server.kill()
            server.wait()
            if not server.stdin.closed:
                server.stdin.close()
    return status, out.read_bytes(), err.read_bytes()


def test_stdout_holds_only_lsp_messages_and_shutdown_then_exit_is_status_0(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.peftfix]\n", encoding="utf-8")
    path = tmp_path / "evaluate.py"
    text = (
        "from peft import LoraConfig, PeftModel, get_peft_model\n"
        "base = load()\n"
        "model = get_peft_model(base, LoraConfig())\n"
        "model = PeftModel.from_pretrained(model, 'adapter')\n"
    )
    opened = {"textDocument": {"uri": path.as_uri(), "languageId": "python", "version": 1, "text": text}}
    stdin = initialize(tmp_path) + frame("textDocument/didOpen", opened) + frame("shutdown", id=2) + frame("exit")

    status, stdout, stderr = run_server(stdin, tmp_path)

    assert status == 0, stderr.decode()
    messages = parse_stream(stdout)
    replies = {message["id"]: message for message in messages if "id" in message}
    assert replies[1]["result"]["serverInfo"]["name"] == "peftfix"
    assert replies[2] == {"jsonrpc": "2.0", "id": 2, "result": None}
    (diagnostics,) = [
        message["params"] for message in messages if message.get("method") == "textDocument/publishDiagnostics"
    ]
    assert [diagnostic["code"] for diagnostic in diagnostics["diagnostics"]] == ["PF201"]


def test_exit_without_shutdown_is_status_1_and_a_closed_stdin_ends_the_server(tmp_path: Path) -> None:
    assert run_server(initialize(tmp_path) + frame("exit"), tmp_path)[0] == 1
    # The client died: stdin ends without `exit`. The server must not outlive it.
    assert run_server(initialize(tmp_path), tmp_path, close_stdin=True)[0] == 1


def test_other_commands_do_not_load_pygls() -> None:
    # `--help` lists every command, so it imports each command's module (peftfix.cli.server included).
    script = textwrap.dedent("""\
        import json, sys
        from click.testing import CliRunner
        from peftfix.cli import cli
        output = CliRunner().invoke(cli, ["--help"]).output
        print(json.dumps({"help": output, "modules": sorted(sys.modules)}))
        """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=TIMEOUT, check=True)
    result = json.loads(done.stdout)
    assert re.search(r"^\s+server\s+Run the language server", result["help"], re.MULTILINE), result["help"]
    assert "peftfix.cli.server" in result["modules"]
    assert [module for module in result["modules"] if module.split(".")[0] in ("pygls", "lsprotocol", "cattrs")] == []
