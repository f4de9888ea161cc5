"""Check fleets of adapters on Ray: thousands of adapters, a few bases, more than one machine.

    >>> import ray                                                                   # doctest: +SKIP
    >>> from peftfix.ray import check_fleet, report_of
    >>> rows = check_fleet(["s3://runs/a1", "s3://runs/a2"], "s3://bases/llama").take_all()   # doctest: +SKIP
    >>> [(row["adapter"], row["codes"]) for row in rows]                              # doctest: +SKIP
    [('s3://runs/a1', []), ('s3://runs/a2', ['PK001'])]
    >>> report_of(rows[1]).rewrite                                                    # doctest: +SKIP
    {'strip': '_orig_mod.', 'add': '', 'coverage': 1.0}

Needs the ``ray`` extra (``pip install 'peftfix[ray]'``); without it the calls raise :class:`RayNotInstalled`.
Every worker needs peftfix installed. How the work is split and what it costs: ``docs/scaling.md``.
"""

from __future__ import annotations

from peftfix.ray.cluster import INSTALL_HINT, RayNotInstalled, connect
from peftfix.ray.fleet import BATCH_SIZE, check_fleet
from peftfix.ray.rows import ROW_FIELDS, notes_of, report_of

__all__ = [
    "BATCH_SIZE",
    "INSTALL_HINT",
    "ROW_FIELDS",
    "RayNotInstalled",
    "check_fleet",
    "connect",
    "notes_of",
    "report_of",
]
