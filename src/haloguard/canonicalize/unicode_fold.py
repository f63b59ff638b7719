"""Invisible-character stripping, tag smuggling and homoglyph/NFKC folding."""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from importlib import resources

__all__ = ["strip_invisible", "decode_tags", "fold_homoglyphs", "fold_table", "fold_char"]

_INVISIBLE_RE = re.compile("[\u00ad\u200b-\u200f\u2060-\u2064\ufeff\U000e0000-\U000e007f]")
_TAG_RE = re.compile("[\U000e0020-\U000e007e]+")
_LETTER_RUN_RE = re.compile(r"[^\W\d_]+")


def strip_invisible(text: str) -> str | None:
    """Remove zero-width chars, soft hyphens and Unicode tag characters."""
    if text.isascii() or not _INVISIBLE_RE.search(text):
        return None
    return _INVISIBLE_RE.sub("", text)


def decode_tags(text: str) -> str | None:
    """Return the ASCII text smuggled in Unicode tag characters (U+E0020..U+E007E)."""
    if text.isascii():
        return None
    runs = _TAG_RE.findall(text)
    if not runs:
        return None
    return " ".join("".join(chr(ord(c) - 0xE0000) for c in run) for run in runs)


@functools.lru_cache(maxsize=1)
def fold_table() -> dict[str, str]:
    """Map of non-ASCII char -> ASCII letter/digit built from confusables data + NFKC."""
    src = resources.files("confusable_homoglyphs").joinpath("confusables.json")
    data: dict[str, list[dict[str, str]]] = json.loads(src.read_text(encoding="utf-8"))
    table: dict[str, str] = {}
    for ch, glyphs in data.items():
        if len(ch) != 1 or ch.isascii() or _is_accented_latin(ch):
            continue
        targets = [g["c"] for g in glyphs if len(g["c"]) == 1 and g["c"].isascii()]
        letters = [t for t in targets if t.isalpha()] or [t for t in targets if t.isdigit()]
        if letters:
            table[ch] = letters[0]
    return table


def _is_accented_latin(ch: str) -> bool:
    base = unicodedata.normalize("NFD", ch)
    return len(base) > 1 and base[0].isascii()


@functools.lru_cache(maxsize=4096)
def fold_char(ch: str) -> str | None:
    """ASCII letter/digit that ``ch`` is a look-alike of, or None."""
    nf = unicodedata.normalize("NFKC", ch)
    if len(nf) == 1 and nf.isascii() and nf.isalnum():
        return nf
    return fold_table().get(ch)


def _fold_digit(ch: str) -> str:
    nf = unicodedata.normalize("NFKC", ch)
    return nf if len(nf) == 1 and nf.isascii() else ch


def fold_homoglyphs(text: str) -> str | None:
    """Fold confusables/fullwidth/math letters to ASCII inside mostly-Latin words."""
    if text.isascii():
        return None
    runs = _LETTER_RUN_RE.findall(text)
    total = foreign = 0
    for run in runs:
        for c in run:
            total += 1
            if not c.isascii() and fold_char(c) is None and not _is_accented_latin(c):
                foreign += 1
    if not total:
        return None
    latin_mode = foreign < 0.1 * total

    def fold_run(m: re.Match[str]) -> str:
        run = m.group(0)
        if run.isascii():
            return run
        folded = [fold_char(c) if not c.isascii() else c for c in run]
        if not latin_mode:
            n_ascii = sum(c.isascii() for c in run)
            if n_ascii == 0 or n_ascii < len(run) - n_ascii:
                return run
        return "".join(f if f is not None else c for f, c in zip(folded, run))

    out = _LETTER_RUN_RE.sub(fold_run, text)
    # Fullwidth / mathematical digits are not letters; fold them via NFKC.
    out = "".join(_fold_digit(c) if not c.isascii() and c.isdigit() else c for c in out)
    return out if out != text else None
