"""Cheap English-likeness and "looks like text" scores used to gate decoders."""

from __future__ import annotations

import functools
import re
from importlib import resources

__all__ = ["common_words", "english_score", "word_score", "looks_like_text", "Scorer"]

_SAMPLE = 1000  # characters scored at most; keeps long prompts cheap

@functools.lru_cache(maxsize=1)
def common_words() -> frozenset[str]:
    """~1100 frequent English words (lazy-loaded from ``common_words.txt``)."""
    text = resources.files(__package__).joinpath("common_words.txt").read_text(encoding="ascii")
    return frozenset(w for w in text.split() if not w.startswith("#") and w.isalpha())


_ALPHABET = " abcdefghijklmnopqrstuvwxyz"
_TOKEN_STRIP = "\"'()[]{}<>.,;:!?`*_-"
_LP_BEST, _LP_WORST = -0.9, -2.4  # mean log10 bigram prob mapped to 1.0 / 0.0
_NONWORD_LP = -3.0  # per-character penalty for tokens mixing letters with symbols/digits


@functools.lru_cache(maxsize=1)
def _trigram_lp() -> dict[str, float]:
    """log10 P(c | a, b) over ' a..z' with ' ' as the word boundary (lazy-loaded)."""
    text = resources.files(__package__).joinpath("trigrams.txt").read_text(encoding="ascii")
    rows = [ln.split() for ln in text.splitlines() if ln and not ln.startswith("#")]
    ctx = [a + b for a in _ALPHABET for b in _ALPHABET]
    return {ab + c: int(v) / 100 for ab, row in zip(ctx, rows) for c, v in zip(_ALPHABET, row)}


@functools.lru_cache(maxsize=16384)
def _word_lp(word: str) -> tuple[float, int]:
    """Summed trigram log-prob and trigram count of a lowercase ASCII word (memoized)."""
    lp = _trigram_lp()
    s = f"  {word} "
    return sum(lp[s[i : i + 3]] for i in range(len(s) - 2)), len(s) - 2


def english_score(text: str) -> float:
    """Score in [0, 1]: common-word share blended with letter-bigram log-likelihood.

    Tokens are whitespace-separated; tokens mixing letters with digits/symbols
    (leet, base64, ...) and non-ASCII tokens get a low per-character likelihood.
    """
    tokens = text[:_SAMPLE].lower().split()
    if not tokens:
        return 0.0
    vocab = common_words()
    common = n = 0
    total = 0.0
    for tok in tokens:
        w = tok.strip(_TOKEN_STRIP)
        if not w:
            continue
        if w in vocab:
            common += 1
        if w.isascii() and w.isalpha():
            t, k = _word_lp(w)
            total += t
            n += k
        else:
            total += _NONWORD_LP * (len(w) + 1)
            n += len(w) + 1
    if not n:
        return 0.0
    mean = total / n
    bigram = min(1.0, max(0.0, (mean - _LP_WORST) / (_LP_BEST - _LP_WORST)))
    return 0.5 * common / len(tokens) + 0.5 * bigram


def word_score(word: str) -> float:
    """Score a single lowercase ASCII word (dictionary hit beats bigram likelihood)."""
    if word in common_words():
        return 10.0
    if not (word.isascii() and word.isalpha()):
        return -10.0
    t, k = _word_lp(word)
    return t / k


def looks_like_text(text: str) -> bool:
    """Mostly printable, mostly letters, word-like token lengths."""
    s = text.strip()
    n = len(s)
    if n < 2:
        return False
    printable = sum(c.isprintable() or c in "\n\t\r" for c in s)
    if printable < 0.95 * n:
        return False
    nonspace = [c for c in s if not c.isspace()]
    letters = sum(c.isalpha() for c in nonspace)
    if letters < 0.5 * len(nonspace):
        return False
    ascii_letters = [c for c in s.lower() if "a" <= c <= "z"]
    if len(ascii_letters) >= 0.8 * letters and len(ascii_letters) >= 8:
        vowels = sum(c in "aeiouy" for c in ascii_letters) / len(ascii_letters)
        if not 0.1 <= vowels <= 0.9:
            return False
    tokens = s.split()
    return sum(len(t) for t in tokens) / len(tokens) <= 40


class Scorer:
    """Per-call memo of :func:`english_score` (no shared state between calls)."""

    __slots__ = ("_cache",)

    def __init__(self) -> None:
        self._cache: dict[str, float] = {}

    def __call__(self, text: str) -> float:
        v = self._cache.get(text)
        if v is None:
            v = self._cache[text] = english_score(text)
        return v
