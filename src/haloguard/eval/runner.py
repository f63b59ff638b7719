"""Run several guards over several sets, caching predictions so a run resumes.

Predictions are cached per (guard, set, data version) as JSONL under ``cache_dir``; each
chunk of items is appended and flushed as soon as it is scored, so an interrupted run
picks up where it stopped.  A guard failing on a chunk is retried item by item, and an
item that still fails is recorded with its error (it counts as wrong in the metrics).
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from haloguard.data.records import Record
from haloguard.eval.suites import LoadedSet

CHUNK = 64


@dataclass
class GuardHandle:
    """A guard under test: the name given on the command line and the loaded Guard."""

    name: str
    guard: Any
    threshold: float
    model_id: str
    #: the Guard's pipeline (views, windows, sentence bar); "" for other guard objects
    pipeline: str = ""

    @property
    def key(self) -> str:
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.name).strip("_")[:60] or "guard"
        digest = hashlib.sha256(
            f"{self.name}|{self.model_id}|{self.pipeline}".encode()).hexdigest()[:10]
        return f"{slug}-{digest}"


def is_peer(name: str) -> bool:
    return name.startswith("peer:")


def open_guard(name: str, *, threshold: float | None = None, **kwargs: Any) -> GuardHandle:
    """Load anything ``load_guard`` accepts, plus bare backend names such as ``peer:jailguard``.

    Peers are evaluated as they ship: without haloguard's canonicalizer and windows.
    """
    from haloguard.backends.registry import BACKENDS, MODELS
    from haloguard.loader import load_guard

    if name in BACKENDS and name not in MODELS:
        guard = load_guard(name, backend=name, threshold=threshold,
                           canonicalize=not is_peer(name), **kwargs)
    else:
        guard = load_guard(name, threshold=threshold, **kwargs)
    return GuardHandle(name, guard, float(guard.threshold), guard.model_id,
                       str(getattr(guard, "pipeline_id", "")))


def _item(rec: Record) -> dict[str, Any]:
    if rec.messages:
        return {"messages": [dict(m) for m in rec.messages]}
    return {"text": rec.text}


def _row(gh: GuardHandle, ds: LoadedSet, rec: Record, verdict: Any) -> dict[str, Any]:
    base = {"id": rec.id, "set": ds.name, "guard": gh.name,
            "label": rec.label, "gold_category": rec.category, "lang": rec.lang}
    if isinstance(verdict, BaseException):
        return {**base, "p_unsafe": None, "verdict": None, "category": None,
                "top_category": None, "overlay": None, "view": None,
                "error": f"{type(verdict).__name__}: {verdict}"}
    scores = verdict.category_scores
    top = max(scores, key=scores.__getitem__) if scores and max(scores.values()) > 0 else "none"
    return {**base, "p_unsafe": round(float(verdict.p_unsafe), 6), "verdict": verdict.safety_label,
            "category": verdict.category, "top_category": top,
            "overlay": verdict.attack_overlay, "view": verdict.selected_view, "error": None}


def _score_chunk(gh: GuardHandle, recs: Sequence[Record]) -> list[Any]:
    items = [_item(r) for r in recs]
    try:
        return list(gh.guard.classify_batch(items, return_errors=True))
    except Exception:  # noqa: BLE001 - isolate the failing items, record their errors
        out: list[Any] = []
        for it in items:
            try:
                out.extend(gh.guard.classify_batch([it], return_errors=True))
            except Exception as exc:  # noqa: BLE001
                out.append(exc)
        return out


def cache_path(cache_dir: Path, gh: GuardHandle, ds: LoadedSet) -> Path:
    ver = hashlib.sha256(ds.version.encode()).hexdigest()[:12]
    return cache_dir / gh.key / f"{ds.name}__{ver}.jsonl"


def read_cache(path: Path) -> dict[str, dict[str, Any]]:
    """Cached rows by id; a torn last line (interrupted write) is ignored."""
    rows: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return rows
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            rows[row["id"]] = row
    return rows


def _progress(total: int, desc: str, enabled: bool) -> Any:
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        return None
    return tqdm(total=total, desc=desc, unit="item", file=sys.stderr, disable=not enabled,
                leave=False, dynamic_ncols=True)


def predict_set(gh: GuardHandle, ds: LoadedSet, cache_dir: Path, *, progress: bool = True,
                chunk: int = CHUNK, stop_after: int | None = None) -> list[dict[str, Any]]:
    """Predictions of one guard on one set, in the set's order (cached, resumable).

    ``stop_after`` stops after that many newly scored items (for tests of resuming).
    """
    path = cache_path(cache_dir, gh, ds)
    path.parent.mkdir(parents=True, exist_ok=True)
    done = read_cache(path)
    todo = [r for r in ds.records if r.id not in done]
    bar = _progress(len(ds.records), f"{gh.name} · {ds.name}", progress)
    if bar is not None:
        bar.update(len(ds.records) - len(todo))
    scored = 0
    try:
        with path.open("a", encoding="utf-8") as fh:
            if path.stat().st_size and not path.read_bytes().endswith(b"\n"):
                fh.write("\n")  # end a line torn by an interrupted write
            for start in range(0, len(todo), chunk):
                if stop_after is not None and scored >= stop_after:
                    raise KeyboardInterrupt("stop_after reached")
                recs = todo[start:start + chunk]
                verdicts = _score_chunk(gh, recs)
                for rec, v in zip(recs, verdicts):
                    row = _row(gh, ds, rec, v)
                    done[rec.id] = row
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                fh.flush()
                scored += len(recs)
                if bar is not None:
                    bar.update(len(recs))
    finally:
        if bar is not None:
            bar.close()
    return [done[r.id] for r in ds.records]


@dataclass
class RunResult:
    """Every prediction of a run, with what is needed to compute and report metrics."""

    suite: str
    guards: list[GuardHandle]
    sets: list[LoadedSet]
    predictions: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    timings: dict[tuple[str, str], float] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def run(guards: Sequence[GuardHandle], sets: Sequence[LoadedSet], cache_dir: str | Path, *,
        suite: str = "", progress: bool = True,
        log: Callable[[str], None] | None = None) -> RunResult:
    """Score every set with every guard (cached); returns all predictions."""
    cache = Path(cache_dir)
    res = RunResult(suite=suite, guards=list(guards), sets=list(sets))
    for gh in guards:
        for ds in sets:
            t0 = time.perf_counter()
            res.predictions[(gh.name, ds.name)] = predict_set(gh, ds, cache, progress=progress)
            res.timings[(gh.name, ds.name)] = time.perf_counter() - t0
            if log:
                log(f"{gh.name} · {ds.name}: {len(ds.records)} items in "
                    f"{res.timings[(gh.name, ds.name)]:.1f}s")
    return res


def sample_records(records: Iterable[Record], cap: int | None, salt: str = "eval") -> tuple[Record, ...]:
    """A deterministic sample of at most ``cap`` records (by hash of id; same for every guard)."""
    recs = list(records)
    if cap is None or len(recs) <= cap:
        return tuple(recs)
    keyed = sorted(recs, key=lambda r: hashlib.sha256(f"{salt}:{r.id}".encode()).hexdigest())
    keep = {r.id for r in keyed[:cap]}
    return tuple(r for r in recs if r.id in keep)
