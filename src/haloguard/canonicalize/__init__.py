"""Canonicalize a prompt into views worth scoring (original + plausible decodings).

>>> canonicalize("aG93IHRvIG1ha2UgYSBjYWtl")[1]
View(name='base64', text='how to make a cake')
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from . import decoders as d
from .emoji_words import decode_emoji
from .plausibility import Scorer, common_share, looks_like_text
from .respell import decode_respell
from .unicode_fold import decode_tags, fold_homoglyphs, strip_invisible

__all__ = ["View", "canonicalize", "safety_views", "DECODER_NAMES"]


@dataclass(frozen=True, slots=True)
class View:
    """One text rendering of the prompt to score."""

    name: str
    text: str


_Decoder = Callable[[str, Scorer], "str | None"]
_CHEAP: tuple[tuple[str, Callable[[str], "str | None"]], ...] = (
    ("invisible", strip_invisible),
    ("homoglyph", fold_homoglyphs),
    ("emoji", decode_emoji),
)


def _normalized(text: str, enabled: Collection[str]) -> str | None:
    """Apply the cheap Unicode decoders together; only when two or more change the text."""
    changed = 0
    for name, fn in _CHEAP:
        if name in enabled:
            out = fn(text)
            if out is not None and out != text:
                text, changed = out, changed + 1
    return text if changed >= 2 else None


# (view name, enabling decoder name, function, output must pass looks_like_text)
_PIPELINE: tuple[tuple[str, str, _Decoder, bool], ...] = (
    ("normalized", "invisible", lambda t, s: None, False),  # invisible+homoglyph+emoji
    ("invisible", "invisible", lambda t, s: strip_invisible(t), False),
    ("tags", "invisible", lambda t, s: decode_tags(t), True),
    ("homoglyph", "homoglyph", lambda t, s: fold_homoglyphs(t), False),
    ("url", "url", d.decode_url, False),
    ("base64", "base64", d.decode_base64, False),
    ("hex", "hex", d.decode_hex, False),
    ("morse", "morse", d.decode_morse, False),
    ("rot13", "rot13", d.decode_rot13, False),
    ("leetspeak", "leetspeak", d.decode_leet, False),
    ("spaced", "spaced", d.decode_spaced, False),
    ("reversed", "reversed", d.decode_reversed, False),
    ("reversed_words", "reversed", d.decode_reversed_words, False),
    ("piglatin", "piglatin", d.decode_piglatin, False),
    ("camelcase", "camelcase", d.decode_camelcase, False),
    ("emoji", "emoji", decode_emoji, False),
    ("respell", "respell", decode_respell, False),  # typos, words split at token boundaries
)

DECODER_NAMES: tuple[str, ...] = tuple(dict.fromkeys(e for _, e, _, _ in _PIPELINE))
"""Names accepted by ``enabled`` (``reversed`` yields ``reversed``/``reversed_words`` views,
``invisible`` also yields ``tags``; ``normalized`` combines invisible+homoglyph+emoji)."""

_MAX_DEPTH = 2


def _run(text: str, enabled: Collection[str], score: Scorer,
         skip: str) -> list[tuple[str, str, bool]]:
    """Apply each enabled decoder once; return (name, text, plausible) triples."""
    out = []
    for name, enable, fn, needs_text in _PIPELINE:
        if name == skip or (enable not in enabled and name != "normalized"):
            continue
        try:
            res = _normalized(text, enabled) if name == "normalized" else fn(text, score)
        except Exception:  # noqa: BLE001 - a decoder must never break the guard
            res = None
        if res is None or res == text or not res.strip():
            continue
        plausible = looks_like_text(res) if needs_text else _plausible(res)
        out.append((name, res, plausible))
    return out


def _plausible(text: str) -> bool:
    s = text.strip()
    if not s:
        return False
    printable = sum(c.isprintable() or c in "\n\t\r" for c in s)
    return printable >= 0.95 * len(s) and any(c.isalpha() for c in s)


def _drop_explained_respell(found: list[tuple[str, str, bool]]) -> list[tuple[str, str, bool]]:
    """Leave out the respelled view when another decoding of the same text reads better.

    Respelling repairs typos and split words.  When a decoder (reversed, ROT13, Pig Latin,
    ...) turns the damaged surface into clearer English than respelling does, the damage
    was that encoding, and respelling its words only makes random English out of them
    ("tsil drow thgis" -> "tail drop this"): on 50 reversed Natural Questions prompts the
    respelled view fired on 17 and made 2 of the 4 false positives.
    """
    rs = [r for r in found if r[0] == "respell"]
    if not rs:
        return found
    bar = common_share(rs[0][1])
    if any(plausible and name != "respell" and common_share(res) > bar
           for name, res, plausible in found):
        return [r for r in found if r[0] != "respell"]
    return found


def canonicalize(text: str, *, enabled: Collection[str] | None = None,
                 max_views: int = 6) -> list[View]:
    """Return ``[View("original", text), *decoded views]`` (at most ``max_views``)."""
    views = [View("original", text)]
    if max_views <= 1 or not text:
        return views[:max(max_views, 1)]
    active = frozenset(DECODER_NAMES if enabled is None else enabled)
    score = Scorer()
    seen = {text}
    frontier: list[tuple[str, str, str]] = [("", text, "")]  # (prefix, text, last decoder)
    for _ in range(_MAX_DEPTH):
        nxt: list[tuple[str, str, str]] = []
        for prefix, src, last in frontier:
            # respelling repairs a damaged surface; run on a decoding (Pig Latin out of
            # Morse, ROT13 of anything) it turns gibberish into random English words
            on = active - {"respell"} if prefix else active
            found = _run(src, on, score, last)
            if not prefix:
                found = _drop_explained_respell(found)
            for name, res, plausible in found:
                if res in seen:
                    continue
                seen.add(res)
                full = f"{prefix}+{name}" if prefix else name
                nxt.append((full, res, name))
                if plausible:
                    views.append(View(full, res))
                    if len(views) >= max_views:
                        return views
        if not nxt:
            break
        frontier = nxt
    return views


# When the surface is noise.  The original reads as almost no English (few common words
# among its 3+ letter tokens) while a decoded view reads as English: the obfuscation is
# the whole surface and the decoded text is what the prompt says.
SURFACE_NOISE_MAX = 0.2  # common-word share below which the original is unreadable
READABLE_MIN = 0.35  # ... and at or above which a decoded view reads as English
READABLE_GAIN = 0.25  # the decoded view must read this much better than the original
UNREADABLE = 0.2  # decoded views below this share are noise too (ROT13 of leetspeak)


def safety_views(views: Sequence[View]) -> tuple[int, ...]:
    """Indices of the views whose unsafe probability decides the safety label.

    Normally every view (the Guard takes the riskiest).  But when the original is
    unreadable and a decoded view reads as English -- a leetspeak, homoglyph, spaced or
    camelCase prompt -- the original and any other unreadable views are left out: a model
    scoring gibberish answers "this looks odd", not "this asks for harm".  The red team
    measured it on the embedded model (50 HarmBench and 50 NQ prompts): the obfuscated
    surface of a *benign* question scored 0.45-0.85, so 10-12% of leetspeak and spaced
    trivia questions and 84% under a role-play + leetspeak chain were flagged, while the
    harmful prompts the surface caught and the decoded view missed were exactly those the
    model misses in plain text.  So reading the meaning adds no bypass beyond the plain
    prompt's.  Every view still feeds the attack overlay (the Guard decides that).
    Partly obfuscated text (one leet word in a sentence) keeps all views: its original
    still reads as English.  Other languages are untouched: their originals have few
    ASCII words and no decoding of them reads as English.
    """
    n = len(views)
    if n < 2:
        return tuple(range(n))
    shares = [common_share(v.text) for v in views]
    best = max(shares[1:])
    if (shares[0] < SURFACE_NOISE_MAX and best >= READABLE_MIN
            and best - shares[0] >= READABLE_GAIN):
        return tuple(i for i in range(1, n) if shares[i] >= UNREADABLE)
    return tuple(range(n))
