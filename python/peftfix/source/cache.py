"""The check cache (``.peftfix_cache/``): a second run on an unchanged tree analyses nothing.

One entry per analysed file, keyed by what the analysis depends on: peftfix's version and library model, the
settings, whether fix edits were built, and the file's content. The entry records the content of every other
file the analysis interpreted (the project modules it followed); it is used only when all of them are unchanged.
Entries are written atomically, one file each, so parallel workers never clash. The cache is an optimisation:
any problem reading or writing it means the file is simply analysed.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict
from typing import Any, Optional

from peftfix.diagnostics import Applicability, Diagnostic, Edit, Fix, Location
from peftfix.source.settings import Settings

CACHE_DIR_NAME = ".peftfix_cache"
FORMAT = 2  # 2: diagnostics carry a notebook cell


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _version_key() -> str:
    """peftfix's version and the state of the code that analyses: an edited checkout (a development install,
    where the version stays the same) never reuses results of other code."""
    from peftfix.about import version

    source = os.path.dirname(os.path.abspath(__file__))
    stamps = []
    for folder, _, names in sorted(os.walk(source)):
        for name in sorted(names):
            if name.endswith((".py", ".toml")):
                status = os.stat(os.path.join(folder, name))
                stamps.append(f"{name}:{status.st_size}:{status.st_mtime_ns}")
    return f"{FORMAT}-{version()}-{_digest(chr(10).join(stamps).encode())[:12]}"


class Cache:
    """The cache under ``directory`` (created on first write)."""

    def __init__(self, directory: str):
        self.directory = os.path.join(directory, _version_key())

    @staticmethod
    def key(path: str, data: bytes, settings: Settings, with_edits: bool) -> str:
        fingerprint = json.dumps(
            [os.path.abspath(path), sorted(settings.enabled), settings.unsafe_fixes, settings.max_rank, with_edits]
        )
        return _digest(fingerprint.encode() + b"\0" + data)

    def load(self, key: str) -> Optional[tuple[list[Diagnostic], list[Diagnostic], list[str]]]:
        """(diagnostics of the file, diagnostics found in other files, the other files touched), when valid."""
        try:
            with open(os.path.join(self.directory, key + ".json"), encoding="utf-8") as handle:
                record = json.load(handle)
            for path, digest in record["touched"].items():
                with open(path, "rb") as other:
                    if _digest(other.read()) != digest:
                        return None
            own = [_diagnostic(item) for item in record["own"]]
            foreign = [_diagnostic(item) for item in record["foreign"]]
            return own, foreign, list(record["touched_names"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def store(self, key: str, own: list[Diagnostic], foreign: list[Diagnostic], touched: list[str]) -> None:
        record: dict[str, Any] = {"own": [_record(d) for d in own], "foreign": [_record(d) for d in foreign]}
        try:
            digests = {}
            for path in touched:
                with open(path, "rb") as other:
                    digests[os.path.abspath(path)] = _digest(other.read())
            record["touched"] = digests
            record["touched_names"] = touched
            os.makedirs(self.directory, exist_ok=True)
            _mark(os.path.dirname(self.directory))
            fd, temp = tempfile.mkstemp(dir=self.directory, suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(record, handle)
            os.replace(temp, os.path.join(self.directory, key + ".json"))
        except OSError:
            pass


def _mark(root: str) -> None:
    """Like Ruff's cache: ignored by git and by backup tools."""
    for name, text in (
        (".gitignore", "# Automatically created by peftfix.\n*\n"),
        (
            "CACHEDIR.TAG",
            "Signature: 8a477f597d28d172789f06886806bc55\n# This file is a cache directory tag created by peftfix.\n",
        ),
    ):
        path = os.path.join(root, name)
        if not os.path.exists(path):
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text)


def _record(diagnostic: Diagnostic) -> dict[str, Any]:
    data = asdict(diagnostic)
    if diagnostic.fix is not None:
        data["fix"]["applicability"] = diagnostic.fix.applicability.value
    return data


def _location(data: Optional[dict[str, int]]) -> Optional[Location]:
    return Location(data["row"], data["column"]) if data else None


def _diagnostic(data: dict[str, Any]) -> Diagnostic:
    fix = data.get("fix")
    return Diagnostic(
        code=data["code"],
        message=data["message"],
        filename=data["filename"],
        location=_location(data.get("location")),
        end_location=_location(data.get("end_location")),
        fix=Fix(
            Applicability(fix["applicability"]),
            fix["message"],
            tuple(
                Edit(
                    edit["start_offset"],
                    edit["end_offset"],
                    edit["content"],
                    Location(**edit["location"]),
                    Location(**edit["end_location"]),
                    edit.get("cell"),
                )
                for edit in fix["edits"]
            ),
            deferred=fix.get("deferred", False),
        )
        if fix
        else None,
        severity=data.get("severity", "error"),
        details=data.get("details") or {},
        artifact=data.get("artifact"),
        cell=data.get("cell"),
    )
