"""``# noqa`` and ``# peftfix: ignore[...]`` comments: which codes are silenced on which line."""

from __future__ import annotations

import io
import re
import tokenize
from typing import Optional

ALL = frozenset({"*"})
_NOQA = re.compile(r"#\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]+(?:[\s,]+[A-Z]+[0-9]+)*))?", re.IGNORECASE)
_MARKER = re.compile(r"noqa|peftfix\s*:", re.IGNORECASE)
_IGNORE = re.compile(r"#\s*peftfix:\s*ignore(?:\[(?P<codes>[^\]]*)\])?", re.IGNORECASE)


def suppressions(source: str) -> dict[int, frozenset]:
    """Map a 1-based line to the codes silenced there (``ALL`` for a bare ``# noqa``)."""
    silenced: dict[int, frozenset] = {}
    if not _MARKER.search(source):  # tokenizing a large file costs more than checking it: skip when pointless
        return silenced
    for line, comment in _comments(source):
        codes = _codes_in(comment)
        if codes is not None:
            silenced[line] = silenced.get(line, frozenset()) | codes
    return silenced


def is_suppressed(code: str, line: int, silenced: dict[int, frozenset]) -> bool:
    codes = silenced.get(line)
    return codes is not None and ("*" in codes or code in codes)


def _codes_in(comment: str) -> Optional[frozenset]:
    for pattern in (_NOQA, _IGNORE):
        match = pattern.search(comment)
        if match:
            codes = match.group("codes")
            if not codes:
                return ALL
            return frozenset(code.upper() for code in re.split(r"[\s,]+", codes.strip()) if code)
    return None


def _comments(source: str):
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.COMMENT:
                yield token.start[0], token.string
    except (tokenize.TokenError, SyntaxError, IndentationError):
        # The file parsed with libcst, so this is rare; fall back to a per-line scan.
        for number, text in enumerate(source.splitlines(), start=1):
            if "#" in text:
                yield number, text[text.index("#") :]
