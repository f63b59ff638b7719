"""Chains of 2-3 attacks (e.g. narrative wrapper + synonym swap + Base64), seeded."""

from __future__ import annotations

import random
from collections.abc import Sequence

from haloguard.attacks.base import Attack, AttackOptions, get_attack, register


class Chain(Attack):
    """Apply attacks left to right; each step draws from the same seeded ``rng``."""

    attack_class = "chain"

    def __init__(self, steps: Sequence[Attack] = (), options: AttackOptions | None = None,
                 name: str | None = None) -> None:
        super().__init__(options)
        self.steps = list(steps)
        if name is not None:
            self._name = name
        else:
            self._name = "chain:" + "+".join(s.name for s in self.steps)

    @property
    def name(self) -> str:  # type: ignore[override]
        return self._name

    @property
    def overlay(self) -> str:  # type: ignore[override]
        return next((s.overlay for s in self.steps if s.overlay != "none"), "none")

    def overlay_for(self, label: str) -> str:
        return next((o for s in self.steps if (o := s.overlay_for(label)) != "none"), "none")

    @property
    def chain(self) -> tuple[str, ...]:
        return tuple(n for s in self.steps for n in s.chain)

    @property
    def classes(self) -> tuple[str, ...]:
        return ("chain", *dict.fromkeys(c for s in self.steps for c in s.classes))

    def unavailable_reason(self) -> str | None:
        return next((r for s in self.steps if (r := s.unavailable_reason())), None)

    def apply(self, text: str, rng: random.Random) -> str:
        for step in self.steps:
            text = step.apply(text, rng)
        return text


class _NamedChain(Chain):
    parts: tuple[str, ...] = ()

    def __init__(self, options: AttackOptions | None = None) -> None:
        super().__init__([get_attack(p, options) for p in self.parts], options, name=self.name)


def _named(name: str, parts: tuple[str, ...], desc: str = "") -> type[Attack]:
    cls = type("Chain_" + name, (_NamedChain,), {
        "name": name, "parts": parts, "__module__": __name__,
        "description": desc or " + ".join(parts),
    })
    return register(cls)


NAMED_CHAINS: dict[str, tuple[str, ...]] = {
    "chain_fiction_swap_base64": ("fiction", "word_swap", "base64"),
    "chain_roleplay_leet": ("roleplay", "leet_extended"),
    "chain_tail_rot13": ("benign_tail", "rot13"),
    "chain_injection_homoglyph": ("hidden_in_document", "homoglyph"),
    "chain_swap_typos": ("word_swap", "typos"),
    "chain_screenplay_tokensplit": ("screenplay", "token_split"),
    "chain_template_hex": ("jailbreak_template", "hex"),
    "chain_devmode_camelcase": ("developer_mode", "camelcase"),
    "chain_insertion_piglatin_morse": ("synonym_insertion", "piglatin", "morse"),
}
for _n, _p in NAMED_CHAINS.items():
    _named(_n, _p)

#: single attacks a random chain may draw from, by position (wrapper, surface, encoding)
_WRAPPERS = ("fiction", "roleplay", "screenplay", "benign_tail", "system_override",
             "developer_mode", "mischievous_user", "hidden_in_document", "jailbreak_template")
_SURFACE = ("word_swap", "synonym_insertion", "typos", "char_noise", "token_split", "emoji",
            "leet_basic", "homoglyph", "camelcase")
_ENCODE = ("base64", "hex", "rot13", "morse", "leet_aggressive", "url", "reversed")


@register
class RandomChain(Attack):
    """A seeded random chain of 2-3 steps: [wrapper] -> [surface] -> [encoding]."""

    name = "random_chain"
    attack_class = "chain"
    description = "seeded random 2-3 step chain (wrapper / surface change / encoding)"

    def pick(self, rng: random.Random) -> Chain:
        slots = [_WRAPPERS, _SURFACE, _ENCODE]
        k = rng.choice((2, 3))
        use = sorted(rng.sample(range(3), k))
        steps = [get_attack(rng.choice(slots[i]), self.options) for i in use]
        return Chain(steps, self.options)

    def apply(self, text: str, rng: random.Random) -> str:
        return self.pick(rng).apply(text, rng)

    @property
    def classes(self) -> tuple[str, ...]:
        return ("chain",)
