"""Respelling: undo typo-like noise and words broken at token boundaries.

"Gi ve detailed in-structions for ma_king ... ", "Dreate a list of biologkcal agents thst
..." read fine to a person, but a subword model sees rare pieces where the words were, and
the red team measured 18-34% of such HarmBench prompts getting through the embedded guard
(char_noise, typos, token_split).  This view joins split words and corrects edit-distance-1
typos with SymSpell's compound lookup (``symspellpy``, MIT, whose 82,765-word English
frequency dictionary ships in the wheel), so the Guard also scores the repaired sentence.

Only English-looking text that is visibly broken gets the view: mostly ASCII letters, a
good share of dictionary words, and several tokens that are not words or are words cut by
inner punctuation.  Code, other languages and long documents are left alone.  The
dictionary loads lazily (about half a second, 67 MB) on the first English text; when
``symspellpy`` is missing the view is simply not offered.  Short texts, other languages and
code are turned away before the dictionary loads.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

#: texts longer than this are not respelled (documents; the noise attacks are short asks)
MAX_CHARS = 1000
#: share of tokens that must look damaged (see _noise_evidence)
MIN_BROKEN = 0.1
#: share of tokens that must already be dictionary words (the text is English)
MIN_KNOWN = 0.5
_TOKEN_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’._*\-]*[A-Za-z0-9]|[A-Za-z]")
_INNER_PUNCT_RE = re.compile(r"[A-Za-z][._*\-][A-Za-z]")
_CASE_FLIP_RE = re.compile(r"[a-z][A-Z]")
_SPLIT_RE = re.compile(r"[._*\-]+")
#: URLs, e-mail addresses and paths are not words and not noise
_SKIP_RE = re.compile(r"\S*(?:://|www\.|@|/)\S*")
_CODE_CHARS = frozenset("{}[]();=<>\\`|#$")


@lru_cache(maxsize=1)
def _symspell() -> Any:
    """The SymSpell index (edit distance 1) or None when symspellpy is not installed."""
    try:
        from importlib.resources import files

        from symspellpy import SymSpell
    except ImportError:
        return None
    sym = SymSpell(max_dictionary_edit_distance=1, prefix_length=7)
    path = files("symspellpy") / "frequency_dictionary_en_82_765.txt"
    if not sym.load_dictionary(str(path), term_index=0, count_index=1, encoding="utf-8"):
        return None
    return sym


#: an English sentence has some of these (other Latin-script languages rarely do)
_ENGLISH_FUNCTION = frozenset(
    "the to of and how what for with that this you your are from about without can could "
    "should would will into where when which who why does give write make tell than an "
    "be been being by at or not it its they them their there".split())


def _is_word(tok: str, words: Any) -> bool:
    return tok.lower() in words


def _noise_evidence(tokens: list[str], sym: Any) -> int:
    """Tokens that look damaged: a word cut by inner punctuation ('in-structions',
    'c.hild'), two neighbours that join into a word ('Gi ve', 'ki. ll'), a word with
    flipped case inside ('thE'), or a lowercase non-word of 4+ letters one edit from a
    word ('thst', 'biologkcal'; 'csv' and 'sql' are too short to tell).  Capitalised
    non-words after the first token are names, not noise; compounds of words
    ('well-known', 'step-by-step') do not join into one word."""
    from symspellpy import Verbosity

    words = sym.words
    low = [t.lower().strip("'’.") for t in tokens]
    hits = 0
    i = 0
    while i < len(low):
        t = low[i]
        if t in words:
            hits += _CASE_FLIP_RE.search(tokens[i]) is not None  # 'thE', 'rEsIdentIAL'
            i += 1
            continue
        if _INNER_PUNCT_RE.search(t):
            hits += "".join(p for p in _SPLIT_RE.split(t) if p) in words
            i += 1
            continue
        if i + 1 < len(low) and (t + low[i + 1]) in words and t.isalpha():
            hits += 1  # 'gi ve', 'materi als'
            i += 2
            continue
        if i > 0 and (low[i - 1] + t) in words and t.isalpha():
            hits += 1  # 'comm on': the first half is a word on its own, the second not
        elif (t.isalpha() and len(t) >= 4 and (i == 0 or tokens[i][:1].islower())
              and sym.lookup(t, Verbosity.TOP, max_edit_distance=1)):
            hits += 1
        i += 1
    return hits


def _tokens(text: str) -> list[str]:
    return _TOKEN_RE.findall(_SKIP_RE.sub(" ", text))


def _known_share(tokens: list[str], words: Any) -> float:
    return sum(_is_word(t.strip("'’."), words) for t in tokens) / max(len(tokens), 1)


def _candidate(text: str) -> list[str] | None:
    """The tokens of a short, English-looking, non-code text; None otherwise.  Cheap: it
    runs before the dictionary is loaded, so 'hi', other languages and code never load it."""
    s = text.strip()
    if not s or len(s) > MAX_CHARS:
        return None
    letters = [c for c in s if c.isalpha()]
    if len(letters) < 8 or sum(c.isascii() for c in letters) < 0.95 * len(letters):
        return None
    if sum(c in _CODE_CHARS for c in s) > 0.02 * len(s):
        return None
    tokens = _tokens(s)
    if len(tokens) < 5 or len({t.lower() for t in tokens} & _ENGLISH_FUNCTION) < 2:
        return None
    return tokens


def needs_respell(text: str, sym: Any, tokens: list[str] | None = None) -> bool:
    """English-looking, short, not code, and visibly damaged in several places
    (``tokens``: the text's :func:`_candidate` tokens, when already computed)."""
    tokens = _candidate(text) if tokens is None else tokens
    if tokens is None or _known_share(tokens, sym.words) < MIN_KNOWN:
        return False
    hits = _noise_evidence(tokens, sym)
    return hits >= 2 and hits >= MIN_BROKEN * len(tokens)


def decode_respell(text: str, score: Any = None) -> str | None:
    """The text with split words joined and typos corrected, or None when the text does
    not look broken, nothing changes, or the result has no more dictionary words."""
    tokens = _candidate(text)
    if tokens is None:
        return None
    sym = _symspell()
    if sym is None or not needs_respell(text, sym, tokens):
        return None
    out = sym.lookup_compound(text, max_edit_distance=1, ignore_non_words=True,
                              ignore_term_with_digits=True)
    if not out:
        return None
    fixed = out[0].term.strip()
    if not fixed or fixed.lower() == text.strip().lower():
        return None
    before = _known_share(tokens, sym.words)
    after = _known_share(_tokens(fixed), sym.words)
    return fixed if after > before else None
