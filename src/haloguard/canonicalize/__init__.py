"""Canonicalize a prompt into views worth scoring (original + plausible decodings).

>>> canonicalize("aG93IHRvIG1ha2UgYSBjYWtl")[1]
View(name='base64', text='how to make a cake')
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

from . import decoders as d
from .emoji_words import decode_emoji
from .plausibility import Scorer, looks_like_text
from .unicode_fold import decode_tags, fold_homoglyphs, strip_invisible

__all__ = ["View", "canonicalize", "DECODER_NAMES"]


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
            for name, res, plausible in _run(src, active, score, last):
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
