"""A rule's documentation as the Markdown a hover shows: what `peftfix explain CODE` prints, and a link to the
rule's page."""

from __future__ import annotations

import functools
from typing import Optional

from peftfix.about import rule_url
from peftfix.catalog import code_info


@functools.cache  # the catalog is read once per code, not on every hover
def rule_markdown(code: str) -> Optional[str]:
    info = code_info(code)
    if info is None:
        return None
    parts = [f"### {info.code} ({info.name})"]
    if info.summary:
        parts.append(info.summary)
    parts.append(info.documentation.strip())
    parts.append(f"[{info.code} documentation]({rule_url(info.code)})")
    return "\n\n".join(parts)
