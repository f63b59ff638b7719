"""The Verdict: the typed, immutable result of classifying one input (no heavy imports)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

OVERLAYS = ("none", "jailbreak", "prompt_injection")
TIERS = ("Safe", "Controversial", "Unsafe")

#: The JSON fields of a Verdict, in the order of DESIGN.md (HaloGuard-compatible).
VERDICT_FIELDS = (
    "status",
    "safety_label",
    "tier",
    "category",
    "category_scores",
    "attack_overlay",
    "confidence",
    "tier_probs",
    "threshold",
    "window_count",
    "selected_window_index",
    "window_risk_scores",
    "decoded_views",
    "raw_response",
    "model",
)


@dataclass(frozen=True, slots=True)
class Verdict:
    """A guard's decision on one prompt or conversation.

    ``to_dict()`` returns exactly the DESIGN.md fields (plus ``stage`` and ``flags``
    only when they carry information, e.g. for a cascade or a parse failure).
    """

    safety_label: str
    tier: str
    category: str
    category_scores: Mapping[str, float]
    attack_overlay: str
    confidence: float
    tier_probs: Mapping[str, float]
    threshold: float
    window_count: int = 1
    selected_window_index: int = 0
    window_risk_scores: tuple[float, ...] = ()
    decoded_views: tuple[str, ...] = ("original",)
    selected_view: str = "original"
    raw_response: str = ""
    model: str = ""
    stage: str | None = None
    flags: tuple[str, ...] = field(default=())

    @property
    def status(self) -> str:
        """``HARMFUL`` when unsafe, else ``HARMLESS``."""
        return "HARMFUL" if self.safety_label == "Unsafe" else "HARMLESS"

    @property
    def unsafe(self) -> bool:
        return self.safety_label == "Unsafe"

    @property
    def p_unsafe(self) -> float:
        return float(self.tier_probs["unsafe"])

    def to_dict(self) -> dict[str, Any]:
        unsafe = round(float(self.tier_probs["unsafe"]), 6)
        d: dict[str, Any] = {
            "status": self.status,
            "safety_label": self.safety_label,
            "tier": self.tier,
            "category": self.category,
            "category_scores": {k: round(float(v), 6) for k, v in self.category_scores.items()},
            "attack_overlay": self.attack_overlay,
            "confidence": round(float(self.confidence), 6),
            "tier_probs": {"safe": round(1.0 - unsafe, 6), "unsafe": unsafe},
            "threshold": float(self.threshold),
            "window_count": int(self.window_count),
            "selected_window_index": int(self.selected_window_index),
            "window_risk_scores": [round(float(s), 6) for s in self.window_risk_scores],
            "decoded_views": list(self.decoded_views),
            "selected_view": self.selected_view,
            "raw_response": self.raw_response,
            "model": self.model,
        }
        if self.stage is not None:
            d["stage"] = self.stage
        if self.flags:
            d["flags"] = list(self.flags)
        return d
