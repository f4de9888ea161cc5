"""Resolved settings for checking one file (after config files, CLI options and per-file ignores)."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MAX_RANK = 256


@dataclass(frozen=True)
class Settings:
    enabled: frozenset[str]  # rule codes that are reported (PF000 included when selected)
    unsafe_fixes: bool = False
    max_rank: int = DEFAULT_MAX_RANK

    @classmethod
    def default(cls) -> "Settings":
        from peftfix.source.registry import default_codes

        return cls(enabled=frozenset(default_codes()))
