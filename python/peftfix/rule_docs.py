"""What users see about a rule (`peftfix rules`, `peftfix explain`, SARIF rule metadata), read from the registry.

Rule documentation lives in each rule class's docstring, in Markdown sections (`## What it does`,
`## Why is this bad?`, `## Example`, `## Fix safety`).
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from typing import Optional

_SECTION_HEADING = re.compile(r"^##\s+(?P<title>.+?)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class RuleInfo:
    code: str
    name: str
    summary: str
    fix_availability: str  # "safe", "unsafe", "sometimes", "display-only", "none"
    default_enabled: bool
    documentation: str  # the docstring, dedented

    def section(self, title: str) -> Optional[str]:
        """The body of `## <title>` (case-insensitive), or None."""
        return split_sections(self.documentation).get(title.lower())

    def to_json(self) -> dict[str, object]:
        return {
            "code": self.code,
            "name": self.name,
            "summary": self.summary,
            "fix_availability": self.fix_availability,
            "default_enabled": self.default_enabled,
        }


def split_sections(documentation: str) -> dict[str, str]:
    """`{"what it does": "...", ...}` from a Markdown text with `## Title` headings."""
    headings = list(_SECTION_HEADING.finditer(documentation))
    sections = {}
    for index, heading in enumerate(headings):
        end = headings[index + 1].start() if index + 1 < len(headings) else len(documentation)
        sections[heading.group("title").lower()] = documentation[heading.end() : end].strip()
    return sections


def _plain_string(value: object) -> str:
    # The registry may use a str-valued Enum, whose str() would be "FixAvailability.SAFE".
    return str(getattr(value, "value", value))


def info_from_rule(rule: type) -> RuleInfo:
    return RuleInfo(
        code=rule.code,
        name=rule.name,
        summary=getattr(rule, "summary", "") or "",
        fix_availability=_plain_string(getattr(rule, "fix_availability", "none")),
        default_enabled=bool(getattr(rule, "default_enabled", True)),
        documentation=inspect.cleandoc(rule.__doc__ or ""),
    )


def all_rule_infos() -> list[RuleInfo]:
    from peftfix.source import registry

    return [info_from_rule(rule) for rule in registry.ALL_RULES]


def rule_info(code: str) -> Optional[RuleInfo]:
    from peftfix.source import registry

    rule = registry.rule_by_code(code.strip().upper())
    return info_from_rule(rule) if rule is not None else None
