"""A linear activation probe: standardised features -> logistic regression -> temperature.

Training (``train_probe``): the rows are split by exchange group into a fit part and a
held-out calibration part (``cal_fraction``); the features are standardised with the fit
part's mean / std, an L2 logistic regression is fitted (scikit-learn's lbfgs when installed,
else a numpy gradient-descent fallback), and a temperature + bias
(:func:`haloguard.calibration.fit_temperature`) is fitted on the held-out part's logits.

Inference is numpy only, and :meth:`LinearProbe.folded` folds standardisation, weights and
temperature into one ``(w, b)`` so guarded generation pays one dot product per token.

Artifact: a directory with ``probe.npz`` (mean, scale, coef) and ``probe.json`` (layer,
position, intercept, temperature, bias, threshold, model, metrics).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from haloguard.calibration import fit_temperature


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))


@dataclass
class LinearProbe:
    layer: int
    position: str
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    temperature: float = 1.0
    bias: float = 0.0
    threshold: float = 0.5
    meta: dict[str, Any] = field(default_factory=dict)

    def logit(self, x: np.ndarray) -> np.ndarray:
        """Calibrated logit(s) of feature row(s) ``x`` (hidden states)."""
        x = np.asarray(x, dtype=np.float64)
        z = ((x - self.mean) / self.scale) @ self.coef + self.intercept
        return (z + self.bias) / self.temperature

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Calibrated P(unsafe) for feature row(s)."""
        return _sigmoid(self.logit(x))

    def folded(self) -> tuple[np.ndarray, float]:
        """(w, b) with ``P = sigmoid(h @ w + b)``: standardisation and temperature folded in."""
        w = self.coef / self.scale / self.temperature
        b = (self.intercept - float(np.sum(self.coef * self.mean / self.scale)) + self.bias) \
            / self.temperature
        return w.astype(np.float32), float(b)

    def save(self, out_dir: str | Path) -> Path:
        d = Path(out_dir)
        d.mkdir(parents=True, exist_ok=True)
        np.savez(d / "probe.npz", mean=self.mean.astype(np.float32),
                 scale=self.scale.astype(np.float32), coef=self.coef.astype(np.float32))
        (d / "probe.json").write_text(json.dumps({
            "kind": "haloguard-linear-probe", "version": 1, "layer": self.layer,
            "position": self.position, "intercept": self.intercept,
            "temperature": self.temperature, "bias": self.bias, "threshold": self.threshold,
            "hidden_size": int(self.coef.shape[0]), **self.meta}, indent=2) + "\n",
            encoding="utf-8")
        return d


def load_probe(path: str | Path) -> LinearProbe:
    """Load a probe directory (or its ``probe.json`` / ``probe.npz``)."""
    p = Path(path)
    d = p if p.is_dir() else p.parent
    try:
        cfg = json.loads((d / "probe.json").read_text(encoding="utf-8"))
        with np.load(d / "probe.npz") as z:
            mean, scale, coef = (z[k].astype(np.float64) for k in ("mean", "scale", "coef"))
    except FileNotFoundError as exc:
        raise ValueError(f"{path}: not a probe directory (probe.json + probe.npz): {exc}") from None
    known = {"kind", "version", "layer", "position", "intercept", "temperature", "bias",
             "threshold", "hidden_size"}
    return LinearProbe(int(cfg["layer"]), str(cfg.get("position", "last")), mean, scale, coef,
                       float(cfg["intercept"]), float(cfg.get("temperature", 1.0)),
                       float(cfg.get("bias", 0.0)), float(cfg.get("threshold", 0.5)),
                       {k: v for k, v in cfg.items() if k not in known})


def _fit_logreg(x: np.ndarray, y: np.ndarray, c: float, seed: int) -> tuple[np.ndarray, float]:
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError:  # numpy fallback: full-batch gradient descent with L2
        w, b = np.zeros(x.shape[1]), 0.0
        lr, lam = 0.5, 1.0 / (c * len(y))
        for _ in range(2000):
            g = _sigmoid(x @ w + b) - y
            w -= lr * (x.T @ g / len(y) + lam * w)
            b -= lr * float(g.mean())
        return w, b
    clf = LogisticRegression(C=c, max_iter=2000, random_state=seed)
    clf.fit(x, y)
    return clf.coef_[0].astype(np.float64), float(clf.intercept_[0])


def group_split(groups: np.ndarray, fraction: float, seed: int = 0) -> np.ndarray:
    """Boolean mask of rows whose group falls in the held-out ``fraction`` (by hash)."""
    from haloguard.probe.exchanges import _h

    uniq = sorted(set(map(str, groups)))
    held = {g for g in uniq if (_h("cal", str(seed), g) % 10_000) < fraction * 10_000}
    mask = np.array([str(g) in held for g in groups])
    if mask.all() or not mask.any():  # tiny sets: fall back to every k-th group
        k = max(2, int(round(1 / max(fraction, 1e-3))))
        held = set(uniq[::k])
        mask = np.array([str(g) in held for g in groups])
    return mask


def train_probe(x: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None, *,
                layer: int = -1, position: str = "last", c: float = 0.1,
                cal_fraction: float = 0.2, seed: int = 0,
                meta: dict[str, Any] | None = None) -> LinearProbe:
    """Fit a calibrated linear probe on rows ``x`` (n, d) with binary targets ``y``."""
    from haloguard.eval.metrics import auroc, ece

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y).astype(np.int64)
    if len(set(y.tolist())) < 2:
        raise ValueError("the probe needs both classes (safe and unsafe rows)")
    groups = np.arange(len(y)).astype(str) if groups is None else np.asarray(groups)
    cal = group_split(groups, cal_fraction, seed) if cal_fraction > 0 else np.zeros(len(y), bool)
    if len(set(y[~cal].tolist())) < 2:
        cal = np.zeros(len(y), bool)
    fit = ~cal
    mean = x[fit].mean(0)
    scale = x[fit].std(0)
    scale[scale < 1e-6] = 1.0
    w, b = _fit_logreg((x[fit] - mean) / scale, y[fit], c, seed)
    probe = LinearProbe(layer, position, mean, scale, w, b, meta=dict(meta or {}))
    metrics: dict[str, Any] = {"n_fit": int(fit.sum()), "n_cal": int(cal.sum()),
                               "fit_auroc": auroc(y[fit], probe.predict_proba(x[fit]))}
    if cal.any() and len(set(y[cal].tolist())) == 2:
        raw = probe.predict_proba(x[cal])
        with np.errstate(over="ignore"):
            t = fit_temperature(raw, y[cal])
        probe.temperature, probe.bias = t.temperature, t.bias
        p = probe.predict_proba(x[cal])
        metrics.update(cal_auroc=auroc(y[cal], p), cal_ece_before=ece(y[cal], raw),
                       cal_ece=ece(y[cal], p))
    probe.meta["metrics"] = metrics
    probe.meta.setdefault("c", c)
    return probe


def train_from_collection(coll: Any, layer: int | None = None, **kw: Any) -> LinearProbe:
    """Train on a :class:`~haloguard.probe.collect.Collection` at ``layer`` (negative allowed)."""
    from haloguard.probe.collect import resolve_layer

    n_states = int(coll.meta.get("n_states", max(coll.layers) + 1))
    idx = coll.layers[-1] if layer is None else resolve_layer(layer, n_states)
    if idx not in coll.features:
        raise ValueError(f"layer {layer} ({idx}) was not collected; have {coll.layers}")
    groups = np.array(coll.groups)[coll.row_exchange]
    meta = {"model": coll.meta.get("model"), "n_states": n_states,
            "chat_template": coll.meta.get("chat_template", True), **kw.pop("meta", {})}
    return train_probe(coll.features[idx], coll.unsafe, groups, layer=idx,
                       position=coll.position, meta=meta, **kw)
