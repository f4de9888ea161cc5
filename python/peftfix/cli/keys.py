"""`peftfix keys ADAPTER... --base BASE`: the checkpoint checks (PK000-PK006) from the command line.

ADAPTER and BASE may be local paths, Hub ids or URLs (``s3://``, ``gs://``, ``az://``, ``http(s)://``). Each base is
indexed once (through the base-index cache unless ``--no-cache``) and every adapter is checked against it (in
parallel on the native side). On a terminal, stderr shows what is being fetched and a progress bar for fleets; never
in the output itself. With ``--ray`` the checks run on a Ray cluster (``cli/keys_ray.py``), the output the same.
Exit codes as everywhere: 0 clean, 1 findings, 2 when a checkpoint could not be read (PK000)
or the command was misused.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Optional

import click

from peftfix.checkpoint import LOAD_AS, BaseIndex, Report, write_remapped
from peftfix.checkpoint.backend import readable_errors
from peftfix.checkpoint.errors import BaseNotFound
from peftfix.checkpoint.locate import base_named_by, hub_ref, is_url
from peftfix.checkpoint.matching import REMOTE_IN_FLIGHT
from peftfix.cli.common import UsageProblem, emit, exit_status, format_option
from peftfix.diagnostics import Diagnostic
from peftfix.diagnostics import Report as Findings
from peftfix.files import read_regular
from peftfix.output.common import pluralize
from peftfix.serving import Profile, ProfileError, select, serving_findings

# Below this many adapters the bar would only flicker.
PROGRESS_MIN_ADAPTERS = 4
# `--ray` given with no ADDRESS (click's flag value), and what an ADDRESS looks like: auto, local, ray://..., host:port.
RAY_DEFAULT_ADDRESS = ""
RAY_ADDRESS = re.compile(r"^(?:auto|local|ray://\S+|[\w.-]+:\d+|\[[0-9a-fA-F:]+\]:\d+)$")


@click.command("keys", short_help="Match adapter keys against a base checkpoint (safetensors headers only).")
@click.argument("adapters", nargs=-1, metavar="ADAPTER...")
@click.option(
    "--from-file",
    "adapter_list",
    metavar="LIST",
    help="Also check the adapters listed in LIST, one path or URL per line (blank lines and # comments skipped; "
    "- reads standard input): for fleets too long for the command line.",
)
@click.option(
    "--base",
    metavar="BASE",
    help="Base checkpoint: directory, .safetensors or index file; a Hub id (org/name, hf://org/name@rev/sub); an "
    "s3://, gs://, az:// or http(s):// directory URL. Default: the base_model_name_or_path of each adapter's "
    "adapter_config.json.",
)
@click.option(
    "--load-as",
    type=click.Choice(LOAD_AS),
    default="causal-lm",
    show_default=True,
    help="The module tree the adapter is loaded into: AutoModelForCausalLM's or AutoModel's.",
)
@click.option(
    "--write-remapped",
    "remapped_out",
    metavar="OUT",
    help="Write a fixed adapter with the inferred prefix rewrite (one adapter: OUT; several: OUT/<name>).",
)
@click.option(
    "--no-cache",
    is_flag=True,
    help="Read every shard header of the base, not the base-index cache (PEFTFIX_CACHE_DIR, else the user cache).",
)
@click.option(
    "--server",
    metavar="SERVER",
    help="Also check serving: vllm, sglang or lorax (its newest profile), or vllm==VERSION: whether the server "
    "loads the adapter and whether it takes effect there (PS001-PS005).",
)
@click.option(
    "--ray",
    "ray_address",
    is_flag=False,
    flag_value=RAY_DEFAULT_ADDRESS,
    default=None,
    metavar="[ADDRESS]",
    help="Check on a Ray cluster: ADDRESS (auto, local, ray://HOST:PORT or HOST:PORT), else RAY_ADDRESS, else one "
    "started on this machine. Needs the ray extra: pip install 'peftfix[ray]'.",
)
@format_option()
def keys_command(
    adapters: Sequence[str],
    adapter_list: Optional[str],
    base: Optional[str],
    load_as: str,
    remapped_out: Optional[str],
    no_cache: bool,
    server: Optional[str],
    ray_address: Optional[str],
    output_format: str,
) -> None:
    """Match every key of each ADAPTER to its module in BASE from safetensors headers alone: prefix mismatches
    PEFT drops silently (PK001), unmatched modules (PK002), shape conflicts such as a resized vocabulary
    (PK003), a zero-initialised LoRA factor still zero (PK004), config disagreements (PK005), empty adapters
    (PK006), unreadable checkpoints (PK000); with --server, what that server rejects or ignores (PS001-PS005).
    `peftfix explain PK001` documents each code."""
    if remapped_out is not None and not remapped_out.strip():
        raise click.BadParameter("an empty path; give the directory to write the fixed adapter to", param_hint="OUT")
    adapters = list(adapters)
    on_ray = ray_address is not None
    if ray_address is not None:  # --ray, with or without an address
        ray_address, taken = split_ray_address(ray_address)
        adapters = taken + adapters
    adapters += read_adapter_list(adapter_list) if adapter_list is not None else []
    if not adapters:
        raise UsageProblem("no adapter to check: name one or more ADAPTERs, or a list with --from-file LIST")
    profile = _profile(server) if server is not None else None
    if on_ray:
        from peftfix.cli.keys_ray import check_on_ray

        reports, indexes = check_on_ray(adapters, base, load_as, not no_cache, server, ray_address)
    else:
        reports, indexes = _check_here(adapters, base, load_as, not no_cache, profile)
    written, write_failed = _write_remapped(reports, remapped_out) if remapped_out else ([], False)
    findings = Findings.from_diagnostics(finding for report in reports for finding in report.findings)
    emit(findings, output_format, context=context_lines(reports, indexes))
    for line in written:
        click.echo(line, err=True)
    has_errors = write_failed or any(report.unreadable for report in reports)
    click.get_current_context().exit(exit_status(has_errors, bool(findings.findings)))


def _check_here(
    adapters: list[str], base: Optional[str], load_as: str, cache: bool, profile: Optional[Profile]
) -> tuple[list[Report], list[BaseIndex]]:
    """The reports of every adapter, in order, and the base indexes they were checked against: in this process."""
    reports_by_adapter: dict[int, Report] = {}
    indexes = []
    for group_base, positions in _by_base(adapters, base).items():
        with _status(f"reading the headers of {group_base}", remote=_is_remote(group_base)):
            index = BaseIndex(group_base, load_as, cache=cache)
        indexes.append(index)
        for position, report in zip(positions, _check_all(index, [adapters[i] for i in positions]), strict=True):
            reports_by_adapter[position] = report
            if profile is not None and not report.unreadable:
                report.findings.extend(_serving(adapters[position], group_base, profile))
    return [reports_by_adapter[position] for position in range(len(adapters))], indexes


def split_ray_address(value: str) -> tuple[Optional[str], list[str]]:
    """(the cluster address, adapters): `--ray` takes the next argument as its ADDRESS only when it reads as one
    (`--ray adapter-1 adapter-2` checks both adapters on the default cluster)."""
    if value == RAY_DEFAULT_ADDRESS:
        return None, []
    if RAY_ADDRESS.match(value):
        return value, []
    return None, [value]


def read_adapter_list(source: str) -> list[str]:
    """The adapters a --from-file list names: one per line, surrounding blanks and `#` comment lines ignored."""
    try:
        data = sys.stdin.buffer.read() if source == "-" else read_regular(source)
        text = data.decode("utf-8-sig")
    except OSError as error:
        raise UsageProblem(f"cannot read the adapter list {source}: {error.strerror or error}") from error
    except UnicodeDecodeError as error:
        raise UsageProblem(f"the adapter list {source} is not UTF-8 text ({error.reason})") from error
    entries = [line.strip() for line in text.splitlines()]
    return [entry for entry in entries if entry and not entry.startswith("#")]


def _profile(spec: str) -> Profile:
    try:
        return select(spec)
    except ProfileError as error:
        raise click.BadParameter(str(error), param_hint="--server") from None


def _serving(adapter: str, base: str, profile: Profile) -> list[Diagnostic]:
    """The PS findings; an input the serving checks cannot read is said on stderr (the PK findings stand)."""
    findings, note = serving_findings(adapter, base, profile)
    if note is not None:
        click.echo(f"peftfix: {adapter}: {note}", err=True)
    return findings


def _by_base(adapters: Sequence[str], base: Optional[str]) -> dict[str, list[int]]:
    """The base each adapter is checked against (``--base``, else the one its config names), with the positions
    of the adapters that share it; an adapter whose base cannot be found is a usage error naming it."""
    groups: dict[str, list[int]] = {}
    for position, adapter in enumerate(adapters):
        if base is not None:
            resolved = base
        else:
            try:
                resolved = base_named_by(adapter)
            except BaseNotFound as error:
                raise click.UsageError(str(error)) from None
        groups.setdefault(resolved, []).append(position)
    return groups


def _is_remote(spec: str) -> bool:
    """A URL, or a Hub id that is no local path (it may still be found in the local cache)."""
    return is_url(spec) or hub_ref(spec) is not None


@contextmanager
def _status(text: str, remote: bool) -> Iterator[None]:
    """A spinner on stderr while a remote base is fetched, on a terminal only."""
    if not remote or not sys.stderr.isatty():
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status(text):
        yield


def _check_all(index: BaseIndex, adapters: Sequence[str]) -> list[Report]:
    if len(adapters) < PROGRESS_MIN_ADAPTERS or not sys.stderr.isatty():
        return index.check_many(adapters)
    from rich.console import Console
    from rich.progress import Progress

    reports: list[Report] = []
    with Progress(console=Console(stderr=True), transient=True) as progress:
        task: Any = progress.add_task(f"checking against {index.base}", total=len(adapters))
        for start in range(0, len(adapters), REMOTE_IN_FLIGHT):
            batch = adapters[start : start + REMOTE_IN_FLIGHT]
            reports.extend(index.check_many(batch))
            progress.advance(task, len(batch))
    return reports


def _write_remapped(reports: list[Report], out: str) -> tuple[list[str], bool]:
    """Write every adapter that has a rewrite; (the lines to show, whether any failed). The targets are planned
    first: two adapters never share one, and an existing target is never overwritten (nothing is written then)."""
    to_write = [report for report in reports if report.rewrite is not None]
    lines = [
        f"{report.adapter}: no prefix rewrite to apply; nothing written" for report in reports if report.rewrite is None
    ]
    targets = _targets([report.adapter for report in to_write], out, several=len(reports) > 1)
    taken = [target for target in targets if _occupied(target)]
    if taken:
        lines += [f"error: {target}: already exists; nothing written (peftfix never overwrites)" for target in taken]
        return lines, True
    failed = False
    for report, target in zip(to_write, targets, strict=True):
        try:
            count = write_remapped(report.adapter, target, report)
        except readable_errors() as error:
            lines.append(f"error: {report.adapter}: not written to {target}: {_reason(error)}")
            failed = True
            continue
        lines.append(f"{report.adapter}: wrote {target} ({count} keys rewritten)")
    return lines, failed


def _targets(adapters: list[str], out: str, several: bool) -> list[str]:
    """One adapter: OUT itself. Several: OUT/<the adapter's directory name>, made distinct (`ad`, `ad-2`, ...)
    when two adapters share a name."""
    if not several:
        return [out for _ in adapters]
    targets: list[str] = []
    used: set[str] = set()
    for adapter in adapters:
        name = Path(adapter.rstrip("/\\")).name or "adapter"
        candidate, number = name, 1
        while candidate in used:
            number += 1
            candidate = f"{name}-{number}"
        used.add(candidate)
        targets.append(os.path.join(out, candidate))
    return targets


def _occupied(target: str) -> bool:
    """An existing file, or a directory that already holds something."""
    if os.path.isdir(target):
        return any(os.scandir(target))
    return os.path.lexists(target)


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error)


def context_lines(reports: list[Report], indexes: list[BaseIndex]) -> list[str]:
    """What was checked, for the text format: each base and each adapter's counts."""
    lines = []
    for index in indexes:
        if index.error is not None:
            continue
        where = f" ({index.location})" if index.location != index.base else ""
        lines.append(
            f"base {index.base}{where}: {index.tensor_count} tensors in {pluralize(index.shard_count, 'shard')} "
            f"({index.header_bytes:,} header bytes{', from the index cache' if index.from_cache else ''})"
        )
    for report in reports:
        counts = report.counts
        lines.append(
            f"{report.adapter}: {counts['adapter_tensors']} tensors, {counts['adapter_modules']} modules, "
            f"{counts['matched']} matched"
            + (f", {counts['matched_after_rewrite']} after rewrite" if counts["matched_after_rewrite"] else "")
            + (f", {counts['unmatched']} unmatched" if counts["unmatched"] else "")
        )
    return lines
