"""Emoji-as-word substitution backed by the small ``emoji_words.txt`` table."""

from __future__ import annotations

import functools
import re
from importlib import resources

__all__ = ["emoji_table", "word_to_emoji", "decode_emoji"]

_VS_RE = re.compile("[\ufe0e\ufe0f]")


@functools.lru_cache(maxsize=1)
def emoji_table() -> dict[str, str]:
    """Emoji -> word (first entry wins)."""
    text = resources.files(__package__).joinpath("emoji_words.txt").read_text(encoding="utf-8")
    table: dict[str, str] = {}
    for line in text.splitlines():
        if not line or line.startswith("#") or "\t" not in line:
            continue
        emo, word = line.split("\t", 1)
        table.setdefault(emo.strip(), word.strip())
        table.setdefault(_VS_RE.sub("", emo.strip()), word.strip())
    return table


@functools.lru_cache(maxsize=1)
def word_to_emoji() -> dict[str, str]:
    """Word -> emoji, restricted to pairs that decode back to the same word."""
    out: dict[str, str] = {}
    for emo, word in emoji_table().items():
        out.setdefault(word, emo)
    return out


@functools.lru_cache(maxsize=1)
def _emoji_re() -> re.Pattern[str]:
    keys = sorted(emoji_table(), key=len, reverse=True)
    return re.compile("(?:" + "|".join(re.escape(k) for k in keys) + ")[\ufe0e\ufe0f]?")


def _wordish(ch: str) -> bool:
    return ch.isalnum() or (ord(ch) > 0x2000 and not ch.isspace())


def decode_emoji(text: str, score: object = None) -> str | None:
    """Replace table emoji with their word, padding with spaces next to letters."""
    if text.isascii():
        return None
    table = emoji_table()
    pat = _emoji_re()
    if not pat.search(text):
        return None

    def sub(m: re.Match[str]) -> str:
        key = m.group(0)
        word = table.get(key) or table[_VS_RE.sub("", key)]
        s, e = m.start(), m.end()
        left = " " if s > 0 and _wordish(m.string[s - 1]) else ""
        right = " " if e < len(m.string) and _wordish(m.string[e]) else ""
        return left + word + right

    out = pat.sub(sub, text)
    return out if out != text else None
