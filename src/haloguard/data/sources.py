"""Registry of pinned data sources (``sources.yaml``)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

ROLES = ("eval", "train")


@dataclass(frozen=True)
class SourceSpec:
    """One data source: a set of files inside a pinned PyPI wheel plus its loader."""

    name: str
    package: str
    version: str
    sha256: str
    licence: str
    files: tuple[str, ...]
    loader: str
    role: str
    languages: tuple[str, ...]
    labels: str

    @property
    def dist_dir(self) -> str:
        """Cache folder name: ``<package>-<version>``."""
        return f"{self.package}-{self.version}"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SourceSpec:
        missing = [k for k in ("name", "package", "version", "sha256", "files", "loader", "role")
                   if k not in data]
        if missing:
            raise ValueError(f"source {data.get('name', '?')!r} lacks {', '.join(missing)}")
        if data["role"] not in ROLES:
            raise ValueError(f"source {data['name']!r}: role must be one of {ROLES}")
        return cls(
            name=str(data["name"]), package=str(data["package"]), version=str(data["version"]),
            sha256=str(data["sha256"]).lower(), licence=str(data.get("licence", "")),
            files=tuple(data["files"]), loader=str(data["loader"]), role=str(data["role"]),
            languages=tuple(data.get("languages", ())), labels=str(data.get("labels", "")),
        )


def load_registry(path: str | Path | None = None) -> dict[str, SourceSpec]:
    """Read ``sources.yaml`` (the packaged one by default) into name → spec, in file order."""
    if path is None:
        text = resources.files("haloguard.data").joinpath("sources.yaml").read_text("utf-8")
    else:
        text = Path(path).read_text("utf-8")
    data = yaml.safe_load(text) or {}
    specs = [SourceSpec.from_dict(d) for d in data.get("sources", [])]
    out: dict[str, SourceSpec] = {}
    for spec in specs:
        if spec.name in out:
            raise ValueError(f"duplicate source name {spec.name!r}")
        out[spec.name] = spec
    return out


def get_source(name: str, registry: dict[str, SourceSpec] | None = None) -> SourceSpec:
    """The spec for ``name``; an unknown name gets a close-match suggestion."""
    registry = registry if registry is not None else load_registry()
    try:
        return registry[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(registry), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise KeyError(f"unknown data source {name!r}{hint}") from None


def sources_by_role(role: str, registry: dict[str, SourceSpec] | None = None) -> list[SourceSpec]:
    """Specs with the given role ("eval" or "train"), in registry order."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    registry = registry if registry is not None else load_registry()
    return [s for s in registry.values() if s.role == role]
