"""`peftfix server` end to end: a real LSP client drives the server process over stdio.

Diagnostics follow the document through open, incremental change and save; the workspace's pyproject.toml
applies; quick fixes and "fix all" edit the text exactly as `peftfix --apply` edits the file; hover shows the
rule's documentation; notebooks get their findings on the right cell; a broken file gets PF000; non-ASCII text
before a finding is counted in the negotiated position encoding.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from lsprotocol import types
from pytest_lsp import LanguageClient

from lsp.conftest import forget, open_python, published
from lsp.edits import apply_text_edits, code_units, edits_by_uri
from peftfix.about import rule_url
from peftfix.catalog import code_info
from peftfix.cli import cli

# The session's server lives in the session's event loop.
pytestmark = pytest.mark.asyncio(loop_scope="session")

# PF201: a stray get_peft_model before loading the trained adapter (safe fix: drop it, load onto the base).
STRAY = textwrap.dedent("""\
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained("base")
    model = get_peft_model(base, LoraConfig(task_type="CAUSAL_LM"))
    model = PeftModel.from_pretrained(model, "adapter")
    """)
STRAY_LINE = 4  # 0-based: `model = get_peft_model(...)`
CLEAN = textwrap.dedent("""\
    from peft import LoraConfig
    config = LoraConfig(r=8, target_modules=["q_proj", "v_proj"])
    """)
# Two safe fixes in one file: PF101 (AutoModel for a causal LM) and PF301 (`dropout` is not a Linear layer).
TWO_FIXES = textwrap.dedent("""\
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModel

    model = AutoModel.from_pretrained("base")
    model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", target_modules=["q_proj", "dropout"]))
    """)
# PF202 with an unsafe fix (re-wrapping a loaded adapter), and PF101 on a model built from a config, whose fix is
# display-only.
UNSAFE_AND_DISPLAY_ONLY = textwrap.dedent("""\
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaModel

    base = AutoModelForCausalLM.from_pretrained("base")
    model = PeftModel.from_pretrained(base, "adapter")
    model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM"))

    bare = LlamaModel(LlamaConfig())
    bare = get_peft_model(bare, LoraConfig(task_type="CAUSAL_LM"))
    """)


def apply_with_cli(path: Path, text: str) -> str:
    """What `peftfix --apply` makes of a file holding ``text`` (the command run in this process: a second
    interpreter would cost seconds)."""
    path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(cli, ["--apply", "--no-cache", str(path)])
    assert result.exit_code in (0, 1), result.output
    return path.read_text(encoding="utf-8")


async def code_actions(
    client: LanguageClient, uri: str, at: types.Range, only: list[str] | None = None
) -> list[types.CodeAction]:
    result = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=at,
            context=types.CodeActionContext(diagnostics=[], only=only),
        )
    )
    actions = list(result or [])
    assert all(isinstance(action, types.CodeAction) for action in actions)
    return actions


def whole(text: str) -> types.Range:
    return types.Range(
        start=types.Position(line=0, character=0), end=types.Position(line=len(text.splitlines()), character=0)
    )


async def test_advertises_sync_code_actions_and_hover(client: LanguageClient) -> None:
    capabilities = client.initialize_result.capabilities
    sync = capabilities.text_document_sync
    assert isinstance(sync, types.TextDocumentSyncOptions)
    assert sync.open_close and sync.change == types.TextDocumentSyncKind.Incremental and sync.save
    (selector,) = capabilities.notebook_document_sync.notebook_selector
    assert selector.notebook.notebook_type == "jupyter-notebook"
    assert [cell.language for cell in selector.cells] == ["python"]
    assert set(capabilities.code_action_provider.code_action_kinds) == {"quickfix", "source.fixAll.peftfix"}
    assert capabilities.hover_provider
    assert capabilities.position_encoding == types.PositionEncodingKind.Utf16
    assert client.initialize_result.server_info.name == "peftfix"


async def test_diagnostics_follow_open_and_incremental_change(client: LanguageClient, workspace: Path) -> None:
    path = workspace / "evaluate.py"
    uri = path.as_uri()
    (diagnostic,) = await open_python(client, path, STRAY)
    assert diagnostic.code == "PF201"
    assert diagnostic.source == "peftfix"
    assert diagnostic.severity == types.DiagnosticSeverity.Error
    assert diagnostic.code_description is not None and diagnostic.code_description.href == rule_url("PF201")
    assert "`get_peft_model` wraps the model in a new, untrained LoRA adapter" in diagnostic.message
    line = STRAY.splitlines()[STRAY_LINE]
    assert diagnostic.range == types.Range(
        start=types.Position(line=STRAY_LINE, character=line.index("get_peft_model")),
        end=types.Position(line=STRAY_LINE, character=len(line)),
    )

    # An incremental change (a line inserted above) moves the finding with the text.
    forget(client, uri)
    top = types.Range(start=types.Position(line=0, character=0), end=types.Position(line=0, character=0))
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[types.TextDocumentContentChangePartial(range=top, text="# evaluation\n")],
        )
    )
    ((moved,),) = await published(client, uri)
    assert moved.code == "PF201" and moved.range.start.line == STRAY_LINE + 1

    # The whole text replaced by a clean one: the diagnostics are cleared.
    forget(client, uri)
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=3),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=CLEAN)],
        )
    )
    assert await published(client, uri) == [[]]

    # Closing the document clears what it showed.
    forget(client, uri)
    client.text_document_did_close(
        types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    assert await published(client, uri) == [[]]


async def test_pyproject_settings_apply_and_are_read_again_on_save(client: LanguageClient, workspace: Path) -> None:
    (workspace / "pyproject.toml").write_text('[tool.peftfix]\nignore = ["PF201"]\n', encoding="utf-8")
    path = workspace / "evaluate.py"
    assert await open_python(client, path, STRAY) == []

    (workspace / "pyproject.toml").write_text("[tool.peftfix]\n", encoding="utf-8")
    forget(client, path.as_uri())
    client.text_document_did_save(
        types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=path.as_uri()))
    )
    ((diagnostic,),) = await published(client, path.as_uri())
    assert diagnostic.code == "PF201"


async def test_an_invalid_configuration_is_shown_once_and_checking_resumes_when_fixed(
    client: LanguageClient, workspace: Path
) -> None:
    pyproject = workspace / "pyproject.toml"
    pyproject.write_text('[tool.peftfix]\nselect = ["PF9999"]\n', encoding="utf-8")
    path = workspace / "evaluate.py"
    shown = len(client.messages)
    assert await open_python(client, path, STRAY) == []
    (message,) = client.messages[shown:]
    assert message.type == types.MessageType.Error
    assert message.message.startswith("peftfix: invalid configuration:") and "PF9999" in message.message

    # Typing on: the same problem is not shown again on every change.
    forget(client, path.as_uri())
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=path.as_uri(), version=2),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=STRAY + "\n")],
        )
    )
    assert await published(client, path.as_uri()) == [[]]
    assert len(client.messages) == shown + 1

    pyproject.write_text("[tool.peftfix]\n", encoding="utf-8")
    forget(client, path.as_uri())
    client.text_document_did_save(
        types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=path.as_uri()))
    )
    ((diagnostic,),) = await published(client, path.as_uri())
    assert diagnostic.code == "PF201"


async def test_a_file_the_document_imports_is_read_again_from_disk(client: LanguageClient, workspace: Path) -> None:
    helpers = workspace / "helpers.py"
    main = workspace / "main.py"
    helpers.write_text(
        'from peft import PeftModel\n\n\ndef load_adapter(model):\n    return PeftModel.from_pretrained(model, "a")\n',
        encoding="utf-8",
    )
    uses = STRAY.replace('model = PeftModel.from_pretrained(model, "adapter")', "model = load_adapter(model)")
    uses = "from helpers import load_adapter\n" + uses
    (diagnostic,) = await open_python(client, main, uses)
    assert diagnostic.code == "PF201"  # the adapter is loaded in helpers.py, onto the stray wrapper

    # helpers.py changed on disk (not open in the editor) so that it loads nothing; main.py saved.
    helpers.write_text("def load_adapter(model):\n    return model\n", encoding="utf-8")
    forget(client, main.as_uri())
    client.text_document_did_save(
        types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=main.as_uri()))
    )
    assert await published(client, main.as_uri()) == [[]]


async def test_saving_a_file_checks_the_open_files_that_import_it_again(
    client: LanguageClient, workspace: Path
) -> None:
    helpers = workspace / "helpers.py"
    main = workspace / "main.py"
    loads = (
        'from peft import PeftModel\n\n\ndef load_adapter(model):\n    return PeftModel.from_pretrained(model, "a")\n'
    )
    assert await open_python(client, helpers, loads) == []
    uses = "from helpers import load_adapter\n" + STRAY.replace(
        'model = PeftModel.from_pretrained(model, "adapter")', "model = load_adapter(model)"
    )
    (diagnostic,) = await open_python(client, main, uses)
    assert diagnostic.code == "PF201"

    # helpers.py edited in the editor and saved: main.py, which did not change, is checked again.
    no_load = "def load_adapter(model):\n    return model\n"
    helpers.write_text(no_load, encoding="utf-8")
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=helpers.as_uri(), version=2),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=no_load)],
        )
    )
    forget(client, main.as_uri())
    client.text_document_did_save(
        types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=helpers.as_uri()))
    )
    assert await published(client, main.as_uri()) == [[]]


async def test_quick_fix_edits_as_apply_does(client: LanguageClient, workspace: Path) -> None:
    path = workspace / "evaluate.py"
    (diagnostic,) = await open_python(client, path, STRAY)
    actions = await code_actions(client, path.as_uri(), diagnostic.range, only=["quickfix"])
    (action,) = actions
    assert action.kind == types.CodeActionKind.QuickFix
    assert action.is_preferred
    assert action.title == "peftfix (PF201): Remove the stray `get_peft_model` call"
    assert [each.code for each in action.diagnostics or []] == ["PF201"]
    assert action.edit is not None
    # VS Code takes versioned edits: the server names the version it checked.
    (change,) = action.edit.document_changes or []
    assert change.text_document.uri == path.as_uri() and change.text_document.version == 1

    fixed = apply_text_edits(STRAY, edits_by_uri(action.edit)[path.as_uri()])
    assert fixed == apply_with_cli(workspace / "copy.py", STRAY)
    assert "get_peft_model" not in fixed


async def test_fix_all_edits_as_apply_does(client: LanguageClient, workspace: Path) -> None:
    path = workspace / "train.py"
    diagnostics = await open_python(client, path, TWO_FIXES)
    assert sorted(str(diagnostic.code) for diagnostic in diagnostics) == ["PF101", "PF301"]

    (action,) = await code_actions(client, path.as_uri(), whole(TWO_FIXES), only=["source.fixAll"])
    assert action.kind == "source.fixAll.peftfix"
    assert action.edit is not None
    fixed = apply_text_edits(TWO_FIXES, edits_by_uri(action.edit)[path.as_uri()])
    assert fixed == apply_with_cli(workspace / "copy.py", TWO_FIXES)
    assert "AutoModelForCausalLM" in fixed and "dropout" not in fixed

    # Unasked for a kind, the client gets the quick fixes and, as something is fixable, "fix all".
    kinds = [action.kind for action in await code_actions(client, path.as_uri(), whole(TWO_FIXES))]
    assert sorted(kinds) == ["quickfix", "quickfix", "source.fixAll.peftfix"]


async def test_unsafe_fix_is_marked_and_display_only_fix_is_not_offered(
    client: LanguageClient, workspace: Path
) -> None:
    path = workspace / "rewrap.py"
    diagnostics = await open_python(client, path, UNSAFE_AND_DISPLAY_ONLY)
    assert sorted(str(diagnostic.code) for diagnostic in diagnostics) == ["PF101", "PF202"]

    (action,) = await code_actions(client, path.as_uri(), whole(UNSAFE_AND_DISPLAY_ONLY))
    assert action.kind == types.CodeActionKind.QuickFix
    assert action.title.startswith("peftfix (PF202): ") and action.title.endswith(" (unsafe)")
    assert not action.is_preferred
    assert action.edit is not None
    fixed = apply_text_edits(UNSAFE_AND_DISPLAY_ONLY, edits_by_uri(action.edit)[path.as_uri()])
    assert 'PeftModel.from_pretrained(base, "adapter", is_trainable=True)' in fixed


async def test_hover_shows_the_rule_documentation(client: LanguageClient, workspace: Path) -> None:
    path = workspace / "evaluate.py"
    (diagnostic,) = await open_python(client, path, STRAY)
    hover = await client.text_document_hover_async(
        types.HoverParams(
            text_document=types.TextDocumentIdentifier(uri=path.as_uri()), position=diagnostic.range.start
        )
    )
    assert hover is not None and isinstance(hover.contents, types.MarkupContent)
    assert hover.contents.kind == types.MarkupKind.Markdown
    info = code_info("PF201")
    assert info is not None
    assert hover.contents.value.startswith(f"### PF201 ({info.name})")
    assert info.documentation.strip() in hover.contents.value
    assert rule_url("PF201") in hover.contents.value
    assert hover.range == diagnostic.range

    elsewhere = types.Position(line=0, character=0)
    assert (
        await client.text_document_hover_async(
            types.HoverParams(text_document=types.TextDocumentIdentifier(uri=path.as_uri()), position=elsewhere)
        )
        is None
    )


async def test_syntax_error_is_pf000_and_the_server_goes_on(client: LanguageClient, workspace: Path) -> None:
    path = workspace / "broken.py"
    uri = path.as_uri()
    (diagnostic,) = await open_python(client, path, "def f(:\n    pass\n")
    assert diagnostic.code == "PF000"
    assert diagnostic.range.start.line == 0

    forget(client, uri)
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=STRAY)],
        )
    )
    ((diagnostic,),) = await published(client, uri)
    assert diagnostic.code == "PF201"


async def test_non_ascii_before_a_finding_counts_utf16_units(client: LanguageClient, workspace: Path) -> None:
    await check_non_ascii_columns(client, workspace, types.PositionEncodingKind.Utf16)


async def test_non_ascii_before_a_finding_counts_utf8_bytes_when_negotiated(
    neovim_client: LanguageClient, workspace: Path
) -> None:
    await check_non_ascii_columns(neovim_client, workspace, types.PositionEncodingKind.Utf8)


async def check_non_ascii_columns(client: LanguageClient, workspace: Path, encoding: str) -> None:
    """A finding after `é` (2 UTF-8 bytes, 1 UTF-16 unit) and `😀` (4 bytes, 2 units) on its line: its range and
    its fix's edits are counted in ``encoding``, the one the client's capabilities made the server choose."""
    assert client.initialize_result.capabilities.position_encoding == encoding
    text = TWO_FIXES.replace(
        'model = AutoModel.from_pretrained("base")', 'note = "é😀"; model = AutoModel.from_pretrained("base")'
    )
    path = workspace / "train.py"
    diagnostics = await open_python(client, path, text)
    (diagnostic,) = [diagnostic for diagnostic in diagnostics if diagnostic.code == "PF101"]
    line_number = 3
    line = text.splitlines()[line_number]
    start = code_units(line[: line.index("AutoModel.")], encoding)
    assert diagnostic.range == types.Range(
        start=types.Position(line=line_number, character=start),
        end=types.Position(line=line_number, character=start + len("AutoModel")),
    )

    (action,) = await code_actions(client, path.as_uri(), diagnostic.range, only=["quickfix"])
    assert action.edit is not None
    # Versioned edits for a client that takes them (VS Code), plain `changes` for one that does not (Neovim).
    versioned = encoding == types.PositionEncodingKind.Utf16
    assert (action.edit.document_changes is not None, action.edit.changes is not None) == (versioned, not versioned)
    fixed = apply_text_edits(text, edits_by_uri(action.edit)[path.as_uri()], encoding)
    assert fixed == text.replace("AutoModel", "AutoModelForCausalLM")
