"""Probability calibration (temperature / isotonic) and threshold selection.

Calibrators map a backend's raw unsafe probability to a calibrated one.  They are fitted
on a labelled sample (never on what is reported) and saved as small JSON files that a
guard config, ``--calibration`` or the server can load.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

_EPS = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -700.0, 700.0)))


class Calibrator(Protocol):
    kind: str

    def __call__(self, p: float) -> float: ...

    def to_dict(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class IdentityCalibrator:
    kind: str = "identity"

    def __call__(self, p: float) -> float:
        return float(p)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind}


@dataclass(frozen=True, slots=True)
class TemperatureCalibrator:
    """``sigmoid((logit(p) + bias) / temperature)`` (Platt-style with a temperature)."""

    temperature: float = 1.0
    bias: float = 0.0
    kind: str = "temperature"

    def __call__(self, p: float) -> float:
        z = (float(_logit(np.asarray(p))) + self.bias) / self.temperature
        z = min(max(z, -700.0), 700.0)  # exp() overflows past ~709
        return float(1.0 / (1.0 + math.exp(-z)))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "temperature": self.temperature, "bias": self.bias}


@dataclass(frozen=True, slots=True)
class IsotonicCalibrator:
    """Monotone piecewise-linear map through fitted (x, y) knots."""

    x: tuple[float, ...]
    y: tuple[float, ...]
    kind: str = "isotonic"

    def __call__(self, p: float) -> float:
        return float(np.interp(p, self.x, self.y))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "x": list(self.x), "y": list(self.y)}


def fit_platt_logits(z: np.ndarray, y: np.ndarray, iters: int = 200) -> tuple[float, float]:
    """(temperature, bias) minimising the log loss of sigmoid((z + bias) / T) on (z, y).

    Newton's method with a backtracking line search: a full Newton step can overshoot
    when the classes are nearly separable (one model's validation logits sent the slope
    to 3e5, T to 3e-6 and every probability to 0 or 1), so a step is halved until the
    loss does not rise.
    """
    z = np.asarray(z, np.float64)
    y = np.asarray(y, np.float64)

    def nll(a: float, c: float) -> float:
        t = a * z + c
        return float((np.logaddexp(0.0, t) - y * t).mean())

    a, c = 1.0, 0.0  # p = sigmoid(a*z + c); T = 1/a, bias = c/a
    cur = nll(a, c)
    for _ in range(iters):
        p = _sigmoid(a * z + c)
        g_a, g_c = float(((p - y) * z).mean()), float((p - y).mean())
        w = p * (1 - p)
        h_aa = float((w * z * z).mean()) + 1e-6
        h_ac, h_cc = float((w * z).mean()), float(w.mean()) + 1e-6
        det = h_aa * h_cc - h_ac * h_ac
        if det <= 0:
            break
        da = (h_cc * g_a - h_ac * g_c) / det
        dc = (h_aa * g_c - h_ac * g_a) / det
        step = 1.0
        while step > 1e-6:
            na, nc = a - step * da, c - step * dc
            new = nll(na, nc) if na > 0 else float("inf")
            if new <= cur + 1e-12:
                break
            step /= 2
        else:
            break
        moved = abs(na - a) + abs(nc - c)
        a, c, cur = na, nc, new
        if moved < 1e-9:
            break
    a = max(a, 1e-3)
    return 1.0 / a, c / a


def fit_temperature(p: np.ndarray, y: np.ndarray) -> TemperatureCalibrator:
    """Fit temperature and bias on the logits of ``p`` by minimising the log loss."""
    t, bias = fit_platt_logits(_logit(np.asarray(p, dtype=float)), y)
    return TemperatureCalibrator(temperature=float(t), bias=float(bias))


def fit_isotonic(p: np.ndarray, y: np.ndarray) -> IsotonicCalibrator:
    """Pool-adjacent-violators isotonic regression of ``y`` on ``p``."""
    order = np.argsort(p, kind="mergesort")
    xs = np.asarray(p, dtype=float)[order]
    ys = np.asarray(y, dtype=float)[order]
    blocks: list[list[float]] = []  # [sum_y, count, x_min, x_max]
    for xv, yv in zip(xs, ys):
        blocks.append([yv, 1.0, xv, xv])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] >= blocks[-1][0] / blocks[-1][1]:
            s, c, lo, hi = blocks.pop()
            blocks[-1][0] += s
            blocks[-1][1] += c
            blocks[-1][3] = hi
    kx: list[float] = []
    ky: list[float] = []
    for s, c, lo, hi in blocks:
        v = s / c
        for xv in (lo, hi) if hi > lo else (lo,):
            kx.append(float(xv))
            ky.append(float(v))
    if len(kx) == 1:
        kx, ky = [0.0, 1.0], [ky[0], ky[0]]
    return IsotonicCalibrator(x=tuple(kx), y=tuple(ky))


def calibrator_from_dict(d: dict[str, Any]) -> Calibrator:
    kind = d.get("kind")
    if kind == "identity":
        return IdentityCalibrator()
    if kind == "temperature":
        return TemperatureCalibrator(float(d["temperature"]), float(d.get("bias", 0.0)))
    if kind == "isotonic":
        return IsotonicCalibrator(tuple(map(float, d["x"])), tuple(map(float, d["y"])))
    raise ValueError(f"unknown calibrator kind {kind!r} (expected identity|temperature|isotonic)")


def load_calibration(path: str | Path) -> tuple[Calibrator, float | None]:
    """Load a calibration JSON file: returns (calibrator, threshold or None)."""
    try:
        d = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read calibration file {str(path)!r}: {exc}") from exc
    cal = calibrator_from_dict(d.get("calibrator", d))
    thr = d.get("threshold")
    return cal, (float(thr) if thr is not None else None)


def threshold_at_fpr(p: np.ndarray, y: np.ndarray, target_fpr: float) -> float:
    """The lowest threshold whose FPR on the negatives of (p, y) is at most ``target_fpr``.

    Predictions are ``p >= threshold``.
    """
    p = np.asarray(p, dtype=float)
    y = np.asarray(y).astype(bool)
    neg = np.sort(p[~y])[::-1]
    if neg.size == 0:
        return 0.5
    k = int(math.floor(target_fpr * neg.size))  # negatives allowed above threshold
    if k >= neg.size:
        return float(np.min(p))
    # threshold just above the (k+1)-th highest negative score
    return float(np.nextafter(neg[k], np.inf))


def escalation_band(p: np.ndarray, target_rate: float, center: float = 0.5) -> tuple[float, float]:
    """An uncertainty band ``[lo, hi]`` around ``center`` holding ``target_rate`` of ``p``.

    The band takes the ``round(target_rate * n)`` scores nearest to ``center`` in logit
    distance (the least certain ones); a cascade escalates ``lo <= p <= hi`` to its second
    stage, so on data like the sample about ``target_rate`` of the traffic is escalated.
    """
    if not 0.0 <= target_rate <= 1.0:
        raise ValueError(f"target escalation rate must be in [0, 1], got {target_rate}")
    p = np.asarray(p, dtype=float)
    k = int(round(target_rate * p.size))
    if k == 0 or p.size == 0:
        return float(center), float(center)
    dist = np.abs(_logit(p) - float(_logit(np.asarray(center))))
    near = p[np.argsort(dist, kind="mergesort")[:k]]
    return float(near.min()), float(near.max())
