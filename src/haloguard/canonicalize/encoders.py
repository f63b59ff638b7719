"""Inverse transforms (obfuscators) for property tests and the attack library."""

from __future__ import annotations

import base64
import codecs
import functools
import random
import re
from urllib.parse import quote

from .emoji_words import word_to_emoji
from .tables import LEET_ENCODE_AGGRESSIVE, LEET_ENCODE_BASIC, LEET_ENCODE_EXTENDED, MORSE
from .unicode_fold import fold_char, fold_table

__all__ = [
    "encode_base64", "encode_hex", "encode_rot13", "encode_morse", "encode_url", "encode_leet",
    "encode_homoglyph", "insert_zero_width", "encode_tags", "space_letters", "reverse_text",
    "reverse_words", "encode_piglatin", "to_camelcase", "emojify",
]

_WORD_RE = re.compile(r"[A-Za-z]+")
_WHOLE_WORD_RE = re.compile(r"(?<![^\W\d_])[A-Za-z]+(?![^\W\d_])")  # not inside other scripts
_ZW = ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff")
_LEET_LEVELS = {
    "basic": LEET_ENCODE_BASIC, "extended": LEET_ENCODE_EXTENDED,
    "aggressive": LEET_ENCODE_AGGRESSIVE,
}


def encode_base64(text: str, *, urlsafe: bool = False, pad: bool = True) -> str:
    """Base64 of the UTF-8 bytes (optionally urlsafe / without padding)."""
    raw = text.encode("utf-8")
    out = (base64.urlsafe_b64encode(raw) if urlsafe else base64.b64encode(raw)).decode()
    return out if pad else out.rstrip("=")


def encode_hex(text: str, sep: str = "") -> str:
    """Hex of the UTF-8 bytes, optionally separated."""
    return sep.join(f"{b:02x}" for b in text.encode("utf-8"))


def encode_rot13(text: str) -> str:
    """ROT13."""
    return codecs.encode(text, "rot13")


def encode_morse(text: str) -> str:
    """Morse code: letters split by spaces, words by ' / '; unknown chars dropped."""
    words = []
    for w in text.lower().split():
        codes = [MORSE[c] for c in w if c in MORSE]
        if codes:
            words.append(" ".join(codes))
    return " / ".join(words)


def encode_url(text: str) -> str:
    """Percent-encode every byte."""
    return "".join(f"%{b:02X}" for b in text.encode("utf-8")) if text else quote(text)


def encode_leet(text: str, level: str = "basic", rng: random.Random | None = None,
                rate: float = 1.0) -> str:
    """Leetspeak at ``basic``, ``extended`` or ``aggressive`` level."""
    table = _LEET_LEVELS[level]
    out = []
    for i, ch in enumerate(text):
        low = ch.lower()
        sym = table.get(low)
        if sym is None or (rng is not None and rng.random() >= rate):
            out.append(ch)
            continue
        nxt = text[i + 1] if i + 1 < len(text) else " "
        if low == "i" and level != "basic" and nxt.isalpha():
            sym = "!"
        out.append(sym)
    return "".join(out)


@functools.lru_cache(maxsize=1)
def _homoglyph_choices() -> dict[str, tuple[str, ...]]:
    rev: dict[str, list[str]] = {}
    for ch, target in fold_table().items():
        if ch.isalpha() and ord(ch) < 0x2000 and fold_char(ch) == target:
            rev.setdefault(target, []).append(ch)
    return {k: tuple(sorted(v)) for k, v in rev.items()}


def encode_homoglyph(text: str, rng: random.Random | None = None, rate: float = 1.0) -> str:
    """Replace ASCII letters by confusable look-alikes (Cyrillic, Greek, ...)."""
    choices = _homoglyph_choices()
    rng = rng or random.Random(0)
    out = []
    for ch in text:
        opts = choices.get(ch)
        if opts and rng.random() < rate:
            out.append(rng.choice(opts))
        else:
            out.append(ch)
    return "".join(out)


def insert_zero_width(text: str, rng: random.Random | None = None, rate: float = 1.0) -> str:
    """Insert zero-width characters between characters."""
    rng = rng or random.Random(0)
    out = []
    for ch in text:
        out.append(ch)
        if rng.random() < rate:
            out.append(rng.choice(_ZW))
    return "".join(out)


def encode_tags(text: str) -> str:
    """Smuggle ASCII text as Unicode tag characters (invisible)."""
    return "".join(chr(0xE0000 + ord(c)) for c in text if 0x20 <= ord(c) < 0x7F)


def space_letters(text: str, sep: str = " ") -> str:
    """Separate letters by ``sep``; words by two spaces (``sep == ' '``) or one."""
    gap = "  " if sep == " " else " "
    return gap.join(sep.join(w) for w in text.split())


def reverse_text(text: str) -> str:
    """Reverse the whole text."""
    return text[::-1]


def reverse_words(text: str) -> str:
    """Reverse each word in place."""
    return _WORD_RE.sub(lambda m: m.group(0)[::-1], text)


def _pig(word: str) -> str:
    low = word.lower()
    if low[0] in "aeiou":
        return low + "way"
    k = 0
    while k < len(low) and (low[k] not in "aeiouy" or k == 0):
        k += 1
    return low[k:] + low[:k] + "ay"


def encode_piglatin(text: str) -> str:
    """Pig Latin ('hello world' -> 'ellohay orldway'); output is lowercase."""
    return _WORD_RE.sub(lambda m: _pig(m.group(0)), text)


def to_camelcase(text: str) -> str:
    """'how to make a cake' -> 'HowToMakeACake'."""
    return "".join(w[:1].upper() + w[1:].lower() for w in re.findall(r"[A-Za-z0-9]+", text))


def emojify(text: str) -> str:
    """Replace words found in the emoji table by their emoji."""
    table = word_to_emoji()
    return _WHOLE_WORD_RE.sub(lambda m: table.get(m.group(0).lower(), m.group(0)), text)
