"""Resolved settings for checking one file (after config files, CLI options and per-file ignores).

A leaf: it imports nothing from peftfix, so every part of the source wing can depend on it. The default
settings come from the rule registry (:func:`peftfix.source.registry.default_settings`).
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MAX_RANK = 256


@dataclass(frozen=True)
class Settings:
    enabled: frozenset[str]  # rule codes that are reported (PF000 included when selected)
    unsafe_fixes: bool = False
    max_rank: int = DEFAULT_MAX_RANK
