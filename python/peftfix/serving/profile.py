"""Serving profiles: what one release of a server accepts, drops or rejects, read from its source.

A profile is data (``profiles/<server>-<version>.toml``), one file per server and release, each rule citing the
server function it encodes. ``--server vllm`` picks the newest vLLM profile, ``--server vllm==0.34.0`` that one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any, Optional

import tomllib

SERVERS = ("vllm", "sglang", "lorax")


class ProfileError(ValueError):
    """A ``--server`` value that names no profile."""


@dataclass(frozen=True)
class Files:
    weights: tuple[str, ...]  # names tried in order; a name with `*` is a glob over the adapter folder
    sharded: bool
    subfolder: bool
    required_config: tuple[str, ...]
    field_types: dict[str, str]  # field -> "int", "number", "str", "list", alternatives joined by "|"
    source: str
    says: dict[str, str]  # missing_weights, missing_fields, missing_config: the server's words


@dataclass(frozen=True)
class Keys:
    read: tuple[str, ...]  # globs of the tensor names the server reads; empty: it drops what it cannot read
    says: str
    source: str


@dataclass(frozen=True)
class Rank:
    default_max: int  # 0: no fixed limit
    allowed: tuple[int, ...]
    hard_max: int  # 0: none
    flag: str
    rank_pattern: bool  # whether rank_pattern values count towards the limit
    says: str
    source: str


@dataclass(frozen=True)
class Feature:
    name: str
    field: str  # an adapter_config.json field, or `@extra_vocab`
    test: str  # true | set | outside
    allowed: tuple[Any, ...]
    effect: str  # reject | ignore
    says: str
    why: str
    source: str


@dataclass(frozen=True)
class Requirement:
    name: str
    needs: str
    says: str


@dataclass(frozen=True)
class Targets:
    names: Any  # "linear" (every Linear of the base) or a list of module names
    unknown: str  # reject | ignore
    says: str
    source: str
    architectures: dict[str, dict[str, Any]]
    unsupported: dict[str, str]  # architecture -> what the server says
    requires: tuple[Requirement, ...]
    ignored_parts: tuple[str, ...]
    ignored_flag: str


@dataclass(frozen=True)
class Paths:
    apply: str  # full-path | layer-index | exact-path
    text_fallback: bool
    every_layer: bool  # a module type missing from some layer is dropped on every layer
    rename: dict[str, dict[str, str]]  # architecture -> prefix renames
    source: str


@dataclass(frozen=True)
class Profile:
    server: str
    version: str
    read_from: str
    files: Files
    keys: Keys
    rank: Rank
    features: tuple[Feature, ...]
    targets: Targets
    paths: Paths
    file: str = field(default="", compare=False)

    @property
    def label(self) -> str:
        return f"{self.server} {self.version}"


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else 0 for part in version.split("."))


def _build(data: dict[str, Any], file: str) -> Profile:
    files, rank, targets, paths = data["files"], data["rank"], data["targets"], data["paths"]
    return Profile(
        server=data["server"],
        version=data["version"],
        read_from=data["read_from"],
        file=file,
        files=Files(
            weights=tuple(files["weights"]),
            sharded=files["sharded"],
            subfolder=files["subfolder"],
            required_config=tuple(files["required_config"]),
            field_types=dict(files.get("field_types", {})),
            source=files["source"],
            says={key: value for key, value in files.items() if key.startswith("missing_")},
        ),
        keys=Keys(
            read=tuple(data.get("keys", {}).get("read", ())),
            says=data.get("keys", {}).get("says", ""),
            source=data.get("keys", {}).get("source", ""),
        ),
        rank=Rank(
            default_max=rank["default_max"],
            allowed=tuple(rank.get("allowed", ())),
            hard_max=rank["hard_max"],
            flag=rank.get("flag", ""),
            rank_pattern=rank["rank_pattern"],
            says=rank.get("says", ""),
            source=rank["source"],
        ),
        features=tuple(
            Feature(
                name=item["name"],
                field=item["field"],
                test=item["test"],
                allowed=tuple(item.get("allowed", ())),
                effect=item["effect"],
                says=item.get("says", ""),
                why=item.get("why", ""),
                source=item["source"],
            )
            for item in data.get("features", ())
        ),
        targets=Targets(
            names=targets["names"],
            unknown=targets["unknown"],
            says=targets.get("says", ""),
            source=targets["source"],
            architectures=dict(targets.get("architectures", {})),
            unsupported=dict(targets.get("unsupported", {})),
            requires=tuple(Requirement(**item) for item in targets.get("requires", ())),
            ignored_parts=tuple(targets.get("ignored_parts", ())),
            ignored_flag=targets.get("ignored_flag", ""),
        ),
        paths=Paths(
            apply=paths["apply"],
            text_fallback=paths.get("text_fallback", False),
            every_layer=paths.get("every_layer", False),
            rename=dict(paths.get("rename", {})),
            source=paths["source"],
        ),
    )


def _merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` on top of ``base``: tables merge key by key, anything else is replaced."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merged[key] = _merged(base[key], value)
        else:
            merged[key] = value
    return merged


@cache
def profiles() -> tuple[Profile, ...]:
    """Every profile shipped, sorted by server then version. A profile may ``extends = "<file>"``: it then states
    only what differs from that release."""
    folder = resources.files("peftfix.serving").joinpath("profiles")
    raw = {
        entry.name: tomllib.loads(entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(".toml")
    }

    def resolved(name: str) -> dict[str, Any]:
        data = raw[name]
        parent = data.get("extends")
        return _merged(resolved(parent), data) if parent else data

    found = [_build(resolved(name), name) for name in raw]
    return tuple(sorted(found, key=lambda p: (p.server, _version_key(p.version))))


def select(spec: str) -> Profile:
    """The profile ``spec`` names: ``vllm`` (its newest release) or ``vllm==0.34.0``."""
    server, _, version = spec.strip().partition("==")
    server, version = server.strip().lower(), version.strip()
    candidates = [p for p in profiles() if p.server == server]
    if not candidates:
        raise ProfileError(f"unknown server {server!r}: choose one of {', '.join(SERVERS)}")
    if not version:
        return candidates[-1]
    match: Optional[Profile] = next((p for p in candidates if p.version == version), None)
    if match is None:
        known = ", ".join(p.version for p in candidates)
        raise ProfileError(f"no {server} profile for version {version}: profiles exist for {known}")
    return match
