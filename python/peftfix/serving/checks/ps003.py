"""PS003 rank-limit: a rank above the server's default maximum (the flag to pass) or its hard maximum."""

from __future__ import annotations

from peftfix.diagnostics import Diagnostic
from peftfix.serving.context import Context


def _highest_rank(ctx: Context) -> int | None:
    config = ctx.adapter.config or {}
    ranks = [ctx.adapter.rank()]
    pattern = config.get("rank_pattern")
    if ctx.profile.rank.rank_pattern and isinstance(pattern, dict):
        ranks.extend(value for value in pattern.values() if type(value) is int)
    known = [rank for rank in ranks if rank is not None]
    return max(known) if known else None


def check(ctx: Context) -> list[Diagnostic]:
    rank, limits = _highest_rank(ctx), ctx.profile.rank
    if rank is None or not limits.default_max or rank <= limits.default_max:
        return []
    said = limits.says.format(rank=rank, max=limits.default_max)
    if limits.hard_max and rank > limits.hard_max:
        return [
            ctx.finding(
                "PS003",
                "reject",
                f'cannot serve rank {rank}: its largest {limits.flag} is {limits.hard_max} ("{said}"). Retrain '
                f"with r <= {limits.hard_max}",
                limits.source,
                rank=rank,
                default_max=limits.default_max,
                hard_max=limits.hard_max,
            )
        ]
    allowed = [value for value in limits.allowed if value >= rank] or [rank]
    flag_value = min(allowed)
    return [
        ctx.finding(
            "PS003",
            "reject",
            f'refuses rank {rank} at its default {limits.flag} {limits.default_max} ("{said}"): start it with '
            f"`{limits.flag} {flag_value}`",
            limits.source,
            rank=rank,
            default_max=limits.default_max,
            flag=f"{limits.flag} {flag_value}",
        )
    ]
