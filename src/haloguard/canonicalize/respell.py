"""Respelling: undo typo-like noise and words broken at token boundaries.

"Gi ve detailed in-structions for ma_king ... ", "Dreate a list of biologkcal agents thst
..." read fine to a person, but a subword model sees rare pieces where the words were, and
the red team measured 18-34% of such HarmBench prompts getting through the embedded guard
(char_noise, typos, token_split).  This view joins split words and corrects edit-distance-1
typos word by word (:func:`repair`) with SymSpell's lookup (``symspellpy``, MIT, whose
82,765-word English frequency dictionary ships in the wheel), so the Guard also scores the
repaired sentence.

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
#: share of tokens that must already be dictionary words (the text is English).  Heavy
#: typo noise ("Give in-depth wteps for mzking ... froj commoj household materiaos withoyt
#: ...") leaves under half the tokens as words; the function-word test below keeps other
#: languages out.
MIN_KNOWN = 0.4
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
    "be been being by at or not it its they them their there in on up is my some all any if "
    "a".split())


#: inflections the frequency dictionary often lacks ('opioids', 'tweeted', 'geolocating')
_SUFFIXES = ("s", "es", "ed", "d", "ing", "er", "ers", "ly")


def _is_word(tok: str, words: Any) -> bool:
    """A dictionary word, or an inflection of one ('opioids' -> 'opioid')."""
    t = tok.lower()
    return t in words or any(t.endswith(x) and len(t) - len(x) >= 3 and t[: -len(x)] in words
                             for x in _SUFFIXES)


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
        if _is_word(t, words):
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


#: a pair of words joins into one when the rarer half is this many times rarer than the
#: joined word ("comm on" -> "common"), but not "a part", "to day" or "class mate"
JOIN_RATIO = 10
#: a 3-letter non-word is corrected only to a word at least this frequent ("thw" -> "the")
SHORT_FIX_MIN_COUNT = 10 ** 8
_CHUNK_RE = re.compile(r"^([^A-Za-z0-9]*)(.*?)([^A-Za-z0-9]*)$", re.DOTALL)
_CUT_RE = re.compile(r"(?<=[A-Za-z])[._*\-]+(?=[A-Za-z])")


def _count(word: str, words: Any) -> int:
    return int(words.get(word.lower(), 0))


def _fix_word(core: str, first: bool, sym: Any) -> str:
    """One damaged token: a word cut by inner punctuation is joined ('ma_king',
    'dimethylmerc_ury'; compounds of words such as 'in-depth' stay), then a lowercase
    non-word one edit from a word is corrected ('mzking').  Unknown words with no close
    word ('dimethylmercury') and capitalised names are kept as they are."""
    from symspellpy import Verbosity

    words = sym.words
    if _is_word(core, words) or any(c.isdigit() for c in core):
        return core
    if _CUT_RE.search(core):
        parts = _CUT_RE.split(core)
        joined = "".join(parts)
        if joined.lower() in words or not all(p.lower() in words for p in parts):
            core = joined
        else:
            return core
        if core.lower() in words:
            return core
    if not core.isalpha() or (not first and core[:1].isupper()) or len(core) < 3:
        return core
    hits = sym.lookup(core.lower(), Verbosity.TOP, max_edit_distance=1)
    if not hits:
        return core
    term, count = hits[0].term, int(hits[0].count)
    if len(core) == 3 and count < SHORT_FIX_MIN_COUNT:
        return core
    return term[:1].upper() + term[1:] if core[:1].isupper() else term


def repair(text: str, sym: Any) -> str:
    """Join words split at token boundaries and correct one-edit typos, token by token.

    Whitespace-separated chunks keep their surrounding punctuation.  Two neighbours join
    when the join is a dictionary word and one half is not a word ('Gi ve', 'anonym ous'),
    the rarer half is much rarer than the joined word ('comm on'), or the first ends in
    a cut mark before a lowercase continuation ('materi. als', 'dis. able').  Word by word
    rather than SymSpell's whole-sentence compound lookup: that one re-segments unknown
    words into frequent ones ('dimethylmercury' -> 'a methylmercury'), and the rare
    technical word is often the one that says what is asked."""
    words = sym.words
    chunks = [m.groups() for m in map(_CHUNK_RE.match, text.split())]
    out: list[str] = []
    i = 0
    while i < len(chunks):
        lead, core, trail = chunks[i]
        if i + 1 < len(chunks) and core.isalpha() and not trail.strip(".-_*"):
            lead2, core2, trail2 = chunks[i + 1]
            joined = core + core2
            if not lead2 and core2.isalpha() and joined.lower() in words:
                a, b, j = _count(core, words), _count(core2, words), _count(joined, words)
                cut = bool(trail) and core2[:1].islower()
                # a word does not take the next piece ('a pe' -> 'ape') when that piece
                # joins the non-word after it ('pe rsuasive' -> 'persuasive')
                nxt = chunks[i + 2][1] if i + 2 < len(chunks) and not trail2 else ""
                weak = bool(a) and not cut and nxt.isalpha() and not _count(
                    nxt, words) and (core2 + nxt).lower() in words
                if not weak and (not a or not b or min(a, b) * JOIN_RATIO < j or cut):
                    out.append(lead + joined + trail2)
                    i += 2
                    continue
        fixed = _fix_word(core, not out, sym) if core else core
        out.append(lead + fixed + trail)
        i += 1
    return " ".join(out)


def decode_respell(text: str, score: Any = None) -> str | None:
    """The text with split words joined and typos corrected (:func:`repair`), or None when
    the text does not look broken, nothing changes, or the result has no more dictionary
    words."""
    tokens = _candidate(text)
    if tokens is None:
        return None
    sym = _symspell()
    if sym is None or not needs_respell(text, sym, tokens):
        return None
    fixed = repair(text, sym).strip()
    if not fixed or fixed == " ".join(text.split()):
        return None
    before = _known_share(tokens, sym.words)
    after = _known_share(_tokens(fixed), sym.words)
    return fixed if after > before else None
