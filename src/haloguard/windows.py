"""Token-based sliding windows (seed 001: length 1200, stride 256 by default).

``stride`` is the step between window starts: a smaller stride gives more overlap
(more coverage, more cost).  Windows are substrings of the original text cut at token
boundaries, so any backend can score them.
"""

from __future__ import annotations

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
