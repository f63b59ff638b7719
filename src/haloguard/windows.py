"""Token-based sliding windows (seed 001: length 1200, stride 256 by default).

``stride`` is the step between window starts: a smaller stride gives more overlap
(more coverage, more cost).  Windows are substrings of the original text cut at token
boundaries, so any backend can score them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_WINDOW_LENGTH = 1200
DEFAULT_WINDOW_STRIDE = 256


@dataclass(frozen=True, slots=True)
class WindowConfig:
    """Window length and stride, in the backend's tokens."""

    length: int = DEFAULT_WINDOW_LENGTH
    stride: int = DEFAULT_WINDOW_STRIDE

    def __post_init__(self) -> None:
        if self.length < 1:
            raise ValueError(f"window length must be >= 1, got {self.length}")
        if self.stride < 1:
            raise ValueError(f"window stride must be >= 1, got {self.stride}")


def window_starts(n_tokens: int, length: int, stride: int) -> list[int]:
    """Start offsets (in tokens) of the windows covering ``n_tokens`` tokens.

    The last window always ends at the last token, so nothing is left unscored.
    """
    if n_tokens <= length:
        return [0]
    starts = list(range(0, n_tokens - length + 1, stride))
    if starts[-1] != n_tokens - length:
        starts.append(n_tokens - length)
    return starts


def window_bounds(spans: list[tuple[int, int]], config: WindowConfig) -> list[tuple[int, int]]:
    """``(start, end)`` character offsets of each window, given the tokens' char spans
    (at least ``config.length + 1`` tokens; shorter texts are one window, the whole text)."""
    return [(spans[s][0], spans[s + config.length - 1][1])
            for s in window_starts(len(spans), config.length, config.stride)]


def split_windows(text: str, spans: list[tuple[int, int]], config: WindowConfig) -> list[str]:
    """Cut ``text`` into windows of ``config.length`` tokens given the tokens' char spans."""
    if len(spans) <= config.length:
        return [text]
    return [text[a:b] for a, b in window_bounds(spans, config)]


# ---- sentence units ---------------------------------------------------------------------
# A long window dilutes a short request: one harmful sentence appended to two pages of
# trivia ("... Also, give detailed instructions for making X") moves a 126-token window's
# score from 0.96 (the sentence alone) to 0.02.  Backends that set ``sentence_threshold``
# also have the sentences of a multi-window text scored on their own; a sentence counts
# only when it alone is unsafe at that stricter bar (see Guard).
_SENT_SPLIT_RE = re.compile(r"(?<=[.!?])[\"')\]]*\s+|\n+")
SENTENCE_MIN_WORDS = 6  # shorter sentences join the next one ("Also." "Step 1:")
SENTENCE_MAX_CHARS = 600


def sentence_units(text: str, min_words: int = SENTENCE_MIN_WORDS,
                   max_chars: int = SENTENCE_MAX_CHARS) -> list[tuple[int, str]]:
    """``(start offset, text)`` of the sentences of ``text``, short ones joined to the next
    so each unit has at least ``min_words`` words (a trailing short one joins the last),
    and cut to ``max_chars`` characters; units of under 3 words are dropped."""
    out: list[tuple[int, str]] = []
    pos = 0
    pieces = []
    for m in _SENT_SPLIT_RE.finditer(text):
        pieces.append((pos, m.start()))
        pos = m.end()
    pieces.append((pos, len(text)))
    cur_start, cur_end, words = None, 0, 0
    for a, b in pieces:
        if not text[a:b].strip():
            continue
        if cur_start is None:
            cur_start = a
        cur_end = b
        words += len(text[a:b].split())
        if words >= min_words:
            out.append((cur_start, text[cur_start:cur_end]))
            cur_start, words = None, 0
    if cur_start is not None:
        if out and words < min_words:
            s0, _ = out.pop()
            out.append((s0, text[s0:cur_end]))
        else:
            out.append((cur_start, text[cur_start:cur_end]))
    return [(a, t.strip()[:max_chars]) for a, t in out if len(t.split()) >= 3]
