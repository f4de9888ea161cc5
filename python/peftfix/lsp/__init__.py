"""`peftfix server`: the source checks in an editor, through the Language Server Protocol (stdio, pygls).

- :mod:`~peftfix.lsp.server`: the server, its capabilities and handlers (open, change, save, close of Python
  files and Jupyter notebooks; code actions; hover) and what it remembers between messages.
- :mod:`~peftfix.lsp.documents`: the open documents that make one checked file (a Python file, or a notebook's
  cells), and its findings and fixed texts by document.
- :mod:`~peftfix.lsp.checking`: the bridge to the checker `peftfix check -` runs, with the configuration
  `peftfix check` finds for the file's path; no LSP in it.
- :mod:`~peftfix.lsp.notebooks`: a notebook's cells as the nbformat-4 JSON the checker reads, and back.
- :mod:`~peftfix.lsp.convert`: peftfix diagnostics and fixes as LSP diagnostics, ranges and text edits.
- :mod:`~peftfix.lsp.documentation`: a rule's documentation as hover Markdown.

Only `peftfix server` imports this package (pygls and lsprotocol take a second to import): the command module,
``peftfix.cli.server``, imports it when the command runs.
"""
