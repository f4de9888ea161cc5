"""Serving checks (PS001-PS005): will a server load the adapter, and will the adapter take effect there?

Each server release is a profile (:mod:`peftfix.serving.profile`, data read from the server's source); each
check is one file in :mod:`peftfix.serving.checks`. They read the adapter's files, config and safetensors
header and the base's ``config.json`` and headers, never a tensor.

    >>> findings = check_serving("out/adapter", "models/llama", "vllm")       # doctest: +SKIP
    >>> [(d.code, d.details["effect"]) for d in findings]                      # doctest: +SKIP
    [('PS003', 'reject')]
"""

from __future__ import annotations

import os
from typing import Optional, Union

from peftfix.diagnostics import Diagnostic
from peftfix.serving.checks import ps001, ps002, ps003, ps004, ps005
from peftfix.serving.context import Context
from peftfix.serving.facts import ServingInputError, read_adapter, read_base
from peftfix.serving.profile import SERVERS, Profile, ProfileError, profiles, select

CHECKS = (ps001.check, ps002.check, ps003.check, ps004.check, ps005.check)


def check_serving(
    adapter: Union[str, os.PathLike[str]], base: Union[str, os.PathLike[str]], server: Union[str, Profile]
) -> list[Diagnostic]:
    """The PS findings for serving ``adapter`` on ``base`` with ``server`` (``"vllm"``, ``"vllm==0.34.0"``, or
    a :class:`Profile`). Raises :class:`ProfileError` for an unknown server and :class:`ServingInputError` for
    an adapter or base that is not a local path."""
    profile = select(server) if isinstance(server, str) else server
    name = os.fspath(adapter)
    ctx = Context(profile, read_adapter(name), read_base(os.fspath(base)), name)
    refused = ps001.unsupported_architecture(ctx)
    if refused is not None:
        return [refused]
    return [finding for check in CHECKS for finding in check(ctx)]


def serving_findings(
    adapter: Union[str, os.PathLike[str]], base: Union[str, os.PathLike[str]], server: Union[str, Profile]
) -> tuple[list[Diagnostic], Optional[str]]:
    """:func:`check_serving`, with an input it cannot read told as a note (``"no serving check: ..."``) instead of
    raised: for callers that check many adapters and report the rest."""
    try:
        return check_serving(adapter, base, server), None
    except ServingInputError as error:
        return [], f"no serving check: {error}"


__all__ = [
    "SERVERS",
    "Profile",
    "ProfileError",
    "ServingInputError",
    "check_serving",
    "profiles",
    "select",
    "serving_findings",
]
