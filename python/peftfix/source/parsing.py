"""Parsing checked code with CPython's parser, quietly."""

from __future__ import annotations

import ast
import warnings


def parse_python(source: str, filename: str = "<unknown>") -> ast.Module:
    """``ast.parse`` without the warnings CPython emits about the checked code (an invalid escape sequence is a
    SyntaxWarning printed to stderr since 3.12): they are the user's code's business, not peftfix's output."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ast.parse(source, filename=filename)
