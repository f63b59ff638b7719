"""The second-stage **exchange classifier**: (prompt, response so far) -> three classes
``safe_compliance``, ``safe_refusal``, ``unsafe_compliance``.

Design (CPU-first): signed hashed n-gram features in two namespaces — the response (word
1-2-grams + character 3-5-grams) and the prompt (word 1-2-grams + character 4-5-grams) — and a multinomial
logistic head in numpy (scikit-learn only to train).  Why not MiniLM / ModernBERT here:

* it is called *inside* the decode loop whenever the probe pauses, so it must cost far less
  than a decode step: featurising + scoring an exchange takes ~1-3 ms in pure Python/numpy
  (MiniLM-int8 ONNX is ~10-30 ms per exchange on this CPU, a ModernBERT-base much more);
* the stance of an answer (refusing vs complying) is carried by surface phrasing that
  n-grams capture, and the request's intent is carried by prompt n-grams; a softmax over
  both lets "refusal" win whenever a refusal is present and otherwise lets the prompt
  decide between safe and unsafe compliance;
* no extra model files or runtimes: the artifact is one small ``.npz`` + ``.json``.

A semantic encoder would generalise better to paraphrased real answers; the interface
(:class:`ExchangeClassifier.classify`) is the same, so a MiniLM / ModernBERT head can replace
this one later.  ``train_exchange`` adds **prefix augmentation** (truncated responses as
extra rows with the same label) so partial responses seen at a pause are in-distribution,
and picks the block threshold on a held-out split (best F1 for unsafe compliance with the
safe-compliance block rate kept under ``max_benign_block``).
"""

from __future__ import annotations

import json
import re
import time
import unicodedata
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

LABELS = ("safe_compliance", "safe_refusal", "unsafe_compliance")
UNSAFE = 2
_WORD = re.compile(r"\w+", re.UNICODE)
_WS = re.compile(r"\s+")
DEFAULT_DIR = Path(__file__).resolve().parent / "artifacts" / "exchange"


def _norm(text: str) -> str:
    return _WS.sub(" ", unicodedata.normalize("NFKC", text).lower()).strip()


def featurize(prompt: str, response: str, bits: int = 16, max_chars: int = 2000
              ) -> tuple[np.ndarray, np.ndarray]:
    """Hashed features of one exchange: (bucket indices, L2-normalised signed values)."""
    feats: dict[int, float] = {}
    mask = (1 << bits) - 1

    def add(key: str, w: float) -> None:
        h = zlib.crc32(key.encode("utf-8", "surrogatepass"))
        i = (h >> 1) & mask
        feats[i] = feats.get(i, 0.0) + (w if h & 1 else -w)

    r = _norm(response)[:max_chars]
    rw = _WORD.findall(r)
    for i, w in enumerate(rw):
        add("rw|" + w, 1.0)
        if i:
            add("rb|" + rw[i - 1] + " " + w, 1.0)
    t = " " + r + " "
    for n in (3, 4, 5):
        for i in range(len(t) - n + 1):
            add(f"rc{n}|" + t[i:i + n], 0.5)
    add("r_len|" + str(min(len(rw), 64) // 8), 1.0)
    pw = _WORD.findall(_norm(prompt)[:max_chars])
    for i, w in enumerate(pw):
        add("pw|" + w, 1.0)
        if i:
            add("pb|" + pw[i - 1] + " " + w, 1.0)
    t = " " + " ".join(pw) + " "
    for n in (4, 5):
        for i in range(len(t) - n + 1):
            add(f"pc{n}|" + t[i:i + n], 0.5)
    if not feats:
        return np.zeros(0, np.int64), np.zeros(0, np.float32)
    idx = np.fromiter(feats.keys(), np.int64, len(feats))
    val = np.fromiter(feats.values(), np.float64, len(feats))
    val = np.sign(val) * np.sqrt(np.abs(val))
    val /= max(float(np.linalg.norm(val)), 1e-12)
    return idx, val.astype(np.float32)


@dataclass(frozen=True)
class ExchangeResult:
    """The classifier's view of one (partial) exchange."""

    label: str
    probs: dict[str, float]
    p_unsafe: float
    unsafe: bool
    threshold: float
    latency_ms: float = 0.0
    model: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "probs": dict(self.probs), "p_unsafe": self.p_unsafe,
                "unsafe": self.unsafe, "threshold": self.threshold,
                "latency_ms": round(self.latency_ms, 3), "model": self.model}


@dataclass
class ExchangeClassifier:
    weights: np.ndarray          # (2**bits, 3) float32
    intercept: np.ndarray        # (3,)
    bits: int = 16
    threshold: float = 0.5       # block when P(unsafe_compliance) >= threshold
    name: str = "exchange-hashed-v1"
    meta: dict[str, Any] = field(default_factory=dict)

    def probs(self, prompt: str, response: str) -> np.ndarray:
        idx, val = featurize(prompt, response, self.bits)
        z = val @ self.weights[idx].astype(np.float64) + self.intercept
        z = np.exp(z - z.max())
        return z / z.sum()

    def classify(self, prompt: str, response: str, threshold: float | None = None
                 ) -> ExchangeResult:
        t0 = time.perf_counter()
        p = self.probs(prompt, response)
        thr = self.threshold if threshold is None else float(threshold)
        pu = float(p[UNSAFE])
        unsafe = pu >= thr
        label = LABELS[UNSAFE] if unsafe else LABELS[int(np.argmax(p[:UNSAFE]))]
        return ExchangeResult(label, {n: float(v) for n, v in zip(LABELS, p)}, pu, unsafe, thr,
                              (time.perf_counter() - t0) * 1000, self.name)

    def save(self, out_dir: str | Path) -> Path:
        d = Path(out_dir)
        d.mkdir(parents=True, exist_ok=True)
        rows = np.flatnonzero(np.any(self.weights != 0, axis=1))
        np.savez_compressed(d / "exchange.npz", rows=rows.astype(np.int32),
                            weights=self.weights[rows].astype(np.float16),
                            intercept=self.intercept.astype(np.float64))
        (d / "exchange.json").write_text(json.dumps({
            "kind": "haloguard-exchange-classifier", "version": 1, "name": self.name,
            "labels": list(LABELS), "bits": self.bits, "threshold": self.threshold,
            **self.meta}, indent=2) + "\n", encoding="utf-8")
        return d


def load_exchange_classifier(path: str | Path | None = None) -> ExchangeClassifier:
    """Load a classifier directory (default: the bundled proxy-trained one)."""
    d = Path(path) if path else DEFAULT_DIR
    if d.is_file():
        d = d.parent
    try:
        cfg = json.loads((d / "exchange.json").read_text(encoding="utf-8"))
        with np.load(d / "exchange.npz") as z:
            rows, w, b = z["rows"], z["weights"], z["intercept"]
    except FileNotFoundError as exc:
        raise ValueError(f"{d}: not an exchange classifier directory "
                         f"(exchange.json + exchange.npz): {exc}") from None
    bits = int(cfg["bits"])
    weights = np.zeros((1 << bits, len(LABELS)), np.float32)
    weights[rows] = w.astype(np.float32)
    known = {"kind", "version", "name", "labels", "bits", "threshold"}
    return ExchangeClassifier(weights, b, bits, float(cfg.get("threshold", 0.5)),
                              str(cfg.get("name", "exchange-hashed-v1")),
                              {k: v for k, v in cfg.items() if k not in known})


def prefix_augment(rows: Sequence[dict[str, Any]], fractions: Sequence[float] = (0.25, 0.5, 0.75),
                   min_words: int = 3) -> list[dict[str, Any]]:
    """The rows plus truncated-response copies (same label) at word ``fractions``."""
    out = list(rows)
    for r in rows:
        words = r["response"].split()
        seen = {len(words)}
        for f in fractions:
            k = max(min_words, int(round(len(words) * f)))
            if k in seen or k >= len(words):
                continue
            seen.add(k)
            out.append({**r, "response": " ".join(words[:k]), "prefix_of": r.get("id")})
    return out


def _matrix(rows: Sequence[dict[str, Any]], bits: int) -> Any:
    from scipy.sparse import csr_matrix

    data, indices, indptr = [], [], [0]
    for r in rows:
        idx, val = featurize(r["prompt"], r["response"], bits)
        indices.append(idx)
        data.append(val)
        indptr.append(indptr[-1] + len(idx))
    return csr_matrix((np.concatenate(data), np.concatenate(indices), np.array(indptr)),
                      shape=(len(rows), 1 << bits))


def pick_threshold(y: np.ndarray, p_unsafe: np.ndarray, max_benign_block: float = 0.01
                   ) -> dict[str, float]:
    """Threshold with the best unsafe-compliance F1 whose safe-compliance block rate is
    <= ``max_benign_block`` (falls back to the best F1)."""
    pos = y == UNSAFE
    benign = y == 0
    best: tuple[float, float, float] | None = None
    fallback: tuple[float, float, float] | None = None
    for t in np.unique(np.r_[p_unsafe, 0.5]):
        pred = p_unsafe >= t
        tp, fp = int((pred & pos).sum()), int((pred & ~pos).sum())
        fn = int((~pred & pos).sum())
        f1 = 2 * tp / max(2 * tp + fp + fn, 1)
        block = float(pred[benign].mean()) if benign.any() else 0.0
        cand = (f1, -abs(float(t) - 0.5), float(t))
        if fallback is None or cand > fallback:
            fallback = cand
        if block <= max_benign_block and (best is None or cand > best):
            best = cand
    f1, _, t = best or fallback or (0.0, 0.0, 0.5)
    pred = p_unsafe >= t
    return {"threshold": float(t), "f1": float(f1),
            "benign_block_rate": float(pred[benign].mean()) if benign.any() else 0.0,
            "unsafe_recall": float(pred[pos].mean()) if pos.any() else 0.0}


def train_exchange(rows: Sequence[dict[str, Any]], *, bits: int = 16, c: float = 4.0,
                   prefix_augmentation: bool = True, val_fraction: float = 0.2,
                   max_benign_block: float = 0.05, seed: int = 0,
                   name: str = "exchange-hashed-v1") -> ExchangeClassifier:
    """Train on rows with ``prompt``, ``response``, ``label`` (0/1/2); groups (``group``)
    split train / validation; the block threshold is chosen on the validation part
    (prefixes included), then the head is refitted on everything."""
    from sklearn.linear_model import LogisticRegression

    from haloguard.probe.exchanges import split_groups

    rows = [r for r in rows if r.get("label") is not None]
    if len({int(r["label"]) for r in rows}) < len(LABELS):
        raise ValueError("train_exchange needs rows of all three labels")
    tr_idx, va_idx = split_groups(rows, val_fraction, seed)
    aug = prefix_augment if prefix_augmentation else (lambda rs: list(rs))

    def fit(rs: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        clf = LogisticRegression(C=c, max_iter=3000, random_state=seed)
        clf.fit(_matrix(rs, bits), np.array([int(r["label"]) for r in rs]))
        w = np.zeros(((1 << bits), len(LABELS)), np.float32)
        w[:, clf.classes_] = clf.coef_.T
        b = np.full(len(LABELS), -30.0)
        b[clf.classes_] = clf.intercept_
        return w, b

    t0 = time.perf_counter()
    val: dict[str, Any] = {}
    thr = 0.5
    if va_idx and tr_idx:
        train_rows = aug([rows[i] for i in tr_idx])
        w, b = fit(train_rows)
        probe = ExchangeClassifier(w, b, bits)
        vrows = aug([rows[i] for i in va_idx])
        pv = np.array([probe.probs(r["prompt"], r["response"]) for r in vrows])
        yv = np.array([int(r["label"]) for r in vrows])
        full = np.array(["prefix_of" not in r for r in vrows])
        from haloguard.eval.metrics import auroc

        pick = pick_threshold(yv, pv[:, UNSAFE], max_benign_block)
        thr = pick["threshold"]
        val = {"n_val": len(vrows), "n_val_full": int(full.sum()),
               "accuracy": float(np.mean(pv.argmax(1) == yv)),
               "accuracy_full": float(np.mean(pv[full].argmax(1) == yv[full])),
               "auroc_unsafe": auroc(yv == UNSAFE, pv[:, UNSAFE]), **pick}
    all_rows = aug(rows)
    w, b = fit(all_rows)
    meta = {"trained_on": len(rows), "trained_rows_with_prefixes": len(all_rows),
            "prefix_augmentation": prefix_augmentation, "c": c, "seed": seed,
            "validation": val, "train_seconds": round(time.perf_counter() - t0, 2)}
    return ExchangeClassifier(w, b, bits, thr, name, meta)
