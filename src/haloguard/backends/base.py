"""One small base class for every scoring backend.

A backend scores a batch of *units* -- each a conversation whose last message is the
user turn to judge (a view or a window of it) -- and returns one :class:`Score` per unit.
It knows nothing of HTTP, windows, thresholds or verdicts.  The base class runs the
shared steps (validation, splitting into batches); subclasses implement ``_score_batch``.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Mapping

Message = Mapping[str, str]
Conversation = tuple[Message, ...]

_TOKEN_RE = re.compile(r"\w+|[^\w\s]", re.UNICODE)


@dataclass(frozen=True, slots=True)
class Score:
    """A backend's scores for one unit.

    ``p_unsafe`` is the (uncalibrated or backend-calibrated) probability that the unit is
    unsafe; ``category_probs`` gives a probability per runtime category (need not sum to
    1); ``overlay_probs`` has the keys ``jailbreak`` and ``prompt_injection``.
    """

    p_unsafe: float
    category_probs: Mapping[str, float] = field(default_factory=dict)
    overlay_probs: Mapping[str, float] = field(default_factory=dict)
    raw_response: str = ""
    tier: str | None = None
    flags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class BackendInfo:
    """Identity of a loaded backend (reported by ``/health`` and in every Verdict)."""

    name: str
    model_id: str
    revision: str = ""
    digest: str = ""
    device: str = "cpu"
    dtype: str = "float32"
    max_input_tokens: int = 512
    extra: Mapping[str, Any] = field(default_factory=dict)


class BackendError(RuntimeError):
    """A backend failed to score (network down, model error); the guard maps it to 503."""


class Backend(ABC):
    """Base class: subclasses implement :meth:`_score_batch` and :meth:`info`.

    Attributes a subclass may override:
      * ``max_batch_size`` -- units per call to ``_score_batch``;
      * ``sort_by_length`` -- batch units of similar length together (default True);
      * ``uses_context`` -- True when the backend reads earlier turns itself (chat
        templates); False when it only reads the last user turn's text;
      * ``default_threshold`` -- operating point tuned for this model, if any;
      * ``window_length`` / ``window_stride`` -- preferred sliding-window settings in
        this backend's own tokens;
      * ``sentence_threshold`` -- when set, the sentences of a text longer than one
        window are also scored alone, and one counts when its unsafe probability
        reaches this bar (see :func:`haloguard.windows.sentence_units`).
    """

    max_batch_size: int = 32
    #: group units of similar length into the same batch (see :meth:`score`)
    sort_by_length: bool = True
    uses_context: bool = False
    default_threshold: float | None = None
    window_length: int = 1200
    window_stride: int = 256
    sentence_threshold: float | None = None

    @property
    @abstractmethod
    def info(self) -> BackendInfo:
        """Identity and runtime settings."""

    @abstractmethod
    def _score_batch(self, units: list[Conversation]) -> list[Score]:
        """Score one batch (at most ``max_batch_size`` units)."""

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character spans of this backend's tokens in ``text`` (used for windows).

        The default is a word/punctuation split; model backends return their own
        tokenizer's offsets.
        """
        return [m.span() for m in _TOKEN_RE.finditer(text)]

    def score(self, units: Sequence[Conversation]) -> list[Score]:
        """Score ``units`` in batches of ``max_batch_size``; one Score per unit, in order.

        When there is more than one batch, units are grouped by length first (stable sort
        on the characters of their messages) so each padded batch wastes little compute on
        padding; the scores come back in input order.
        """
        units = list(units)
        size = max(1, self.max_batch_size)
        order = list(range(len(units)))
        if self.sort_by_length and len(units) > size:
            order.sort(key=lambda i: sum(len(str(m.get("content", ""))) for m in units[i]))
        out: list[Score | None] = [None] * len(units)
        for start in range(0, len(units), size):
            idx = order[start : start + size]
            batch = [units[i] for i in idx]
            scores = self._score_batch(batch)
            if len(scores) != len(batch):
                raise BackendError(
                    f"{type(self).__name__} returned {len(scores)} scores for {len(batch)} inputs"
                )
            for i, sc in zip(idx, scores):
                out[i] = sc
        return out  # type: ignore[return-value]

    def close(self) -> None:
        """Release resources (sessions, sockets); default does nothing."""


def last_user_text(unit: Conversation) -> str:
    """The content of the last user message of ``unit`` (what text-only backends read)."""
    for msg in reversed(unit):
        if msg.get("role") == "user":
            return str(msg.get("content", ""))
    return str(unit[-1].get("content", "")) if unit else ""
