"""Leetspeak decoding at three levels (basic, extended, aggressive multi-character)."""

from __future__ import annotations

import re
from collections.abc import Callable

from .tables import LEET_AGGRESSIVE, LEET_BASIC, LEET_EXTENDED

__all__ = ["decode_leet"]

_BASIC_TT = str.maketrans(LEET_BASIC)
_EXT_TT = str.maketrans({**LEET_BASIC, **LEET_EXTENDED})
_AGGR_RE = re.compile(
    "|".join(re.escape(k) for k in sorted(LEET_AGGRESSIVE, key=len, reverse=True)),
    re.IGNORECASE,
)
_SYMBOLS = "".join(sorted(set(LEET_BASIC) | set(LEET_EXTENDED)))
# Cheap gate: a leet symbol touching an ASCII letter, or an aggressive multi-char form.
_GATE_SYMBOLS = re.escape("0123456789@$!|+(<€£¥")
_GATE_RES = (
    re.compile(r"[" + _GATE_SYMBOLS + r"](?:(?<=[A-Za-z].)|(?=[A-Za-z]))"),
    re.compile(r"[|/\\][-\\/<|)]"),  # aggressive multi-character forms
)
_SYMBOL_TOKEN_RE = re.compile(r"[0-9@$!|+(<€]{2,}(?!\S)")


def _has_symbol_token(text: str) -> bool:
    """A whitespace token made only of leet symbols, not just digits ('@(+')."""
    for m in _SYMBOL_TOKEN_RE.finditer(text):
        s = m.start()
        if (s == 0 or text[s - 1].isspace()) and not m.group(0).isdigit():
            return True
    return False
_ANY_LEET = "0123456789@$!|+(<€£¥\\/^"
_TOKEN_RE = re.compile(r"\S+")
_LEET_CHARS = frozenset(_SYMBOLS) | frozenset("\\/^-()[]{}*")
_TRAIL_RE = re.compile(r"[.,?!;:]+$")
# Source-code shape: calls like f(x), statement-ending braces/semicolons, keywords.
_CODE_RE = re.compile(
    r"\b[A-Za-z_]\w*\([\w\s,.'\"=*]*\)|[{};]\s*$"
    r"|^\s*(?:def|class|import|return|for|if|while|var|let|const)\b",
    re.MULTILINE,
)


def _is_leet_token(tok: str) -> bool:
    if not any(c in _LEET_CHARS for c in tok):
        return False
    if any(c.isalpha() for c in tok) or _AGGR_RE.search(tok) is not None:
        return True
    return len(tok) >= 2 and any(c in "@$!|+(€" for c in tok)


def _decode_token(tok: str, level: int) -> str:
    m = _TRAIL_RE.search(tok)
    core, tail = (tok[: m.start()], m.group(0)) if m and m.start() > 0 else (tok, "")
    if not any(c in _LEET_CHARS for c in core):
        return tok
    if level == 2:
        core = _AGGR_RE.sub(lambda mm: LEET_AGGRESSIVE[mm.group(0).lower()], core)
    core = core.translate(_BASIC_TT if level == 0 else _EXT_TT)
    return core + tail


def decode_leet(text: str, score: Callable[[str], float]) -> str | None:
    """Decode leetspeak if the text is leet-heavy and the best decoding is more English."""
    if not any(c in text for c in _ANY_LEET):
        return None
    if not any(g.search(text) for g in _GATE_RES) and not _has_symbol_token(text):
        return None
    tokens = _TOKEN_RE.findall(text)
    leet = [t for t in tokens if _is_leet_token(t)]
    if not leet or len(leet) < 0.2 * len(tokens):
        return None
    best, best_score = None, score(text) + 0.1
    levels = (0,) if _CODE_RE.search(text) else (0, 1, 2)
    for level in levels:
        out = _TOKEN_RE.sub(lambda m: _decode_token(m.group(0), level), text)
        if out == text:
            continue
        toks = _TOKEN_RE.findall(out)
        left = sum(any(c in _LEET_CHARS for c in t.rstrip(".,?!;:")) for t in toks)
        s = score(out) - 0.1 * left / len(toks)
        if s > best_score and s >= 0.3:
            best, best_score = out, s
    return best
