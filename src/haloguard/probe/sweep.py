"""Layer sweep (``haloguard probe sweep``): AUROC per layer on held-out exchanges + a plot.

The collection's exchanges are split by group (``test_fraction`` held out; a harmful prompt
and its counterfactual stay together); for every collected layer a probe is trained on the
train part (its own calibration split inside) and scored on the held-out part, by exchange
(for ``position=all`` a held-out exchange's score is its last row's score).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from haloguard.probe.collect import Collection
from haloguard.probe.train import group_split, train_probe


def sweep(coll: Collection, test_fraction: float = 0.3, seed: int = 0, c: float = 0.1
          ) -> dict[str, Any]:
    from haloguard.eval.metrics import auroc

    groups = np.array(coll.groups)[coll.row_exchange]
    test = group_split(groups, test_fraction, seed + 1)
    last_row = np.r_[np.flatnonzero(np.diff(coll.row_exchange)), len(coll.row_exchange) - 1]
    test_rows = last_row[test[last_row]]
    y_test = coll.unsafe[test_rows]
    n_states = int(coll.meta.get("n_states", max(coll.layers) + 1))
    per_layer = []
    for layer in coll.layers:
        x = coll.features[layer]
        probe = train_probe(x[~test], coll.unsafe[~test], groups[~test], layer=layer,
                            position=coll.position, c=c, seed=seed)
        p = probe.predict_proba(x[test_rows])
        per_layer.append({"layer": layer, "layer_from_end": layer - n_states,
                          "auroc": auroc(y_test, p),
                          "accuracy": float(np.mean((p >= 0.5) == y_test.astype(bool))),
                          "fit_auroc": probe.meta["metrics"]["fit_auroc"]})
    scored = [r for r in per_layer if r["auroc"] is not None]
    best = max(scored, key=lambda r: (r["auroc"], r["layer"])) if scored else None
    return {"model": coll.meta.get("model"), "position": coll.position,
            "n_exchanges": int(coll.row_exchange.max() + 1) if len(coll.row_exchange) else 0,
            "n_test_exchanges": len(test_rows), "n_test_unsafe": int(y_test.sum()),
            "test_fraction": test_fraction, "seed": seed, "c": c, "n_states": n_states,
            "layers": per_layer, "best": best}


def plot(result: dict[str, Any], path: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in result["layers"] if r["auroc"] is not None]
    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=110)
    ax.plot([r["layer"] for r in rows], [r["auroc"] for r in rows], marker="o", label="held-out")
    ax.plot([r["layer"] for r in rows], [r["fit_auroc"] for r in rows], ls="--", alpha=0.5,
            label="fit")
    if result.get("best"):
        b = result["best"]
        ax.axvline(b["layer"], color="grey", lw=0.8)
        ax.set_title(f"{result.get('model')}: best layer {b['layer']} "
                     f"(AUROC {b['auroc']:.3f}, {result['position']})", fontsize=9)
    ax.set_xlabel("hidden-state index (0 = embeddings)")
    ax.set_ylabel("AUROC")
    ax.set_ylim(0.4, 1.01)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p)
    plt.close(fig)
    return p


def write(result: dict[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    j = d / "sweep.json"
    j.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return j, plot(result, d / "sweep.png")
