"""Two-stage cascade: a cheap first stage decides, uncertain prompts go to a second stage.

Seed 001 pairs a 0.8B hot-path guard with a 4B second-pass adjudicator; Anthropic's
constitutional classifiers use the same two-stage idea.  Prompts whose first-stage
unsafe probability falls inside the uncertainty band ``[lo, hi]`` are escalated; every
Verdict records the stage that decided (``stage``).  The band is chosen by
``haloguard calibrate --target-escalation`` on a labelled sample.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from haloguard.errors import InputError
from haloguard.guard import Guard
from haloguard.inputs import coerce_item, to_conversation
from haloguard.verdict import Verdict

DEFAULT_BAND = (0.2, 0.8)


class CascadeGuard:
    """Duck-types :class:`~haloguard.guard.Guard` (classify / classify_batch)."""

    def __init__(self, first: Guard, second: Guard, band: tuple[float, float] = DEFAULT_BAND,
                 first_name: str = "first", second_name: str = "second") -> None:
        lo, hi = band
        if not 0.0 <= lo <= hi <= 1.0:
            raise InputError(f"cascade band must satisfy 0 <= lo <= hi <= 1, got {band}")
        self.first, self.second, self.band = first, second, (float(lo), float(hi))
        self.first_name, self.second_name = first_name, second_name
        self._lock = threading.Lock()
        self.total = 0
        self.escalated = 0

    # Guard-like attributes used by the server and the eval runner
    @property
    def backend(self):
        return self.first.backend

    @property
    def threshold(self) -> float:
        return self.second.threshold

    @property
    def window(self):
        return self.first.window

    @property
    def categories(self):
        return self.first.categories

    @property
    def constitution(self):
        return self.first.constitution

    @property
    def model_id(self) -> str:
        return f"cascade({self.first.model_id},{self.second.model_id})"

    @property
    def escalation_rate(self) -> float:
        return self.escalated / self.total if self.total else 0.0

    def classify(self, text: str | None = None, *, messages: Sequence[Any] | None = None,
                 threshold: float | None = None) -> Verdict:
        conv = to_conversation(text, messages)
        out = self.classify_batch([{"messages": list(conv)}], threshold=threshold)[0]
        assert isinstance(out, Verdict)
        return out

    def classify_batch(self, items: Iterable[Any], *, threshold: float | None = None,
                       return_errors: bool = False) -> list[Verdict | InputError]:
        convs: list[Any] = []
        for i, item in enumerate(items):
            try:
                convs.append({"messages": list(coerce_item(item))})
            except InputError as exc:
                if not return_errors:
                    raise InputError(f"item {i}: {exc}") from None
                convs.append(exc)
        good = [c for c in convs if not isinstance(c, InputError)]
        first = self.first.classify_batch(good, threshold=threshold) if good else []
        lo, hi = self.band
        esc = [i for i, v in enumerate(first) if lo <= v.p_unsafe <= hi]  # type: ignore[union-attr]
        second = self.second.classify_batch([good[i] for i in esc], threshold=threshold) if esc else []
        results: list[Verdict] = [replace(v, stage=f"first:{self.first_name}") for v in first]  # type: ignore[arg-type]
        for i, v in zip(esc, second):
            results[i] = replace(v, stage=f"second:{self.second_name}")  # type: ignore[arg-type]
        with self._lock:
            self.total += len(first)
            self.escalated += len(esc)
        it = iter(results)
        return [c if isinstance(c, InputError) else next(it) for c in convs]


def load_cascade(spec: str, *, threshold: float | None = None, constitution: Any = None,
                 band: tuple[float, float] | None = None, calibration: str | Path | None = None,
                 device: str | None = None) -> CascadeGuard:
    """Build a cascade from ``"first,second"`` model names (anything load_guard accepts).

    ``calibration`` may be a JSON file from ``haloguard calibrate`` holding ``cascade_band``.
    """
    from haloguard.loader import load_guard

    names = [s.strip() for s in spec.split(",") if s.strip()]
    if len(names) != 2:
        raise InputError(f"--cascade takes two models 'first,second', got {spec!r}")
    if band is None and calibration is not None:
        import json

        try:
            data = json.loads(Path(calibration).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read calibration file {str(calibration)!r}: {exc}") from None
        if "cascade_band" in data:
            band = tuple(data["cascade_band"])  # type: ignore[assignment]
    kw: dict[str, Any] = {"device": device} if device else {}
    first = load_guard(names[0], constitution=constitution)
    second = load_guard(names[1], threshold=threshold, constitution=constitution,
                        **({} if names[1] in ("embedded", "keyword") else kw))
    return CascadeGuard(first, second, band or DEFAULT_BAND, names[0], names[1])
