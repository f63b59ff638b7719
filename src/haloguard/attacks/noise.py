"""Adversarial noise: character perturbations, token-boundary spacing, typos."""

from __future__ import annotations

import random
import re

from haloguard.attacks.base import Attack, register
from haloguard.canonicalize.encoders import insert_zero_width, space_letters

_WORD = re.compile(r"[A-Za-z]{3,}")

#: QWERTY neighbours for keyboard typos
_NEIGHBOURS = {
    "a": "qwsz", "b": "vghn", "c": "xdfv", "d": "serfcx", "e": "wsdr", "f": "drtgvc",
    "g": "ftyhbv", "h": "gyujnb", "i": "ujko", "j": "huikmn", "k": "jiolm", "l": "kop",
    "m": "njk", "n": "bhjm", "o": "iklp", "p": "ol", "q": "wa", "r": "edft", "s": "awedxz",
    "t": "rfgy", "u": "yhji", "v": "cfgb", "w": "qase", "x": "zsdc", "y": "tghu", "z": "asx",
}


def _per_word(text: str, rng: random.Random, rate: float, fn, min_len: int = 3) -> str:
    """Apply ``fn(word, rng)`` to each word of ``min_len``+ letters with probability
    ``rate`` (at least one word is always changed when there is one)."""
    words = [m for m in _WORD.finditer(text) if len(m.group(0)) >= min_len]
    if not words:
        return text
    chosen = {i for i in range(len(words)) if rng.random() < rate}
    if not chosen:
        chosen = {rng.randrange(len(words))}
    out, last = [], 0
    for i, m in enumerate(words):
        out.append(text[last:m.start()])
        out.append(fn(m.group(0), rng) if i in chosen else m.group(0))
        last = m.end()
    out.append(text[last:])
    return "".join(out)


def _perturb(word: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(word) - 1) if len(word) > 2 else 0
    op = rng.choice(("swap", "drop", "double", "case", "punct"))
    if op == "swap" and i + 1 < len(word):
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if op == "drop":
        return word[:i] + word[i + 1:]
    if op == "double":
        return word[:i] + word[i] + word[i:]
    if op == "case":
        return "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in word)
    return word[:i] + rng.choice(".-_*'") + word[i:]


def _typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(len(word))
    ch = word[i].lower()
    if ch in _NEIGHBOURS:
        rep = rng.choice(_NEIGHBOURS[ch])
        rep = rep.upper() if word[i].isupper() else rep
        return word[:i] + rep + word[i + 1:]
    return word


def _split(word: str, rng: random.Random) -> str:
    if len(word) < 4:
        return word
    i = rng.randrange(2, len(word) - 1)
    return word[:i] + rng.choice((" ", " ", "-", ". ", "_")) + word[i:]


@register
class CharNoise(Attack):
    name = "char_noise"
    attack_class = "adversarial_noise"
    description = "character swaps, drops, doublings, case flips and stray punctuation inside words"

    def apply(self, text: str, rng: random.Random) -> str:
        return _per_word(text, rng, 0.35, _perturb)


@register
class Typos(Attack):
    name = "typos"
    attack_class = "adversarial_noise"
    description = "keyboard-neighbour typos in about a third of the words"

    def apply(self, text: str, rng: random.Random) -> str:
        return _per_word(text, rng, 0.35, _typo)


@register
class TokenSplit(Attack):
    name = "token_split"
    attack_class = "adversarial_noise"
    description = "break words at token boundaries with spaces, hyphens or dots ('bo mb')"

    def apply(self, text: str, rng: random.Random) -> str:
        return _per_word(text, rng, 0.5, _split, min_len=4)


@register
class LetterSpacing(Attack):
    name = "letter_spacing"
    attack_class = "adversarial_noise"
    description = "s p a c e every letter (or dot/dash separators)"

    def apply(self, text: str, rng: random.Random) -> str:
        return space_letters(text, rng.choice((" ", " ", ".", "-")))


@register
class ZeroWidth(Attack):
    name = "zero_width"
    attack_class = "adversarial_noise"
    description = "invisible zero-width characters between letters"

    def apply(self, text: str, rng: random.Random) -> str:
        return insert_zero_width(text, rng, rate=0.5)
