"""Cheap English-likeness and "looks like text" scores used to gate decoders."""

from __future__ import annotations

import functools
import re
from importlib import resources

__all__ = [
    "common_words", "common_share", "english_score", "word_score", "looks_like_text",
    "split_segments",
    "Scorer",
]

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


# Segment boundaries: sentence punctuation or a comma right after a non-space and followed
# by whitespace, line breaks, and double quotes.  A bare '!'/'.' between spaces (leet 'i',
# reversed text's leading '.') does not split.  The capture group keeps the separators
# (punctuation included) for exact reassembly.
_SEG_SPLIT_RE = re.compile(r"([.!?:;,](?<=\S[.!?:;,])\s+|\n\s*|[\"\u201c\u201d\u00ab\u00bb]\s*)")
_ASCII_TOKEN_RE = re.compile(r"[^\sA-Za-z0-9]*[A-Za-z0-9]\S*")  # tokens with an ASCII alnum
_SUSPICIOUS_COMMON = 0.3  # segments with at least this share of common words are English


def split_segments(text: str) -> list[str]:
    """Split into segments; even indices are segments, odd ones the separators between."""
    return _SEG_SPLIT_RE.split(text)


def _common_counts(seg: str, vocab: frozenset[str]) -> tuple[int, int]:
    """(common English words, tokens) of a segment, over tokens of 3+ characters with an
    ASCII letter or digit ('a', 'I', 'to' survive ROT13 / reversal / leet unchanged)."""
    toks = [w for t in _ASCII_TOKEN_RE.findall(seg) if len(w := t.strip(_TOKEN_STRIP)) >= 3]
    return sum(w.lower() in vocab for w in toks), len(toks)


def common_share(text: str) -> float:
    """Share of (3+ character, ASCII-alnum) tokens that are common English words."""
    common, n = _common_counts(text, common_words())
    return common / n if n else 0.0


def _suspicious(seg: str, vocab: frozenset[str]) -> bool:
    """A segment with 2+ such tokens, few of them common English words."""
    common, n = _common_counts(seg, vocab)
    return n >= 2 and common < _SUSPICIOUS_COMMON * n


class Scorer:
    """Per-call memo of :func:`english_score` and of suspicious segments (no shared state)."""

    __slots__ = ("_cache", "_segs")

    def __init__(self) -> None:
        self._cache: dict[str, float] = {}
        self._segs: dict[str, tuple[list[str], tuple[int, ...]]] = {}

    def __call__(self, text: str) -> float:
        v = self._cache.get(text)
        if v is None:
            v = self._cache[text] = english_score(text)
        return v

    def segments(self, text: str) -> tuple[list[str], tuple[int, ...]]:
        """``(parts, idx)``: :func:`split_segments` parts and the indices of suspicious
        segments (few common English words) worth trying a per-segment decoder on."""
        r = self._segs.get(text)
        if r is None:
            vocab = common_words()
            if len(text) < 8:
                r = ([text], ())
            else:
                parts = _SEG_SPLIT_RE.split(text)
                idx = tuple(i for i in range(0, len(parts), 2) if _suspicious(parts[i], vocab))
                r = (parts, idx)
            self._segs[text] = r
        return r
