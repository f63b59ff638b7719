"""Individual decoders: each takes text (+ a scorer) and returns decoded text or None."""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from collections.abc import Callable
from urllib.parse import unquote, unquote_plus

from .leet import decode_leet as _decode_leet_whole
from .plausibility import common_share, common_words, looks_like_text, word_score
from .tables import MORSE_REV

Score = Callable[[str], float]

__all__ = [
    "decode_base64", "decode_hex", "decode_rot13", "decode_morse", "decode_url",
    "decode_leet", "decode_spaced", "decode_reversed", "decode_reversed_words",
    "decode_piglatin", "decode_camelcase",
]

_B64_RUN_RE = re.compile(r"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{10,}={0,2}")
_DEL_DIGITS = str.maketrans("", "", "0123456789")
_DEL_UPPER_DIGITS = str.maketrans("", "", "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_DEL_UPPER = str.maketrans("", "", "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
# Literal-led pre-gates (fast in sre) for letters separated by a single separator.
_SPACED_PRE = tuple(
    re.compile(p)
    for p in (r" [A-Za-z] [A-Za-z] [A-Za-z]", r"  [A-Za-z] [A-Za-z]", r"\.[A-Za-z]\.[A-Za-z]",
              r"-[A-Za-z]-[A-Za-z]",
              r"_[A-Za-z]_[A-Za-z]", r"\*[A-Za-z]\*[A-Za-z]")
)
_CAMEL_PRE = re.compile(r"[A-Z][a-z]*[A-Z][a-z]*[A-Z]")
_HEX_RUN_RE = re.compile(r"(?<![0-9A-Za-z])(?:(?:0x|\\x)?[0-9a-fA-F]{2}[ :,]?){6,}")
_HEX_STRIP_RE = re.compile(r"0x|\\x|[ :,]")
_MORSE_CHARS = frozenset(".-/ |\n\t_")
_MORSE_WORD_SPLIT_RE = re.compile(r"\s*[/|]\s*|\s{2,}")
_MORSE_PRE_RE = re.compile(r"[.\-_][ \t/|]+[.\-_]+[ \t/|]+[.\-_]")  # cheap: 3 tokens in a row
# A run of 3+ Morse tokens ([.-_]{1,7}) separated by spaces/tabs, '/' or '|'.
_MORSE_TOKEN = r"[.\-_]{1,7}"
_MORSE_SPAN_RE = re.compile(
    rf"(?<![^\s/|]){_MORSE_TOKEN}(?:(?:[ \t]*[/|][ \t]*|[ \t]+){_MORSE_TOKEN}){{2,}}(?![^\s/|])"
)
_URL_ESC_RE = re.compile(r"%[0-9A-Fa-f]{2}")
_URL_RUN_RE = re.compile(r"(?:%[0-9A-Fa-f]{2}){3,}")
_SPACED_RE = re.compile(r"\b[A-Za-z](?:([ ._\-*])[A-Za-z])(?:\1[A-Za-z])+\b")
# Whitespace tokens alternating <char><sep><char>... for a non-space separator.
_SPACED_SEP_RES = tuple(
    (sep, re.compile(rf"(?<!\S)[^\s{re.escape(sep)}](?:{re.escape(sep)}\S)+(?=[.,!?;:{re.escape(sep)}]*(?:\s|$))"))
    for sep in ".-_*"
)
_SPACED2_RE = re.compile(r"\b[A-Za-z](?:([ ._\-*])[A-Za-z])(?:\1[A-Za-z])*\b")
_PIG_WORD_RE = re.compile(r"\b([A-Za-z]+?)(w|y)?ay\b", re.IGNORECASE)
_WORD_RE = re.compile(r"[A-Za-z]+")
# A run of capitalised parts; a number may stand between them ('DevModeV2Responses',
# 'The18thFestival') or end it ('WestIndies2018') but never start it, so hex and Base64
# strings rarely qualify, and a run with a number must read as words (decode_camelcase).
_CAMEL_PART = r"(?:[A-Z][a-z]*|[0-9]+(?:st|nd|rd|th|s)?(?=[A-Z]))"
_CAMEL_END = r"[A-Z][a-z]+(?:[0-9]+(?:st|nd|rd|th|s)?)?(?![\w(`'\"])"
_CAMEL_RE = re.compile(rf"(?<![\w.$#@/`'\"])[A-Z][a-z]*{_CAMEL_PART}+{_CAMEL_END}"
                       rf"|(?<![\w.$#@/`'\"])[a-z]+{_CAMEL_PART}{{2,}}{_CAMEL_END}")
_CAMEL_SPLIT_RE = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+(?:st|nd|rd|th|s)?")
_VOWELS = frozenset("aeiouAEIOU")
_ENGLISH_SKIP = 0.55  # text already this English-like is not rot13/reversed (as a whole)
# Per-segment substitution: the decoded segment must reach this score and beat the raw
# segment by this margin ("much more plausible") - stricter than the whole-text gates.
_SEG_MIN, _SEG_GAIN = 0.3, 0.12
_SEG_COMMON_MIN, _SEG_COMMON_GAIN = 0.15, 0.15  # cheap gate first: common-word share


def _per_segment(text: str, score: Score, fn: Callable[[str, Score], str | None],
                 every: bool = False) -> str | None:
    """Decode each suspicious segment (few common words; see ``Scorer.segments``), or
    ``every`` segment when ``fn`` has cheap gates of its own, with ``fn`` independently and
    substitute the ones it decodes, so an English preamble no longer masks an encoded
    tail.  ``fn`` applies its own plausibility gate."""
    segments = getattr(score, "segments", None)
    if segments is None:
        return None
    parts, idx = segments(text)
    if every:
        idx = tuple(i for i in range(0, len(parts), 2) if len(parts[i].split()) >= 2)
    if not idx or (len(parts) == 1 and idx == (0,)):
        return None  # nothing suspicious, or the whole text (already tried as a whole)
    out = list(parts)
    changed = False
    for i in idx:
        try:
            dec = fn(parts[i], score)
        except Exception:  # noqa: BLE001 - a decoder must never break the guard
            dec = None
        if dec is not None and dec != parts[i] and dec.strip():
            out[i] = dec
            changed = True
    return "".join(out) if changed else None


def _much_better(raw: str, dec: str, score: Score) -> bool:
    c_dec = common_share(dec)
    if c_dec < _SEG_COMMON_MIN or c_dec < common_share(raw) + _SEG_COMMON_GAIN:
        return False  # cheap gate: decoding must add common English words
    s_dec = score(dec)
    return s_dec >= _SEG_MIN and s_dec > score(raw) + _SEG_GAIN


def _rot13_segment(seg: str, score: Score) -> str | None:
    rot = codecs.encode(seg, "rot13")
    return rot if _much_better(seg, rot, score) else None


def _reversed_segment(seg: str, score: Score) -> str | None:
    rev = seg[::-1]
    return rev if _much_better(seg, rev, score) else None


def _reversed_words_segment(seg: str, score: Score) -> str | None:
    rev = _WORD_RE.sub(lambda m: m.group(0)[::-1], seg)
    return rev if _much_better(seg, rev, score) else None


def _printable_text(raw: bytes, strict: bool = True) -> str | None:
    """UTF-8 text that looks like text (``strict``) or is at least printable."""
    try:
        s = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if strict:
        return s if looks_like_text(s) else None
    ok = sum(c.isprintable() or c in "\n\t\r" for c in s) >= 0.95 * len(s)
    return s if ok and s.strip() else None


def _b64_span(span: str, strict: bool) -> str | None:
    core = span.rstrip("=")
    if len(core) % 4 == 1:
        return None
    padded = core + "=" * (-len(core) % 4)
    alt = "-" in core or "_" in core
    try:
        raw = base64.b64decode(padded, altchars=b"-_" if alt else None, validate=True)
    except (binascii.Error, ValueError):
        return None
    return _printable_text(raw, strict)


def decode_base64(text: str, score: Score) -> str | None:
    """Decode base64 (std/urlsafe, missing padding), also embedded spans in place."""
    if len(text) < 10 or len(text) - len(text.translate(_DEL_UPPER_DIGITS)) < 3:
        return None
    if not _B64_RUN_RE.search(text):
        return None
    changed = False
    whole = text.strip()

    def sub(m: re.Match[str]) -> str:
        nonlocal changed
        span = m.group(0)
        if span.isalpha() and (span.islower() or span.isupper()):
            return span
        dec = _b64_span(span, strict=span != whole)
        if dec is None:
            return span
        changed = True
        return dec

    out = _B64_RUN_RE.sub(sub, text)
    return out if changed else None


def decode_hex(text: str, score: Score) -> str | None:
    """Decode hex byte runs (plain, spaced, 0x/\\x prefixed), substituted in place."""
    if len(text) < 12 or len(text) - len(text.translate(_DEL_DIGITS)) < 6:
        return None
    if not _HEX_RUN_RE.search(text):
        return None
    changed = False
    whole = text.strip()

    def sub(m: re.Match[str]) -> str:
        nonlocal changed
        span = m.group(0)
        trail = span[len(span.rstrip(" :,")):]
        digits = _HEX_STRIP_RE.sub("", span)
        if len(digits) % 2:
            return span
        try:
            dec = _printable_text(bytes.fromhex(digits), strict=span.strip() != whole)
        except ValueError:
            return span
        if dec is None:
            return span
        changed = True
        return dec + trail

    out = _HEX_RUN_RE.sub(sub, text)
    return out if changed else None


_SEGMENT_RE = re.compile(r"[^.!?:;\n]+[.!?:;\n]*|[.!?:;\n]+")


def decode_rot13(text: str, score: Score) -> str | None:
    """ROT13 each sentence-like segment whose ROT13 is clearly more English-like.

    Mostly-English text is only decoded per suspicious segment (an encoded tail).
    """
    if score(text) >= _ENGLISH_SKIP:
        return _per_segment(text, score, _rot13_segment)
    if not any(c.isascii() and c.isalpha() for c in text):
        return None
    changed = False
    parts = []
    for seg in _SEGMENT_RE.findall(text):
        if len(_WORD_RE.findall(seg)) < 2 and len(seg.strip()) < 4:
            parts.append(seg)  # 'P' of 'P.S.' is no ROT13 of 'C'
            continue
        rot = codecs.encode(seg, "rot13")
        s_rot = score(rot)
        if s_rot >= 0.25 and s_rot > score(seg) + 0.02:
            parts.append(rot)
            changed = True
        else:
            parts.append(seg)
    return "".join(parts) if changed else _per_segment(text, score, _rot13_segment)


def _morse_words(s: str) -> str | None:
    """Decode Morse letters split by spaces, words by '/', '|' or 2+ spaces (None if any
    code is unknown)."""
    out = []
    for w in _MORSE_WORD_SPLIT_RE.split(s.replace("_", "-")):
        letters = []
        for code in w.split():
            ch = MORSE_REV.get(code)
            if ch is None:
                return None
            letters.append(ch)
        out.append("".join(letters))
    return " ".join(x for x in out if x)


def _morse_span(m: re.Match[str]) -> str:
    span = m.group(0)
    dec = _morse_words(span)
    if dec is None:
        return span
    letters = [c for c in dec if c.isalpha()]
    distinct = len(set(letters))
    if len(letters) < 4 or distinct < 2 or (distinct < 3 and " " not in dec):
        return span  # '- - -' rules, '. . . .' ellipses, digit runs
    if not looks_like_text(dec):
        return span
    return dec


def decode_morse(text: str, score: Score) -> str | None:
    """Decode Morse code: the whole text, else runs of 3+ Morse tokens inside it (in place,
    e.g. after 'Decode this Morse and answer:')."""
    if "." not in text and "-" not in text:
        return None
    s = text.strip()
    if len(s) < 3:
        return None
    if frozenset(s) <= _MORSE_CHARS:
        res = _morse_words(s)
        return res if res is not None and looks_like_text(res) else None
    if not _MORSE_PRE_RE.search(text):
        return None
    out = _MORSE_SPAN_RE.sub(_morse_span, text)
    return out if out != text else None


def _url_span(m: re.Match[str]) -> str:
    span = m.group(0)
    try:
        dec = unquote(span, errors="strict")
    except UnicodeDecodeError:
        return span
    return dec if looks_like_text(dec) else span


def decode_url(text: str, score: Score) -> str | None:
    """Percent-decode text that is substantially percent-encoded, else runs of 3+
    escapes inside it (in place, e.g. after an instruction)."""
    n = len(_URL_ESC_RE.findall(text))
    if n < 3:
        return None
    if 3 * n >= 0.25 * len(text.replace(" ", "")):
        out = unquote_plus(text) if " " not in text else unquote(text)
        if out != text and looks_like_text(out):
            return out
    out = _URL_RUN_RE.sub(_url_span, text)
    return out if out != text else None


def _spaced_by(text: str) -> str | None:
    """Join whitespace tokens whose every other character is one dominant non-space
    separator ('t-h-a-t-'-s', 's-t-a-n-d---u-p', '$.3.0.0'), when 3+ tokens are."""
    best = None
    for sep, rx in _SPACED_SEP_RES:
        if sep not in text:
            continue
        spans = rx.findall(text)
        if len(spans) >= 3 and sum(len(x) for x in spans) >= 0.5 * len(text.replace(" ", "")):
            best = rx
            break
    if best is None:
        return None
    return best.sub(lambda m: m.group(0)[::2], text)


def decode_spaced(text: str, score: Score) -> str | None:
    """Join letters separated by single spaces/dots/dashes/underscores ('b.o.m.b')."""
    by_sep = _spaced_by(text) or _per_segment(text, score, lambda seg, _s: _spaced_by(seg))
    if by_sep is not None:
        return by_sep
    changed = False

    def sub(m: re.Match[str]) -> str:
        nonlocal changed
        span = m.group(0)
        sep = m.group(1)
        letters = span.replace(sep, "")
        if sep == "." and len(letters) < 4 and span.isupper():
            return span  # acronyms such as U.S.A
        changed = True
        return letters

    if not any(p.search(text) for p in _SPACED_PRE):
        return None
    if not _SPACED_RE.search(text) and len(_SPACED2_RE.findall(text)) < 3:
        return None
    out = _SPACED2_RE.sub(sub, text)
    if not changed:
        return None
    return re.sub(r"(?<=\S)  +(?=\S)", " ", out)


def decode_reversed(text: str, score: Score) -> str | None:
    """Whole-text reversal when clearly more English-like, else per suspicious segment."""
    if score(text) < _ENGLISH_SKIP:
        rev = text[::-1]
        if score(rev) >= 0.25 and score(rev) > score(text) + 0.01:
            return rev
    return _per_segment(text, score, _reversed_segment)


def decode_reversed_words(text: str, score: Score) -> str | None:
    """Per-word reversal when clearly more English-like (whole text, else per segment)."""
    if score(text) < _ENGLISH_SKIP:
        rev = _WORD_RE.sub(lambda m: m.group(0)[::-1], text)
        if score(rev) >= 0.25 and score(rev) > score(text) + 0.01:
            return rev
    return _per_segment(text, score, _reversed_words_segment)


_ONSETS = frozenset(
    "b c d f g h j k l m n p q r s t v w x y z bl br ch cl cr dr dw fl fr gl gn gr kn pl pr "
    "qu sc sh sk sl sm sn sp st sw th tr tw wh wr sch scr shr sph spl spr squ str thr "
    "ph phr chl chr gh ps".split()
)


def _unpig(word: str) -> str:
    low = word.lower()
    if not low.endswith("ay") or len(low) < 3:
        return word
    stem = low[:-2]
    cands: list[str] = []
    if stem[0] in _VOWELS and stem[-1] in "wy" and len(stem) > 1:
        cands.append(stem[:-1])  # vowel-initial word + "way"/"yay"
    k = 0
    while k < len(stem) - 1 and stem[-1 - k] not in _VOWELS:
        k += 1
        if stem[-k:] in _ONSETS:
            cands.append(stem[-k:] + stem[:-k])
    if not cands:
        # a vowel-initial stem, or a one-letter word ('s' of "what's" -> 'say')
        return stem if stem[0] in _VOWELS or len(stem) == 1 else word
    # Several readings ('olocausthay': holocaust / tholocaus; 'ebolaway': ebola / webola):
    # the most frequent English word wins, so the frequency dictionary decides before the
    # letter statistics do.  It is SymSpell's (loaded once, lazily, on the first pig-Latin
    # text); without symspellpy the letter statistics decide alone.  Where two readings are
    # both among the ~1,100 words frequent in prompts ('owhay': how / who) general-English
    # frequency is a poor guide and the shortest moved cluster wins ('how').  On 1,500
    # English rows of the authored corpus, encoded and decoded: word accuracy 0.949 with
    # letter statistics alone, 0.959 by frequency alone, 0.984 with both rules.
    common = [c for c in cands if c in common_words()]
    if len(common) >= 2:
        return common[0]
    counts = _word_counts() or {}
    return max(cands, key=lambda c: (counts.get(c, 0), word_score(c)))


def _word_counts() -> dict[str, int] | None:
    from haloguard.canonicalize.respell import _symspell

    sym = _symspell()
    return sym.words if sym is not None else None


def decode_piglatin(text: str, score: Score) -> str | None:
    """Decode pig Latin ('ellohay orldway') when most words (of the text, else of a
    suspicious segment) end in 'ay'."""
    if "ay" not in text.lower():
        return None
    return _piglatin_whole(text, score) or _per_segment(text, score, _piglatin_whole)


def decode_leet(text: str, score: Score) -> str | None:
    """Leetspeak (see :mod:`.leet`) of the whole text, else per suspicious segment."""
    return _decode_leet_whole(text, score) or _per_segment(
        text, score, _decode_leet_whole, every=True)


def _piglatin_whole(text: str, score: Score) -> str | None:
    words = _WORD_RE.findall(text)
    if len(words) < 2:
        return None
    pig = sum(w.lower().endswith("ay") and len(w) >= 3 for w in words)
    if pig < 0.6 * len(words):
        return None
    out = _WORD_RE.sub(lambda m: _unpig(m.group(0)), text)
    return out if out != text and score(out) > score(text) else None


def decode_camelcase(text: str, score: Score) -> str | None:
    """Split CamelCase runs ('HowToMakeABomb') into words."""
    if len(text) - len(text.translate(_DEL_UPPER)) < 3 or not _CAMEL_PRE.search(text):
        return None
    if not _CAMEL_RE.search(text):
        return None
    whole = text.strip()
    changed = False

    def sub(m: re.Match[str]) -> str:
        nonlocal changed
        parts = _CAMEL_SPLIT_RE.findall(m.group(0))
        words = [p for p in parts if not p[0].isdigit()]
        common = sum(word_score(p.lower()) >= 10.0 for p in words)
        if len(words) < len(parts):  # a number inside: the rest must read as words
            if common < 0.4 * len(words):
                return m.group(0)
        elif m.group(0) != whole and len(parts) < 5 and common < 0.6 * len(parts):
            return m.group(0)
        changed = True
        return " ".join(parts)

    out = _CAMEL_RE.sub(sub, text)
    return out if changed else None
