"""Individual decoders: each takes text (+ a scorer) and returns decoded text or None."""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from collections.abc import Callable
from urllib.parse import unquote, unquote_plus

from .leet import decode_leet
from .plausibility import looks_like_text, word_score
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
_URL_ESC_RE = re.compile(r"%[0-9A-Fa-f]{2}")
_SPACED_RE = re.compile(r"\b[A-Za-z](?:([ ._\-*])[A-Za-z])(?:\1[A-Za-z])+\b")
_SPACED2_RE = re.compile(r"\b[A-Za-z](?:([ ._\-*])[A-Za-z])(?:\1[A-Za-z])*\b")
_PIG_WORD_RE = re.compile(r"\b([A-Za-z]+?)(w|y)?ay\b", re.IGNORECASE)
_WORD_RE = re.compile(r"[A-Za-z]+")
_CAMEL_RE = re.compile(r"(?<![\w.$#@/`'\"])(?:[A-Z][a-z]*){2,}[A-Z][a-z]+(?![\w(`'\"])"
                       r"|(?<![\w.$#@/`'\"])[a-z]+(?:[A-Z][a-z]*){2,}[A-Z][a-z]+(?![\w(`'\"])")
_CAMEL_SPLIT_RE = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+")
_VOWELS = frozenset("aeiouAEIOU")
_ENGLISH_SKIP = 0.55  # text already this English-like is not rot13/reversed


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
    """ROT13 each sentence-like segment whose ROT13 is clearly more English-like."""
    if score(text) >= _ENGLISH_SKIP or not any(c.isascii() and c.isalpha() for c in text):
        return None
    changed = False
    parts = []
    for seg in _SEGMENT_RE.findall(text):
        rot = codecs.encode(seg, "rot13")
        s_rot = score(rot)
        if s_rot >= 0.25 and s_rot > score(seg) + 0.02:
            parts.append(rot)
            changed = True
        else:
            parts.append(seg)
    return "".join(parts) if changed else None


def decode_morse(text: str, score: Score) -> str | None:
    """Decode Morse code (letters split by spaces, words by ' / ', '|' or 2+ spaces)."""
    s = text.strip()
    if len(s) < 3 or not ("." in s or "-" in s) or not frozenset(s) <= _MORSE_CHARS:
        return None
    s = s.replace("_", "-")
    words = re.split(r"\s*[/|]\s*|\s{2,}", s)
    out = []
    for w in words:
        letters = []
        for code in w.split():
            ch = MORSE_REV.get(code)
            if ch is None:
                return None
            letters.append(ch)
        out.append("".join(letters))
    res = " ".join(x for x in out if x)
    return res if looks_like_text(res) else None


def decode_url(text: str, score: Score) -> str | None:
    """Percent-decode text that is substantially percent-encoded."""
    n = len(_URL_ESC_RE.findall(text))
    if n < 3 or 3 * n < 0.25 * len(text.replace(" ", "")):
        return None
    out = unquote_plus(text) if " " not in text else unquote(text)
    return out if out != text and looks_like_text(out) else None


def decode_spaced(text: str, score: Score) -> str | None:
    """Join letters separated by single spaces/dots/dashes/underscores ('b.o.m.b')."""
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
    """Whole-text reversal when the result is clearly more English-like."""
    if score(text) >= _ENGLISH_SKIP:
        return None
    rev = text[::-1]
    return rev if score(rev) >= 0.25 and score(rev) > score(text) + 0.01 else None


def decode_reversed_words(text: str, score: Score) -> str | None:
    """Per-word reversal when the result is clearly more English-like."""
    if score(text) >= _ENGLISH_SKIP:
        return None
    rev = _WORD_RE.sub(lambda m: m.group(0)[::-1], text)
    return rev if score(rev) >= 0.25 and score(rev) > score(text) + 0.01 else None


_ONSETS = frozenset(
    "b c d f g h j k l m n p q r s t v w x y z bl br ch cl cr dr dw fl fr gl gn gr kn pl pr "
    "qu sc sh sk sl sm sn sp st sw th tr tw wh wr sch scr shr sph spl spr squ str thr".split()
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
        return stem if stem[0] in _VOWELS else word
    return max(cands, key=word_score)


def decode_piglatin(text: str, score: Score) -> str | None:
    """Decode pig Latin ('ellohay orldway') when most words end in 'ay'."""
    if "ay" not in text.lower():
        return None
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
        if m.group(0) != whole and len(parts) < 5:
            common = sum(word_score(p.lower()) >= 10.0 for p in parts)
            if common < 0.6 * len(parts):
                return m.group(0)
        changed = True
        return " ".join(parts)

    out = _CAMEL_RE.sub(sub, text)
    return out if changed else None
