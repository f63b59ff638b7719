"""A deterministic keyword backend for fast tests and examples (not a real guard)."""

from __future__ import annotations

import re

from haloguard.backends.base import Backend, BackendInfo, Conversation, Score, last_user_text

#: category -> trigger words (whole words, case-insensitive)
KEYWORDS: dict[str, tuple[str, ...]] = {
    "chemical_weapons": ("nerve agent", "sarin", "chlorine gas", "mustard gas"),
    "biological_weapons": ("anthrax", "bioweapon", "weaponize a virus"),
    "violence": ("kill", "murder", "stab", "hurt people"),
    "weapons_and_firearms": ("bomb", "explosive", "ghost gun"),
    "offensive_cyber": ("malware", "ransomware", "keylogger", "hack into"),
    "fraud_and_social_engineering": ("phishing", "scam"),
    "illegal_drugs": ("meth", "cocaine", "fentanyl"),
    "self_harm_and_suicide": ("kill myself", "suicide"),
}
JAILBREAK = ("ignore previous instructions", "ignore all previous instructions", "you are dan",
             "developer mode", "no restrictions")
INJECTION = ("ignore previous instructions", "ignore all previous instructions", "system prompt")


class KeywordBackend(Backend):
    """Unsafe probability 0.95 when a trigger word occurs, else 0.05."""

    max_batch_size = 64
    window_length = 64
    window_stride = 32

    def __init__(self, model: str | None = None, **_: object) -> None:
        self._patterns = {
            cat: re.compile(r"\b(" + "|".join(map(re.escape, words)) + r")\b", re.I)
            for cat, words in KEYWORDS.items()
        }

    @property
    def info(self) -> BackendInfo:
        return BackendInfo(name="keyword", model_id="keyword-v1", max_input_tokens=64)

    def _score_batch(self, units: list[Conversation]) -> list[Score]:
        out = []
        for unit in units:
            text = last_user_text(unit)
            low = text.lower()
            cats = {c: (0.95 if p.search(text) else 0.01) for c, p in self._patterns.items()}
            p = max(cats.values()) if cats else 0.01
            p = 0.95 if p > 0.5 else 0.05
            overlay = {
                "jailbreak": 0.9 if any(k in low for k in JAILBREAK) else 0.0,
                "prompt_injection": 0.95 if any(k in low for k in INJECTION) else 0.0,
            }
            out.append(Score(p_unsafe=p, category_probs=cats, overlay_probs=overlay))
        return out
