"""The Guard: canonicalize -> windows -> backend -> aggregate -> calibrate -> threshold.

Every stage is a plain function or a small object; the Guard only composes them.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from haloguard.backends.base import Backend, Conversation, Score
from haloguard.calibration import Calibrator, IdentityCalibrator
from haloguard.constitution import Constitution, load_constitution
from haloguard.errors import InputError
from haloguard.inputs import coerce_item, to_conversation
from haloguard.verdict import Verdict
from haloguard.windows import WindowConfig, sentence_units, window_bounds

DEFAULT_THRESHOLD = 0.5
OVERLAY_THRESHOLD = 0.5
#: safe verdicts whose unsafe probability lies within this margin below the threshold
#: get the ``Controversial`` tier
CONTROVERSIAL_MARGIN = 0.15
VIEW_POLICIES = ("readable", "max")


@dataclass(frozen=True, slots=True)
class _Unit:
    item: int
    view: int
    window: int
    conv: Conversation
    #: a sentence of a multi-window view scored alone (``window``: the window holding it)
    sentence: bool = False


@dataclass(frozen=True, slots=True)
class _Plan:
    views: tuple[str, ...]
    windows_per_view: tuple[int, ...]
    #: views whose unsafe probability decides the label (all of them unless the surface
    #: is noise: see canonicalize.safety_views); every view feeds the overlay
    safety: frozenset[int]


class Guard:
    """Classifies prompts and conversations with one backend.

    ``canonicalize`` turns deobfuscation views on or off; ``window`` overrides the
    backend's preferred window settings.  ``view_policy`` says which views decide the
    safety label: ``"readable"`` (default) all of them, except that an unreadable
    original (leetspeak, homoglyphs, spacing, camelCase throughout) is judged by the
    decoded views that read as language (:func:`haloguard.canonicalize.safety_views`);
    ``"max"`` always the riskiest view, surface included.
    """

    def __init__(
        self,
        backend: Backend,
        *,
        threshold: float | None = None,
        constitution: Constitution | None = None,
        calibrator: Calibrator | None = None,
        canonicalize: bool = True,
        window: WindowConfig | None = None,
        overlay_threshold: float = OVERLAY_THRESHOLD,
        view_policy: str = "readable",
    ) -> None:
        if view_policy not in VIEW_POLICIES:
            raise InputError(f"view_policy must be one of {', '.join(VIEW_POLICIES)}, "
                             f"got {view_policy!r}")
        self.view_policy = view_policy
        self.backend = backend
        self.constitution = constitution or load_constitution()
        self.calibrator = calibrator or IdentityCalibrator()
        if threshold is None:
            threshold = backend.default_threshold
        self.threshold = float(DEFAULT_THRESHOLD if threshold is None else threshold)
        _check_threshold(self.threshold)
        self.canonicalize = canonicalize
        self.window = window or WindowConfig(backend.window_length, backend.window_stride)
        self.overlay_threshold = overlay_threshold
        self.categories = tuple(self.constitution.runtime_categories)

    @property
    def model_id(self) -> str:
        info = self.backend.info
        return f"{info.model_id}@{info.digest[:12]}" if info.digest else info.model_id

    @property
    def pipeline_id(self) -> str:
        """What besides the model shapes a verdict: views, view policy, windows, sentence
        bar (e.g. part of the evaluation cache key, so changing one re-scores)."""
        from haloguard.canonicalize import DECODER_NAMES

        views = ",".join(DECODER_NAMES) if self.canonicalize else "off"
        return (f"views={views};policy={self.view_policy};window={self.window.length}/"
                f"{self.window.stride};sentence={self.backend.sentence_threshold}")

    # -- public API -------------------------------------------------------------------
    def classify(
        self, text: str | None = None, *, messages: Sequence[Any] | None = None,
        threshold: float | None = None,
    ) -> Verdict:
        """Classify one text or conversation (the last user turn, in context)."""
        conv = to_conversation(text, messages)
        return self._classify_convs([conv], threshold)[0]

    def classify_batch(
        self, items: Iterable[Any], *, threshold: float | None = None, return_errors: bool = False
    ) -> list[Verdict | InputError]:
        """Classify many inputs (texts, message lists, or ``{"text"|"messages"}`` rows).

        With ``return_errors`` a bad item yields its :class:`InputError` in place and the
        other items are still classified; otherwise the first bad item raises.
        """
        convs: list[Conversation | InputError] = []
        for i, item in enumerate(items):
            try:
                convs.append(coerce_item(item))
            except InputError as exc:
                if not return_errors:
                    raise InputError(f"item {i}: {exc}") from None
                convs.append(exc)
        good = [c for c in convs if not isinstance(c, InputError)]
        verdicts = iter(self._classify_convs(good, threshold)) if good else iter(())
        return [c if isinstance(c, InputError) else next(verdicts) for c in convs]

    # -- stages -------------------------------------------------------------------------
    def _views(self, text: str) -> tuple[list[tuple[str, str]], set[int]]:
        """The views to score and the indices of those that decide the safety label."""
        if not self.canonicalize:
            return [("original", text)], {0}
        from haloguard.canonicalize import canonicalize, safety_views

        views = canonicalize(text)
        safety = (set(range(len(views))) if self.view_policy == "max"
                  else set(safety_views(views)))
        return [(v.name, v.text) for v in views], safety

    def _windows(self, text: str) -> tuple[list[str], list[tuple[int, str]]]:
        """The view's windows, and for a multi-window view on a backend with a
        ``sentence_threshold``, its sentences as ``(window index, text)``."""
        if len(text) <= self.window.length:  # a token spans at least one character
            return [text], []
        spans = self.backend.token_spans(text)
        if len(spans) <= self.window.length:
            return [text], []
        bounds = window_bounds(spans, self.window)
        wins = [text[a:b] for a, b in bounds]
        sents: list[tuple[int, str]] = []
        if self.backend.sentence_threshold is not None:
            starts = [a for a, _ in bounds]
            sents = [(max(bisect_right(starts, off) - 1, 0), s)
                     for off, s in sentence_units(text)]
        return wins, sents

    def _plan(self, idx: int, conv: Conversation) -> tuple[_Plan, list[_Unit]]:
        last_user = max(i for i, m in enumerate(conv) if m["role"] == "user")
        context = tuple(conv[:last_user])
        views, safety = self._views(conv[last_user]["content"])
        user_turns = [m["content"] for m in context if m["role"] == "user"]
        if user_turns and not self.backend.uses_context:
            # text-only backends also read the user side of the whole conversation, so a
            # payload split across turns is still seen as one request
            views.append(("conversation", "\n".join([*user_turns, conv[last_user]["content"]])))
            safety.add(len(views) - 1)
        units: list[_Unit] = []
        counts = []
        for v, (_, vtext) in enumerate(views):
            wins, sents = self._windows(vtext)
            counts.append(len(wins))
            pieces = [(w, t, False) for w, t in enumerate(wins)] + [(w, t, True) for w, t in sents]
            for w, wtext, sentence in pieces:
                msg = {"role": "user", "content": wtext}
                unit = (*context, msg) if self.backend.uses_context else (msg,)
                units.append(_Unit(idx, v, w, unit, sentence))
        return _Plan(tuple(n for n, _ in views), tuple(counts), frozenset(safety)), units

    def _classify_convs(self, convs: list[Conversation], threshold: float | None) -> list[Verdict]:
        thr = self.threshold if threshold is None else float(threshold)
        _check_threshold(thr)
        plans, units = [], []
        for i, conv in enumerate(convs):
            plan, us = self._plan(i, conv)
            plans.append(plan)
            units.extend(us)
        scores = self.backend.score([u.conv for u in units])
        per_item: list[list[tuple[_Unit, Score, float]]] = [[] for _ in convs]
        for u, s in zip(units, scores):
            per_item[u.item].append((u, s, self.calibrator(s.p_unsafe)))
        return [self._aggregate(plans[i], per_item[i], thr) for i in range(len(convs))]

    def _aggregate(self, plan: _Plan, scored: list[tuple[_Unit, Score, float]], thr: float) -> Verdict:
        bar = self.backend.sentence_threshold
        # a sentence counts only at its own stricter bar; below it, it does not compete
        decisive = [t for t in scored if t[0].view in plan.safety
                    and (not t[0].sentence or (bar is not None and t[2] >= bar))]
        best_u, best_s, best_p = max(decisive, key=lambda t: t[2])  # first max wins ties
        win_view = best_u.view
        windows = [t for t in scored if not t[0].sentence]
        window_scores = tuple(p for u, _, p in windows if u.view == win_view)
        cat_scores = {c: float(best_s.category_probs.get(c, 0.0)) for c in self.categories}
        unsafe = best_p >= thr
        top_cat = max(cat_scores, key=cat_scores.__getitem__) if cat_scores else "none"
        category = top_cat if unsafe else "none"
        overlay = "none"
        ov = {k: max(float(s.overlay_probs.get(k, 0.0)) for _, s, _ in windows)
              for k in ("jailbreak", "prompt_injection")}
        k_best = max(ov, key=ov.__getitem__)
        if ov[k_best] >= self.overlay_threshold:
            overlay = k_best
        if best_s.tier in ("Safe", "Controversial", "Unsafe"):
            tier = best_s.tier
        elif unsafe:
            tier = self.constitution.severity_of(category) if category != "none" else "Unsafe"
            tier = "Controversial" if tier == "Controversial" else "Unsafe"
        else:
            tier = "Controversial" if best_p >= thr - CONTROVERSIAL_MARGIN else "Safe"
        flags = {f for _, s, _ in scored for f in s.flags}
        if 0 not in plan.safety:
            flags.add("surface_decoded")  # the unreadable original was judged by its decoding
        if best_u.sentence:
            flags.add("sentence")  # one sentence of a long text, scored alone, decided
        return Verdict(
            safety_label="Unsafe" if unsafe else "Safe",
            tier=tier,
            category=category,
            category_scores=cat_scores,
            attack_overlay=overlay,
            confidence=best_p if unsafe else 1.0 - best_p,
            tier_probs={"safe": 1.0 - best_p, "unsafe": best_p},
            threshold=thr,
            window_count=plan.windows_per_view[win_view],
            selected_window_index=best_u.window,
            window_risk_scores=window_scores,
            decoded_views=plan.views,
            selected_view=plan.views[win_view],
            raw_response=best_s.raw_response,
            model=self.model_id,
            flags=tuple(sorted(flags)),
        )


def _check_threshold(thr: float) -> None:
    if not 0.0 <= thr <= 1.0:
        raise InputError(f"threshold must be between 0 and 1, got {thr}")
