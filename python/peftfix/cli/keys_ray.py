"""`peftfix keys --ray`: the same check and the same output, the work done on a Ray cluster (:mod:`peftfix.ray`).

Differences a user sees: an adapter whose base cannot be found is its own PK000 finding rather than stopping the
run (one bad entry in a fleet list should not hide the rest), and the progress shown on a terminal is Ray Data's.
"""

from __future__ import annotations

import logging
from typing import Optional

import click

from peftfix.checkpoint import BaseIndex, Report
from peftfix.cli.common import UsageProblem


def check_on_ray(
    adapters: list[str], base: Optional[str], load_as: str, cache: bool, server: Optional[str], address: Optional[str]
) -> tuple[list[Report], list[BaseIndex]]:
    """The reports of every adapter, in order, and the base indexes they were checked against."""
    from peftfix.ray import RayNotInstalled, connect, notes_of, report_of
    from peftfix.ray.fleet import fleet_dataset, plan_fleet

    try:
        ray = connect(address, quiet=True)
    except RayNotInstalled as error:
        raise UsageProblem(str(error)) from None
    except (ConnectionError, ValueError, RuntimeError) as error:
        raise UsageProblem(f"cannot join the Ray cluster{f' at {address}' if address else ''}: {error}") from None
    _quiet_ray_data()
    plan = plan_fleet(adapters, base, load_as=load_as, cache=cache)
    rows = fleet_dataset(plan, server).take_all()
    by_adapter = {row["adapter"]: row for row in rows}
    for row in rows:
        for note in notes_of(row):
            click.echo(f"peftfix: {row['adapter']}: {note}", err=True)
    indexes = ray.get(list(plan.indexes.values()))
    return [report_of(by_adapter[adapter]) for adapter in adapters], indexes


def _quiet_ray_data() -> None:
    """Ray Data logs each execution at INFO (and, off a terminal, its progress too): the output is peftfix's."""
    logging.getLogger("ray.data").setLevel(logging.WARNING)
