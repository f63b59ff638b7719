"""De-noised evaluation (seed 001): export failures for review, re-import, compare.

``export`` writes one guard's failures of a run (CSV or JSONL: id, set, text, gold
label, prediction, score, kind, plus empty ``mislabel`` / ``corrected_label`` / ``note``
columns).  Reviewers mark ``mislabel`` = yes where the *benchmark* label is wrong.
Reviewing only a guard's failures can only raise its de-noised score, so ``export
--blind`` writes instead *every* item of the chosen sets with no prediction or score:
a review that never saw the guard's answers relabels hits and misses alike, and the
de-noised figure it gives is one a reader can trust (and reuse for any guard).
``import`` reads the reviewed file back; only rows marked as mislabels change a label.
``denoised`` recomputes the metrics with those labels flipped, next to the raw ones.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from haloguard.eval import failures as F
from haloguard.eval import metrics as M

COLUMNS = ("id", "set", "guard", "text", "gold_label", "predicted", "p_unsafe", "kind",
           "mislabel", "corrected_label", "note")
YES = {"y", "yes", "1", "true", "x", "mislabel"}


def load_run(run_dir: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """(results.json, prediction rows, items by id) of an ``haloguard eval`` output folder."""
    run = Path(run_dir)
    try:
        results = json.loads((run / "results.json").read_text("utf-8"))
        preds = [json.loads(line) for line in (run / "predictions.jsonl").open(encoding="utf-8")
                 if line.strip()]
        items = {}
        for line in (run / "items.jsonl").open(encoding="utf-8"):
            if line.strip():
                d = json.loads(line)
                items[d["id"]] = d
    except OSError as exc:
        raise FileNotFoundError(f"{run} is not an eval output folder ({exc})") from None
    return results, preds, items


def _guard_rows(results: Mapping[str, Any], preds: list[dict[str, Any]], guard: str | None
                ) -> tuple[str, float, list[dict[str, Any]]]:
    guards = list(results["guards"])
    guard = guard or results.get("baseline") or guards[0]
    if guard not in results["guards"]:
        raise KeyError(f"guard {guard!r} not in this run ({', '.join(guards)})")
    return guard, float(results["guards"][guard]["threshold"]), [p for p in preds if p["guard"] == guard]


def export_failures(run_dir: str | Path, out: str | Path, guard: str | None = None) -> int:
    """Write the guard's failures for review; returns how many."""
    results, preds, items = load_run(run_dir)
    guard, thr, rows = _guard_rows(results, preds, guard)
    texts = {k: v["text"] for k, v in items.items()}
    fails = F.find_failures(rows, texts, thr)
    recs = [{"id": f.id, "set": f.set, "guard": f.guard, "text": f.text, "gold_label": f.label,
             "predicted": "error" if f.kind == "error" else ("safe" if f.label == "unsafe" else "unsafe"),
             "p_unsafe": f.p_unsafe, "kind": f.kind, "mislabel": "", "corrected_label": "",
             "note": ""} for f in fails]
    _write(recs, Path(out), COLUMNS)
    return len(recs)


BLIND_COLUMNS = ("id", "set", "text", "gold_label", "mislabel", "corrected_label", "note")


def export_blind(run_dir: str | Path, out: str | Path, sets: Sequence[str] | None = None) -> int:
    """Write every item of ``sets`` (default: all) of a run for a blind review: no guard,
    prediction or score, so the reviewer judges the benchmark label alone.  Returns how many."""
    _, _, items = load_run(run_dir)
    known = list(dict.fromkeys(d["set"] for d in items.values()))
    chosen = list(sets) if sets else known
    unknown = [s for s in chosen if s not in known]
    if unknown:
        raise KeyError(f"set(s) not in this run: {', '.join(unknown)} (run has: {', '.join(known)})")
    recs = [{"id": d["id"], "set": d["set"], "text": d["text"], "gold_label": d.get("label"),
             "mislabel": "", "corrected_label": "", "note": ""}
            for d in items.values() if d["set"] in chosen]
    _write(recs, Path(out), BLIND_COLUMNS)
    return len(recs)


def _write(recs: list[dict[str, Any]], out: Path, columns: Sequence[str]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".csv":
        with out.open("w", encoding="utf-8", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(columns))
            w.writeheader()
            w.writerows(recs)
    else:
        with out.open("w", encoding="utf-8") as fh:
            for r in recs:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")


def read_reviews(path: str | Path) -> dict[str, str]:
    """id -> corrected label, for rows marked as mislabels only."""
    p = Path(path)
    if p.suffix.lower() == ".csv":
        with p.open(encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
    else:
        rows = [json.loads(line) for line in p.open(encoding="utf-8") if line.strip()]
    out: dict[str, str] = {}
    for i, r in enumerate(rows, 1):
        if "id" not in r or "mislabel" not in r:
            raise ValueError(f"{p}: row {i} lacks 'id' or 'mislabel'")
        if str(r.get("mislabel") or "").strip().lower() not in YES:
            continue
        gold = str(r.get("gold_label") or "").strip().lower()
        corrected = str(r.get("corrected_label") or "").strip().lower()
        if corrected not in ("safe", "unsafe"):
            if gold not in ("safe", "unsafe"):
                raise ValueError(f"{p}: row {i}: mislabel marked but no corrected_label/gold_label")
            corrected = "safe" if gold == "unsafe" else "unsafe"
        out[str(r["id"])] = corrected
    return out


def import_reviews(run_dir: str | Path, reviews: str | Path) -> dict[str, str]:
    """Store the reviewed mislabels in ``RUN/adjudication.json`` (merged with earlier ones)."""
    path = Path(run_dir) / "adjudication.json"
    current = json.loads(path.read_text("utf-8")) if path.exists() else {}
    current.update(read_reviews(reviews))
    path.write_text(json.dumps(current, indent=1, sort_keys=True), encoding="utf-8")
    return current


def _summary(rows: Sequence[Mapping[str, Any]], thr: float, relabel: Mapping[str, str],
             rules: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Metrics with ``relabel`` applied; ``rules``: set -> its positive rule (what counts as
    flagged, as in the run's report: e.g. an attack overlay on in-the-wild jailbreaks)."""
    from haloguard.eval.report import flagged

    labels = [1 if relabel.get(r["id"], r["label"]) == "unsafe" else 0 for r in rows]
    m = M.evaluate(labels, [r.get("p_unsafe") for r in rows], threshold=thr,
                   predicted=[flagged(r, thr, (rules or {}).get(r["set"], "unsafe"))
                              for r in rows],
                   errors=[bool(r.get("error")) for r in rows], n_boot=0)
    return {k: m.get(k) for k in ("f1", "precision", "recall", "fpr", "fnr")} | {"n": m.n}


def denoised(run_dir: str | Path, guard: str | None = None,
             reviews: str | Path | Sequence[str | Path] | None = None) -> dict[str, Any]:
    """Raw vs de-noised metrics (pooled and per set) counting only marked mislabels
    (``reviews``: one reviewed file or several, merged; default: the imported ones)."""
    results, preds, _ = load_run(run_dir)
    guard, thr, rows = _guard_rows(results, preds, guard)
    if reviews is not None:
        relabel = {}
        for f in ([reviews] if isinstance(reviews, (str, Path)) else reviews):
            relabel.update(read_reviews(f))
    else:
        path = Path(run_dir) / "adjudication.json"
        relabel = json.loads(path.read_text("utf-8")) if path.exists() else {}
    rules = {s: e["guards"].get(guard, {}).get("positive") or "unsafe"
             for s, e in (results.get("sets") or {}).items()}
    out: dict[str, Any] = {"guard": guard, "mislabels": sum(1 for r in rows if r["id"] in relabel),
                           "pooled": {"raw": _summary(rows, thr, {}, rules),
                                      "denoised": _summary(rows, thr, relabel, rules)}, "sets": {}}
    for s in dict.fromkeys(r["set"] for r in rows):
        srows = [r for r in rows if r["set"] == s]
        moved = [relabel[r["id"]] for r in srows if r["id"] in relabel]
        out["sets"][s] = {"raw": _summary(srows, thr, {}, rules),
                          "denoised": _summary(srows, thr, relabel, rules),
                          "mislabels": len(moved),
                          # how many items the review moved to each label
                          "relabelled": {k: moved.count(k) for k in ("safe", "unsafe")
                                         if k in moved}}
    return out


def denoised_markdown(d: Mapping[str, Any]) -> str:
    def f(v: Any) -> str:
        return "—" if v is None else f"{v:.3f}"

    lines = [f"De-noised evaluation of `{d['guard']}`: {d['mislabels']} items marked as "
             "benchmark mislabels (only those are relabelled).", "",
             "| | F1 | Precision | Recall | FPR | FNR |", "|---|---:|---:|---:|---:|---:|"]
    for k, label in (("raw", "Reported (raw)"), ("denoised", "De-noised")):
        m = d["pooled"][k]
        lines.append(f"| {label} | {f(m['f1'])} | {f(m['precision'])} | {f(m['recall'])} | "
                     f"{f(m['fpr'])} | {f(m['fnr'])} |")
    lines += ["", "| Set | mislabels | raw F1/recall/FPR | de-noised F1/recall/FPR |", "|---|---:|---|---|"]
    for s, e in d["sets"].items():
        r, dn = e["raw"], e["denoised"]
        lines.append(f"| {s} | {e['mislabels']} | {f(r['f1'])} / {f(r['recall'])} / {f(r['fpr'])} | "
                     f"{f(dn['f1'])} / {f(dn['recall'])} / {f(dn['fpr'])} |")
    return "\n".join(lines) + "\n"
