"""The errors of finding a checkpoint by name (kept apart so the reader backend and the locator both import them)."""

from __future__ import annotations


class LocationError(ValueError):
    """A checkpoint named by a Hub id that cannot be found: not cached while offline, no such repo or revision,
    no access, the Hub unreachable. ``str()`` names the checkpoint and the reason."""

    def __init__(self, spec: str, reason: str) -> None:
        super().__init__(f"{spec}: {reason}")
        self.path = spec
        self.reason = reason


class BaseNotFound(ValueError):
    """The adapter does not say which base it needs, or the base it names is not here."""


__all__ = ["BaseNotFound", "LocationError"]
