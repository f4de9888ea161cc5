"""Turning a file's bytes into text the way Python does (BOM, PEP 263 coding cookie, else UTF-8)."""

from __future__ import annotations

import codecs
import io
import tokenize

from peftfix.diagnostics import Location


class SourceError(Exception):
    """The bytes are not Python source we can check (binary, undecodable, or unparsable)."""

    def __init__(self, message: str, location: Location = Location(1, 1)):
        super().__init__(message)
        self.location = location


# Longest first: a UTF-32-LE mark starts with the UTF-16-LE one.
WIDE_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)
# Codecs whose encoder carries state from one character to the next: text encoded in pieces is not the text
# encoded whole, so an edit would change bytes outside it.
STATEFUL_CODECS = ("utf_7", "utf_16", "utf_32", "iso2022", "hz")


def rewrites_faithfully(data: bytes, text: str, encoding: str) -> bool:
    """Whether text decoded from ``data`` can be edited and encoded back without changing a byte outside the
    edits: the codec is stateless and decoding then encoding gives ``data`` back (not so for
    ``raw_unicode_escape``, where ``\\u00e9`` comes back as one byte)."""
    name = codecs.lookup(encoding).name.replace("-", "_")
    if name.startswith(STATEFUL_CODECS):
        return False
    try:
        return text.encode(encoding) == data
    except UnicodeError:
        return False


def decode(data: bytes) -> tuple[str, str]:
    """(text, encoding). Binary input is refused."""
    wide = next((name for bom, name in WIDE_BOMS if data.startswith(bom)), None)
    if wide is not None:
        raise SourceError(
            f"{wide} text (byte-order mark): Python reads source as UTF-8 or the ASCII-compatible encoding a "
            "coding cookie names, so CPython cannot run this file; not checked (convert it to UTF-8)"
        )
    if b"\x00" in data:
        raise SourceError("binary file (contains NUL bytes); not Python source")
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        return data.decode(encoding), encoding
    except (SyntaxError, LookupError) as error:
        # detect_encoding also gives up on undecodable bytes in the first two lines: name the byte then.
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as undecodable:
            raise _undecodable(data, undecodable) from None
        raise SourceError(f"cannot determine the file's encoding: {error}") from None
    except UnicodeDecodeError as error:
        raise _undecodable(data, error) from None


def _undecodable(data: bytes, error: UnicodeDecodeError) -> SourceError:
    line = data[: error.start].count(b"\n") + 1
    return SourceError(
        f"not valid {error.encoding} text (byte 0x{data[error.start]:02x} at offset {error.start}); not checked",
        Location(line, 1),
    )
