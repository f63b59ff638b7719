"""Metrics of a run and its reports: results.json, predictions.jsonl, report.md, report.html.

``report.md`` follows seed 000's tables (one per set: Metric × guard with Δ against a
baseline guard), plus a main table (one headline figure per set and guard, with issue 4's
targets), the pooled suite, a threshold sweep (seed 004), per-category and per-language
breakdowns and the failure analysis.  ``report.html`` embeds matplotlib PNG plots.
"""

from __future__ import annotations

import base64
import html
import io
import json
import platform
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from haloguard.eval import failures as F
from haloguard.eval import metrics as M
from haloguard.eval.runner import RunResult

POOLED = "(pooled)"
METRIC_ROWS = (
    ("accuracy", "Accuracy"), ("precision", "Precision"), ("recall", "Recall"), ("f1", "F1"),
    ("fpr", "FPR (overrefusal)"), ("fnr", "FNR (missed harm)"), ("auroc", "AUROC"),
    ("auprc", "AUPRC"), ("ece", "ECE"),
)
LOWER_IS_BETTER = {"fpr", "fnr", "ece", "error_rate"}


def headline(kind: str) -> str:
    """The one figure defined on a set: F1 (both classes), recall (harmful), FPR (benign)."""
    return {"mixed": "f1", "harmful-only": "recall", "benign-only": "fpr"}.get(kind, "f1")


# -- computing --------------------------------------------------------------------------
def _scheme(name: str | None) -> tuple[str, Any] | None:
    """(name, runtime category -> the scheme's label) from the default constitution."""
    if not name:
        return None
    from haloguard.constitution import load_constitution

    cons = load_constitution()
    if name not in cons.schemes:
        raise ValueError(f"unknown category_scheme {name!r}; known: {', '.join(cons.schemes)}")
    ids = set(cons.runtime_categories)
    return name, (lambda c: cons.map_to(name, c) if c in ids else None)


ATTACK_OVERLAYS = ("jailbreak", "prompt_injection")


def flagged(row: Mapping[str, Any], threshold: float, positive: str = "unsafe") -> bool | None:
    """Whether a prediction row counts as flagged under the set's ``positive`` rule (None
    for an errored row): p_unsafe at or over the threshold, or -- under
    ``unsafe_or_attack`` -- an attack overlay."""
    p = row.get("p_unsafe")
    if row.get("error") or p is None:
        return None
    return float(p) >= threshold or (positive == "unsafe_or_attack"
                                     and row.get("overlay") in ATTACK_OVERLAYS)


def _metrics_for(rows: Sequence[Mapping[str, Any]], threshold: float, n_boot: int,
                 scheme: str | None = None,
                 positive: Mapping[str, str] | None = None) -> M.SetMetrics:
    """``positive``: set name -> its rule (sets not named, or None: the safety label)."""
    rules = positive or {}
    return M.evaluate(
        [1 if r["label"] == "unsafe" else 0 for r in rows],
        [r.get("p_unsafe") for r in rows], threshold=threshold,
        predicted=[flagged(r, threshold, rules.get(r.get("set", ""), "unsafe")) for r in rows],
        errors=[bool(r.get("error")) for r in rows],
        gold_categories=[r.get("gold_category") for r in rows],
        top_categories=[r.get("top_category") for r in rows],
        languages=[r.get("lang") for r in rows], n_boot=n_boot, category_scheme=_scheme(scheme),
    )


def compute(res: RunResult, *, threshold: float | None = None, n_boot: int = 1000,
            baseline: str | None = None) -> dict[str, Any]:
    """Every metric per (set, guard), pooled per guard, and the failure analysis."""
    out: dict[str, Any] = {
        "suite": res.suite,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host": platform.node(),
        "baseline": baseline,
        "guards": {g.name: {"model": g.model_id, "threshold": threshold if threshold is not None
                            else g.threshold} for g in res.guards},
        "sets": {}, "pooled": {}, "failures": {}, "skipped": dict(res.skipped),
    }
    texts = {r.id: r.content for ds in res.sets for r in ds.records}
    rules = {ds.name: ds.spec.positive for ds in res.sets}
    for ds in res.sets:
        entry: dict[str, Any] = {"n": len(ds.records), "data_version": ds.version,
                                 "sample": ({"max_per_set": ds.sample, "full_size": ds.full_size}
                                            if ds.sample else None),
                                 "binarise": ds.spec.binarise,
                                 "languages": list(ds.spec.languages),
                                 "eval_only": ds.spec.eval_only,
                                 "targets": [str(t) for t in ds.spec.targets], "guards": {}}
        for g in res.guards:
            thr = out["guards"][g.name]["threshold"]
            rows = res.predictions[(g.name, ds.name)]
            m = _metrics_for(rows, thr, n_boot, ds.spec.category_scheme, rules)
            d = m.to_dict()
            if ds.spec.positive != "unsafe":
                # the safety label alone, beside the set's own rule
                d["positive"] = ds.spec.positive
                pos = [r for r in rows if r["label"] == "unsafe"]
                d["unsafe_label_recall"] = (sum(bool(flagged(r, thr)) for r in pos) / len(pos)
                                            if pos else None)
            d["targets"] = [{"target": str(t), "value": _tval(d, t.metric),
                             "met": t.met(_tval(d, t.metric))} for t in ds.spec.targets]
            d["seconds"] = round(res.timings.get((g.name, ds.name), 0.0), 2)
            entry["guards"][g.name] = d
        out["sets"][ds.name] = entry
    for g in res.guards:
        thr = out["guards"][g.name]["threshold"]
        rows = [r for ds in res.sets for r in res.predictions[(g.name, ds.name)]]
        if not rows:
            continue
        d = _metrics_for(rows, thr, n_boot, positive=rules).to_dict()
        d["curves"] = _curves(rows)
        out["pooled"][g.name] = d
        # an attack item caught by its overlay alone is not a failure of its set
        fails = F.find_failures([r for r in rows if not (
            r["label"] == "unsafe" and rules.get(r["set"]) != "unsafe"
            and flagged(r, thr, rules[r["set"]]))], texts, thr)
        out["failures"][g.name] = F.summarise(fails)
    return out


def _tval(d: Mapping[str, Any], metric: str) -> float | None:
    v = d.get(metric)
    return None if v is None else float(v)


def _curves(rows: Sequence[Mapping[str, Any]], max_points: int = 400) -> dict[str, Any]:
    y = np.array([r["label"] == "unsafe" for r in rows])
    p = np.array([r["p_unsafe"] if r.get("p_unsafe") is not None else (0.0 if yy else 1.0)
                  for r, yy in zip(rows, y)], dtype=float)
    if y.all() or not y.any():
        return {}
    roc, pr = M.roc_points(y, p), M.pr_points(y, p)

    def thin(d: dict[str, list[float]]) -> dict[str, list[float]]:
        n = len(next(iter(d.values())))
        if n <= max_points:
            return {k: [float(x) for x in v if np.isfinite(x)] if k == "threshold" else v
                    for k, v in d.items() if k != "threshold"}
        idx = np.unique(np.linspace(0, n - 1, max_points).astype(int))
        return {k: [v[i] for i in idx] for k, v in d.items() if k != "threshold"}

    return {"roc": thin(roc), "pr": thin(pr)}


# -- writing ----------------------------------------------------------------------------
def write_predictions(res: RunResult, path: Path) -> int:
    n = 0
    with path.open("w", encoding="utf-8") as fh:
        for g in res.guards:
            for ds in res.sets:
                for r in res.predictions[(g.name, ds.name)]:
                    fh.write(json.dumps(r, ensure_ascii=False) + "\n")
                    n += 1
    return n


def write_items(res: RunResult, path: Path) -> None:
    """The evaluated items (id, set, text, label, category, lang) for review and adjudication."""
    with path.open("w", encoding="utf-8") as fh:
        for ds in res.sets:
            for r in ds.records:
                fh.write(json.dumps({"id": r.id, "set": ds.name, "text": r.content,
                                     "label": r.label, "category": r.category, "lang": r.lang},
                                    ensure_ascii=False) + "\n")


def write_all(res: RunResult, out_dir: str | Path, *, threshold: float | None = None,
              baseline: str | None = None, n_boot: int = 1000, html_report: bool = True
              ) -> dict[str, Any]:
    """Write results.json, predictions.jsonl, items.jsonl, report.md and report.html."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if baseline is not None and baseline not in {g.name for g in res.guards}:
        raise ValueError(f"--baseline {baseline!r} is not one of the guards "
                         f"({', '.join(g.name for g in res.guards)})")
    results = compute(res, threshold=threshold, n_boot=n_boot,
                      baseline=baseline or (res.guards[0].name if res.guards else None))
    (out / "results.json").write_text(json.dumps(results, indent=1, ensure_ascii=False,
                                                 default=_json_default), encoding="utf-8")
    write_predictions(res, out / "predictions.jsonl")
    write_items(res, out / "items.jsonl")
    md = render_markdown(results)
    (out / "report.md").write_text(md, encoding="utf-8")
    if html_report:
        (out / "report.html").write_text(render_html(results, md), encoding="utf-8")
    return results


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, float) and not np.isfinite(o):
        return None
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


# -- Markdown ---------------------------------------------------------------------------
def _f(v: Any, digits: int = 4) -> str:
    return "—" if v is None else f"{float(v):.{digits}f}"


def _delta(v: Any, b: Any) -> str:
    if v is None or b is None:
        return "—"
    d = float(v) - float(b)
    return f"{'+' if d >= 0 else '−'}{abs(d):.4f}"


def _ci(d: Mapping[str, Any], metric: str) -> str:
    ci = d.get("ci95", {}).get(metric)
    return f" ({ci[0]:.3f}–{ci[1]:.3f})" if ci else ""


def main_table(results: Mapping[str, Any]) -> str:
    """One row per set: its headline metric per guard (95% CI), target and Δ to baseline."""
    guards = list(results["guards"])
    base = results.get("baseline")
    head = ["Set", "n", "Metric", "Target", *guards]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * 4 + "---:|" * len(guards)]
    rows = [(name, e) for name, e in results["sets"].items()]
    if results.get("pooled"):
        first = next(iter(results["pooled"].values()))
        rows.append((POOLED, {"n": first["n"], "targets": [], "guards": results["pooled"]}))
    for name, e in rows:
        any_g = next(iter(e["guards"].values()))
        metric = headline(any_g["kind"])
        tgt = next((t for t in e.get("targets", []) if t.split()[0] == metric), "")
        vals = {g: e["guards"][g].get(metric) for g in guards}
        present = [v for v in vals.values() if v is not None]
        best = (min(present) if metric in LOWER_IS_BETTER else max(present)) if present else None
        cells = []
        for g in guards:
            d = e["guards"][g]
            v = vals[g]
            s = _f(v, 3)
            if v is not None and best is not None and abs(v - best) < 1e-12 and len(guards) > 1:
                s = f"**{s}**"
            s += _ci(d, metric)
            for t in d.get("targets", []):
                if t["target"].split()[0] == metric and t["met"] is not None:
                    s += " ✓" if t["met"] else " ✗"
            if base and g != base and v is not None and vals.get(base) is not None:
                s += f" [{_delta(v, vals[base])[:-1]}]"
            if d.get("errors"):
                s += f" ({d['errors']} err)"
            cells.append(s)
        label = {"f1": "F1", "recall": "Recall", "fpr": "FPR"}[metric]
        lines.append(f"| {name} | {e['n']} | {label} | {tgt.replace('>=', '≥').replace('<=', '≤')} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def targets_line(entry: Mapping[str, Any], guards: Sequence[str]) -> str:
    """``target: guard value ✓/✗ ...`` for every target of a set."""
    parts = []
    for i, tgt in enumerate(entry.get("targets", [])):
        cells = []
        for g in guards:
            ts = entry["guards"][g].get("targets", [])
            if i < len(ts):
                t = ts[i]
                mark = "" if t["met"] is None else (" ✓" if t["met"] else " ✗")
                cells.append(f"`{g}` {_f(t['value'], 3)}{mark}")
        parts.append(f"{tgt.replace('>=', '≥').replace('<=', '≤')}: " + ", ".join(cells))
    return ("Targets — " + "; ".join(parts) + ".") if parts else ""


def peer_comparison(results: Mapping[str, Any]) -> str:
    """How often the baseline's headline figure beats every ``peer:*`` guard."""
    base = results.get("baseline")
    peers = [g for g in results["guards"] if g.startswith("peer:") and g != base]
    if not base or not peers or base.startswith("peer:"):
        return ""
    wins, total, lost = 0, 0, []
    for name, e in results["sets"].items():
        d = e["guards"][base]
        metric = headline(d["kind"])
        v = d.get(metric)
        if v is None:
            continue
        total += 1
        others = [e["guards"][p].get(metric) for p in peers]
        better = all(o is None or (v < o if metric in LOWER_IS_BETTER else v > o) for o in others)
        wins += better
        if not better:
            lost.append(name)
    line = (f"`{base}` beats every peer ({', '.join(peers)}) on {wins} of {total} sets "
            "(headline figure, strictly better; ties do not count)")
    return line + (f"; not on: {', '.join(lost)}." if lost else ".")


def set_table(entry: Mapping[str, Any], guards: Sequence[str], base: str | None) -> str:
    """Seed-000 style: Metric × guard, Δ columns against the baseline."""
    others = [g for g in guards if g != base] if base else []
    head = ["Metric", *guards, *[f"Δ {g}" for g in others]]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    gd = entry["guards"]
    rows = list(METRIC_ROWS)
    for key, label in rows:
        if all(gd[g].get(key) is None for g in guards):
            continue
        cells = [_f(gd[g].get(key)) for g in guards]
        cells += [_delta(gd[g].get(key), gd[base].get(key)) for g in others]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    for target in M.FPR_TARGETS:
        vals = [next((t for t in gd[g].get("tpr_at_fpr", []) if t["target_fpr"] == target), None)
                for g in guards]
        if all(v is None for v in vals):
            continue
        cells = [_f(v["tpr"]) if v else "—" for v in vals]
        cells += [_delta(vals[guards.index(g)]["tpr"] if vals[guards.index(g)] else None,
                         vals[guards.index(base)]["tpr"] if vals[guards.index(base)] else None)
                  for g in others]
        lines.append(f"| TPR @ FPR ≤ {target:.1%} | " + " | ".join(cells) + " |")
    if any(gd[g].get("category_accuracy") is not None for g in guards):
        cells = [_f(gd[g].get("category_accuracy")) for g in guards]
        cells += [_delta(gd[g].get("category_accuracy"), gd[base].get("category_accuracy"))
                  for g in others]
        lines.append("| Top category right | " + " | ".join(cells) + " |")
    if any(gd[g].get("category_accuracy_scheme") is not None for g in guards):
        name = next(gd[g]["category_scheme"] for g in guards if gd[g].get("category_scheme"))
        cells = [_f(gd[g].get("category_accuracy_scheme")) for g in guards]
        cells += [_delta(gd[g].get("category_accuracy_scheme"),
                         gd[base].get("category_accuracy_scheme")) for g in others]
        lines.append(f"| Top category right, in {name}'s taxonomy | " + " | ".join(cells) + " |")
    if any(gd[g].get("positive") for g in guards):
        cells = [_f(gd[g].get("unsafe_label_recall")) for g in guards]
        cells += [_delta(gd[g].get("unsafe_label_recall"), gd[base].get("unsafe_label_recall"))
                  for g in others]
        lines.append("| Recall of the safety label alone (the set counts an attack overlay too) | "
                     + " | ".join(cells) + " |")
    cells = [str(gd[g].get("errors", 0)) for g in guards] + ["" for _ in others]
    lines.append("| Errors | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def sweep_table(d: Mapping[str, Any]) -> str:
    lines = ["| Constraint | Threshold | TPR | FPR |", "|---|---:|---:|---:|"]
    for t in d.get("tpr_at_fpr", []):
        lines.append(f"| FPR ≤ {t['target_fpr']:.1%} | {t['threshold']:.4f} | {t['tpr']:.3f} | "
                     f"{t['fpr']:.4f} |")
    return "\n".join(lines)


def category_table(results: Mapping[str, Any]) -> str:
    guards = list(results["guards"])
    cats = sorted({c for g in guards for c in results["pooled"].get(g, {}).get("per_category", {})})
    if not cats:
        return ""
    lines = ["| Category | n | " + " | ".join(guards) + " |", "|---|---:|" + "---:|" * len(guards)]
    for c in cats:
        pcs = [results["pooled"][g]["per_category"].get(c, {}) for g in guards]
        n = max(pc.get("n", 0) for pc in pcs)
        lines.append(f"| {c} | {n} | " + " | ".join(_f(pc.get("recall"), 3) for pc in pcs) + " |")
    return "\n".join(lines)


def confusion_table(results: Mapping[str, Any], guard: str, top: int = 3) -> str:
    """Gold category -> the guard's most frequent top categories (pooled harmful items)."""
    conf = results["pooled"].get(guard, {}).get("category_confusion", {})
    if not conf:
        return ""
    lines = ["| Gold category | n | top-category right | most often predicted |", "|---|---:|---:|---|"]
    for gold, row in conf.items():
        n = sum(row.values())
        common = sorted(row.items(), key=lambda kv: -kv[1])[:top]
        lines.append(f"| {gold} | {n} | {row.get(gold, 0) / n:.3f} | "
                     + ", ".join(f"{c} ({k})" for c, k in common) + " |")
    return "\n".join(lines)


def language_table(results: Mapping[str, Any]) -> str:
    guards = list(results["guards"])
    langs = sorted({lang for g in guards for lang in results["pooled"].get(g, {}).get("per_language", {})})
    if not langs:
        return ""
    lines = ["| Language | n harmful | n benign | " + " | ".join(f"{g} recall / FPR" for g in guards)
             + " |", "|---|---:|---:|" + "---:|" * len(guards)]
    for lang in langs:
        pls = [results["pooled"][g]["per_language"].get(lang, {}) for g in guards]
        first = next(p for p in pls if p)
        cells = [f"{_f(p.get('recall'), 3)} / {_f(p.get('fpr'), 3)}" for p in pls]
        lines.append(f"| {lang} | {first.get('n_pos', 0)} | {first.get('n_neg', 0)} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_markdown(results: Mapping[str, Any]) -> str:
    guards = list(results["guards"])
    base = results.get("baseline")
    parts = [f"# HaloGuard evaluation — suite `{results['suite']}`", "",
             f"Generated {results['created']}. Harmful = positive class. Single-class sets report "
             "only what is defined (recall on harmful-only sets, FPR on benign-only sets); the "
             f"pooled row concatenates every set. Errored predictions count as wrong. "
             f"Baseline for Δ: `{base}`. Bold = best per row; ✓/✗ = target met/missed; "
             "brackets after a value: 95% bootstrap CI, and [Δ vs baseline].", "",
             "## Guards", "", "| Guard | Model | Threshold |", "|---|---|---:|"]
    for g, info in results["guards"].items():
        parts.append(f"| {g} | `{info['model']}` | {info['threshold']:.4f} |")
    parts += ["", "## Main table", "", main_table(results), ""]
    cmp_line = peer_comparison(results)
    if cmp_line:
        parts += [cmp_line, ""]
    for name, entry in results["sets"].items():
        parts += [f"## {name} (n={entry['n']})", "",
                  f"Labels: {entry['binarise']}. Data: `{entry['data_version']}`"
                  + (f", deterministic sample of {entry['n']} of {entry['sample']['full_size']} items."
                     if entry.get("sample") and entry["sample"]["full_size"] > entry["n"] else ".")
                  + (f" Targets: {', '.join(entry['targets'])}." if entry["targets"] else ""), "",
                  set_table(entry, guards, base), ""]
        tl = targets_line(entry, guards)
        if tl:
            parts += [tl, ""]
    if results.get("pooled"):
        parts += [f"## Pooled over the suite (n={next(iter(results['pooled'].values()))['n']})", "",
                  set_table({"guards": results["pooled"]}, guards, base), "",
                  "### Threshold sweep (pooled)", ""]
        for g in guards:
            if g in results["pooled"]:
                parts += [f"`{g}`", "", sweep_table(results["pooled"][g]), ""]
        cat = category_table(results)
        if cat:
            parts += ["### Per-category recall (harmful items with a known category)", "", cat, ""]
            conf = confusion_table(results, base) if base else ""
            if conf:
                parts += [f"### Category confusion of `{base}` (gold vs top category)", "", conf, ""]
        lang = language_table(results)
        if lang:
            parts += ["### Per-language", "", lang, ""]
    if results.get("failures"):
        parts += ["## Failure analysis", ""]
        for g in guards:
            if g in results["failures"]:
                parts += [F.summary_markdown(results["failures"][g], g), ""]
    if results.get("skipped"):
        parts += ["## Skipped sets", ""] + [f"- {k}: {v}" for k, v in results["skipped"].items()]
    return "\n".join(parts).rstrip() + "\n"


# -- HTML -------------------------------------------------------------------------------
def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def make_plots(results: Mapping[str, Any]) -> dict[str, str]:
    """Base64 PNGs: ROC + PR curves, reliability diagram, per-set, per-category, per-language."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    guards = list(results["guards"])
    pooled = results.get("pooled", {})
    plots: dict[str, str] = {}
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]

    if any(pooled.get(g, {}).get("curves") for g in guards):
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 5))
        for i, g in enumerate(guards):
            cv = pooled.get(g, {}).get("curves")
            if not cv:
                continue
            c = colors[i % len(colors)]
            a1.plot(cv["roc"]["fpr"], cv["roc"]["tpr"], color=c,
                    label=f"{g} (AUROC {_f(pooled[g].get('auroc'), 3)})")
            a2.step(cv["pr"]["recall"], cv["pr"]["precision"], color=c, where="post",
                    label=f"{g} (AP {_f(pooled[g].get('auprc'), 3)})")
        a1.plot([0, 1], [0, 1], ls=":", color="grey")
        a1.set(xlabel="False positive rate", ylabel="True positive rate", title="ROC (pooled)")
        a2.set(xlabel="Recall", ylabel="Precision", title="Precision–recall (pooled)", ylim=(0, 1.02))
        a1.legend(fontsize=8, loc="lower right")
        a2.legend(fontsize=8, loc="lower left")
        plots["roc_pr"] = _png(fig)

    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    ax.plot([0, 1], [0, 1], ls=":", color="grey", label="perfect calibration")
    for i, g in enumerate(guards):
        bins = pooled.get(g, {}).get("reliability") or []
        if bins:
            ax.plot([b["mean_p"] for b in bins], [b["frac_unsafe"] for b in bins], marker="o",
                    color=colors[i % len(colors)], label=f"{g} (ECE {_f(pooled[g].get('ece'), 3)})")
    ax.set(xlabel="Mean predicted p(unsafe)", ylabel="Fraction harmful",
           title="Reliability diagram (pooled)", xlim=(0, 1), ylim=(0, 1))
    ax.legend(fontsize=8)
    plots["reliability"] = _png(fig)

    sets = list(results["sets"])
    if sets:
        fig, ax = plt.subplots(figsize=(max(8, 0.9 * len(sets) + 3), 4.8))
        width = 0.8 / max(len(guards), 1)
        x = np.arange(len(sets))
        for i, g in enumerate(guards):
            vals = []
            for s in sets:
                d = results["sets"][s]["guards"][g]
                m = headline(d["kind"])
                v = d.get(m)
                vals.append(np.nan if v is None else (1 - v if m == "fpr" else v))
            ax.bar(x + i * width, vals, width, label=g, color=colors[i % len(colors)])
        ax.set_xticks(x + width * (len(guards) - 1) / 2, sets, rotation=35, ha="right", fontsize=8)
        ax.set(ylim=(0, 1.05), ylabel="recall (harmful sets) · 1 − FPR (benign sets)",
               title="Per set (higher is better)")
        ax.legend(fontsize=8, ncol=min(len(guards), 3))
        plots["per_set"] = _png(fig)

    cats = sorted({c for g in guards for c in pooled.get(g, {}).get("per_category", {})})
    if cats:
        fig, ax = plt.subplots(figsize=(max(8, 0.55 * len(cats) + 3), 4.8))
        width = 0.8 / max(len(guards), 1)
        x = np.arange(len(cats))
        for i, g in enumerate(guards):
            pc = pooled.get(g, {}).get("per_category", {})
            vals = [pc.get(c, {}).get("recall", np.nan) for c in cats]
            ax.bar(x + i * width, [np.nan if v is None else v for v in vals], width, label=g,
                   color=colors[i % len(colors)])
        ax.set_xticks(x + width * (len(guards) - 1) / 2, cats, rotation=45, ha="right", fontsize=7)
        ax.set(ylim=(0, 1.05), ylabel="recall", title="Per-category recall (pooled harmful items)")
        ax.legend(fontsize=8, ncol=min(len(guards), 3))
        plots["per_category"] = _png(fig)

    langs = sorted({lang for g in guards for lang in pooled.get(g, {}).get("per_language", {})})
    if langs:
        fig, (a1, a2) = plt.subplots(2, 1, figsize=(max(8, 0.45 * len(langs) + 3), 7), sharex=True)
        width = 0.8 / max(len(guards), 1)
        x = np.arange(len(langs))
        for i, g in enumerate(guards):
            pl = pooled.get(g, {}).get("per_language", {})
            rec = [pl.get(lang, {}).get("recall") for lang in langs]
            fpr = [pl.get(lang, {}).get("fpr") for lang in langs]
            c = colors[i % len(colors)]
            a1.bar(x + i * width, [np.nan if v is None else v for v in rec], width, label=g, color=c)
            a2.bar(x + i * width, [np.nan if v is None else v for v in fpr], width, label=g, color=c)
        a1.set(ylim=(0, 1.05), ylabel="recall", title="Per-language recall (harmful) and FPR (benign)")
        a2.set(ylim=(0, 1.05), ylabel="FPR")
        a2.set_xticks(x + width * (len(guards) - 1) / 2, langs, rotation=45, ha="right", fontsize=8)
        a1.legend(fontsize=8, ncol=min(len(guards), 3))
        plots["per_language"] = _png(fig)
    return plots


def _md_to_html(md: str) -> str:
    """A small Markdown subset (headings, tables, paragraphs, **bold**, `code`) to HTML."""
    import re

    def inline(s: str) -> str:
        s = html.escape(s)
        s = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", s)
        s = re.sub(r"`(.+?)`", r"<code>\1</code>", s)
        return re.sub(r"(?<![\w*])\*(.+?)\*(?![\w*])", r"<i>\1</i>", s)

    out: list[str] = []
    lines = md.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            out.append(f"<h{level}>{inline(line[level:].strip())}</h{level}>")
        elif line.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                rows.append([c.strip() for c in lines[i].strip().strip("|").split("|")])
                i += 1
            out.append("<table><thead><tr>" + "".join(f"<th>{inline(c)}</th>" for c in rows[0])
                       + "</tr></thead><tbody>")
            for r in rows[2:]:
                out.append("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in r) + "</tr>")
            out.append("</tbody></table>")
            continue
        elif line.strip():
            out.append(f"<p>{inline(line)}</p>")
        i += 1
    return "\n".join(out)


_CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;
max-width:1300px;color:#222;padding:0 16px}table{border-collapse:collapse;margin:8px 0 20px;
font-size:13px;display:block;overflow-x:auto;max-width:100%}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}th:first-child,
td:first-child{text-align:left}thead th{background:#f2f4f7}h1{font-size:26px}h2{margin-top:34px;
border-bottom:1px solid #ddd;padding-bottom:4px}code{background:#f4f4f4;padding:0 3px}
figure{margin:12px 0 26px}figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:13px;color:#555}"""

_CAPTIONS = {
    "roc_pr": "ROC and precision–recall curves over the pooled suite",
    "reliability": "Reliability diagram: observed fraction harmful per bin of predicted p(unsafe)",
    "per_set": "Headline figure per set (recall on harmful sets, 1 − FPR on benign sets)",
    "per_category": "Recall per constitution category (harmful items with a known category)",
    "per_language": "Recall and FPR per language",
}


def render_html(results: Mapping[str, Any], md: str | None = None) -> str:
    """A self-contained HTML page: plots (base64 PNG) then the Markdown report's tables."""
    plots = make_plots(results)
    md = md if md is not None else render_markdown(results)
    figs = "\n".join(
        f'<figure id="plot-{k}"><img alt="{html.escape(_CAPTIONS[k])}" '
        f'src="data:image/png;base64,{v}"><figcaption>{html.escape(_CAPTIONS[k])}</figcaption></figure>'
        for k, v in plots.items())
    body = _md_to_html(md)
    head, _, rest = body.partition("\n")
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>HaloGuard evaluation — {html.escape(str(results['suite']))}</title>"
            f"<style>{_CSS}</style></head><body>\n{head}\n<h2>Plots</h2>\n{figs}\n{rest}\n"
            "</body></html>\n")
