"""What every serving check reads, and how it words a finding."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from peftfix.diagnostics import Diagnostic
from peftfix.serving.facts import Adapter, Base
from peftfix.serving.profile import Profile

# What a finding says happens on the server.
EFFECTS = {
    "reject": "refuses the adapter",
    "ignore": "loads the adapter and drops",
    "no-op": "loads the adapter and applies it to nothing",
}


@dataclass
class Context:
    profile: Profile
    adapter: Adapter
    base: Base
    name: str  # the adapter as the user named it

    def finding(self, code: str, effect: str, message: str, source: str, **details: Any) -> Diagnostic:
        """A finding of ``code``: ``message`` follows the server's name and release; ``source`` is the server
        function the rule encodes."""
        return Diagnostic(
            code=code,
            message=f"{self.profile.label}: {message} [{source.split(';')[0].strip()}]",
            filename=self.name,
            details={
                "server": self.profile.server,
                "version": self.profile.version,
                "effect": effect,
                "source": source,
                **details,
            },
        )


def quoted(names: Any) -> str:
    return ", ".join(f"`{name}`" for name in names)
