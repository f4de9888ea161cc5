"""The library model (``source/library.toml``): which calls load, wrap, train, merge... read once, matched fast.

A callee is matched by its qualified name (what the file's imports make of it). Patterns are compiled once;
lookups are memoised per qualified name, so a file pays a dictionary lookup per call.
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from importlib import resources
from typing import Any, Optional

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

Argument = tuple[int, str]  # (position, keyword); position -1: keyword only


@dataclass(frozen=True)
class Pattern:
    """``prefix..suffix`` (or exact components): the qualified name starts with ``prefix`` and ends with
    ``suffix``, component by component, with shell-style wildcards in each component."""

    prefix: tuple[str, ...]
    suffix: tuple[str, ...]
    exact: bool

    @classmethod
    def parse(cls, text: str) -> Pattern:
        if ".." in text:
            head, _, tail = text.partition("..")
            return cls(tuple(head.split(".")), tuple(tail.split(".")), exact=False)
        return cls((), tuple(text.split(".")), exact=True)

    def matches(self, parts: tuple[str, ...]) -> bool:
        if self.exact:
            return len(parts) == len(self.suffix) and all(map(fnmatchcase, parts, self.suffix))
        if len(parts) < len(self.prefix) + len(self.suffix):
            return False
        head, tail = parts[: len(self.prefix)], parts[len(parts) - len(self.suffix) :]
        return all(map(fnmatchcase, head, self.prefix)) and all(map(fnmatchcase, tail, self.suffix))


@dataclass(frozen=True)
class CallEntry:
    """One ``[[call]]`` entry: the effect a matching call has, with its parameters."""

    effect: str
    patterns: tuple[Pattern, ...]
    excludes: tuple[Pattern, ...]
    options: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def matches(self, parts: tuple[str, ...]) -> bool:
        return any(p.matches(parts) for p in self.patterns) and not any(p.matches(parts) for p in self.excludes)

    def get(self, key: str, default: Any = None) -> Any:
        return self.options.get(key, default)

    def argument(self, key: str) -> Optional[Argument]:
        value = self.options.get(key)
        if isinstance(value, list) and len(value) == 2:
            return int(value[0]), str(value[1])
        return None


@dataclass(frozen=True, eq=False)  # hashed by identity: one instance, memoised lookups
class Library:
    calls: tuple[CallEntry, ...]
    methods: dict[str, dict[str, Any]]
    tokenizer_methods: dict[str, dict[str, Any]]
    peft_model_attributes: frozenset[str]
    injected_attributes: frozenset[str]
    peft_model_classes: tuple[Pattern, ...]
    unresolved_model_classes: tuple[str, ...] = ()
    unresolved_model_methods: tuple[str, ...] = ()
    prequantized_checkpoints: tuple[str, ...] = ()

    def is_prequantized(self, checkpoint: str) -> bool:
        """A checkpoint name that says it was saved quantized (its config makes `from_pretrained` quantize)."""
        return any(fnmatchcase(checkpoint.lower(), pattern) for pattern in self.prequantized_checkpoints)

    def is_unresolved_model_loader(self, class_name: str, method: str) -> bool:
        return method in self.unresolved_model_methods and any(
            fnmatchcase(class_name, pattern) for pattern in self.unresolved_model_classes
        )

    def call(self, qualified: str) -> Optional[CallEntry]:
        """The entry for a callee's qualified name, or None for a call the model does not know."""
        return _lookup(self, qualified)

    def is_peft_model_class(self, qualified: str) -> bool:
        parts = tuple(qualified.split("."))
        return any(pattern.matches(parts) for pattern in self.peft_model_classes)


@functools.lru_cache(maxsize=4096)
def _lookup(library: Library, qualified: str) -> Optional[CallEntry]:
    parts = tuple(qualified.split("."))
    return next((entry for entry in library.calls if entry.matches(parts)), None)


def _patterns(value: Any) -> tuple[Pattern, ...]:
    items = [value] if isinstance(value, str) else list(value or ())
    return tuple(Pattern.parse(item) for item in items)


def parse(document: dict[str, Any]) -> Library:
    calls = []
    for raw in document.get("call", ()):
        options = {k: v for k, v in raw.items() if k not in ("callee", "exclude", "effect")}
        calls.append(CallEntry(str(raw["effect"]), _patterns(raw["callee"]), _patterns(raw.get("exclude")), options))
    peft_model = document.get("peft_model", {})
    return Library(
        calls=tuple(calls),
        methods=dict(document.get("method", {})),
        tokenizer_methods=dict(document.get("tokenizer_method", {})),
        peft_model_attributes=frozenset(peft_model.get("attributes", ())),
        injected_attributes=frozenset(peft_model.get("injected_attributes", ())),
        peft_model_classes=_patterns(peft_model.get("classes", ())),
        unresolved_model_classes=tuple(document.get("unresolved_model", {}).get("classes", ())),
        unresolved_model_methods=tuple(document.get("unresolved_model", {}).get("methods", ())),
        prequantized_checkpoints=tuple(document.get("prequantized", {}).get("checkpoints", ())),
    )


@functools.lru_cache(maxsize=1)
def library() -> Library:
    """The library model shipped with peftfix."""
    text = resources.files("peftfix.source").joinpath("library.toml").read_text(encoding="utf-8")
    return parse(tomllib.loads(text))
