"""Turning a file's bytes into text the way Python does (BOM, PEP 263 coding cookie, else UTF-8)."""

from __future__ import annotations

import io
import tokenize

from peftfix.diagnostics import Location


class SourceError(Exception):
    """The bytes are not Python source we can check (binary, undecodable, or unparsable)."""

    def __init__(self, message: str, location: Location = Location(1, 1)):
        super().__init__(message)
        self.location = location


def decode(data: bytes) -> tuple[str, str]:
    """(text, encoding). Binary input is refused."""
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
