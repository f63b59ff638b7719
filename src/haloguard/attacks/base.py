"""Attack base class, options and the registry (with did-you-mean suggestions).

An attack is a small, seeded, deterministic text transform: ``apply(text, rng)`` returns
the attacked text, and the same ``random.Random(seed)`` always gives the same output.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import random
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

from haloguard.errors import InputError

#: the attack classes of seed 000's "Jailbreak Patches" (+ "baseline" for the identity)
ATTACK_CLASSES: tuple[str, ...] = (
    "adversarial_noise", "narrative_injection", "benign_tail", "encoding", "style_shift",
    "semantic_paraphrase", "prompt_injection", "jailbreak_template", "chain",
)

#: family modules imported (cheaply) the first time the registry is used
_FAMILY_MODULES: tuple[str, ...] = (
    "noise", "narrative", "tail", "encodings", "style", "paraphrase", "injection",
    "templates", "chain",
)


@dataclass(frozen=True, slots=True)
class AttackOptions:
    """Settings some attacks need; the CLI fills them (library code reads no env vars).

    ``paraphrase_endpoint`` is the base URL of an OpenAI-compatible chat endpoint used by
    back-translation and LLM paraphrase; ``templates`` overrides the jailbreak templates
    (strings with a ``{{ prompt }}`` slot).
    """

    paraphrase_endpoint: str | None = None
    paraphrase_model: str = "default"
    paraphrase_api_key: str | None = None
    paraphrase_timeout: float = 60.0
    templates: tuple[str, ...] | None = None
    template_sources: tuple[str, ...] = ("pyrit", "garak")
    extra: dict[str, object] = field(default_factory=dict)


class Attack(ABC):
    """One registered transform.

    Subclasses set ``name``, ``attack_class`` and ``description`` and implement
    :meth:`apply`.  ``overlay`` is the attack overlay a guard should report for the
    attacked text whatever its payload (``"jailbreak"`` for jailbreak wrappers,
    ``"prompt_injection"`` for injected instructions, else ``"none"``).
    """

    name: ClassVar[str] = ""
    attack_class: ClassVar[str] = ""
    description: ClassVar[str] = ""
    overlay: ClassVar[str] = "none"
    #: overlay of the same wrapper around a *benign* ask (``None``: same as ``overlay``)
    twin_overlay: ClassVar[str | None] = None

    def __init__(self, options: AttackOptions | None = None) -> None:
        self.options = options or AttackOptions()

    @abstractmethod
    def apply(self, text: str, rng: random.Random) -> str:
        """Return the attacked text (deterministic given ``rng``'s state)."""

    def unavailable_reason(self) -> str | None:
        """Why this attack cannot run with the current options (``None`` when it can)."""
        return None

    def overlay_for(self, label: str) -> str:
        """The overlay label for attacked text whose payload has ``label`` (safe/unsafe)."""
        if label == "safe" and self.twin_overlay is not None:
            return self.twin_overlay
        return self.overlay

    @property
    def available(self) -> bool:
        return self.unavailable_reason() is None

    @property
    def chain(self) -> tuple[str, ...]:
        """The names of the single transforms this attack applies, in order."""
        return (self.name,)

    @property
    def classes(self) -> tuple[str, ...]:
        """Every attack class involved (a chain reports its parts' classes too)."""
        return (self.attack_class,)

    def __repr__(self) -> str:
        return f"<Attack {self.name} ({self.attack_class})>"


class IdentityAttack(Attack):
    """The untransformed prompt: the baseline every attack is compared with."""

    name = "identity"
    attack_class = "baseline"
    description = "no transform (baseline)"

    def apply(self, text: str, rng: random.Random) -> str:
        return text


class UnknownAttackError(InputError, KeyError):
    """An attack name that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


_REGISTRY: dict[str, type[Attack]] = {"identity": IdentityAttack}
_LOADED = False


def register(cls: type[Attack]) -> type[Attack]:
    """Class decorator: add an attack to the registry (names must be unique)."""
    if not cls.name:
        raise TypeError(f"{cls.__name__} has no name")
    if cls.attack_class not in ATTACK_CLASSES:
        raise TypeError(f"{cls.__name__}: unknown attack class {cls.attack_class!r}")
    prev = _REGISTRY.get(cls.name)
    if prev is not None and prev is not cls:
        raise TypeError(f"attack name {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def _ensure_loaded() -> None:
    global _LOADED
    if _LOADED:
        return
    for mod in _FAMILY_MODULES:
        importlib.import_module(f"haloguard.attacks.{mod}")
    _LOADED = True


def attack_names(*, include_identity: bool = False) -> list[str]:
    """Registered attack names, grouped by class then name."""
    _ensure_loaded()
    order = {c: i for i, c in enumerate(ATTACK_CLASSES)}
    names = [n for n in _REGISTRY if include_identity or n != "identity"]
    return sorted(names, key=lambda n: (order.get(_REGISTRY[n].attack_class, -1), n))


def attack_class_of(name: str) -> type[Attack]:
    """The registered class for ``name`` (raises :class:`UnknownAttackError`)."""
    _ensure_loaded()
    if name.startswith("chain:"):
        from haloguard.attacks.chain import Chain

        return Chain
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownAttackError(_unknown_message(name)) from None


def _unknown_message(name: str) -> str:
    close = difflib.get_close_matches(name, list(_REGISTRY) + list(ATTACK_CLASSES), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return f"unknown attack {name!r}{hint} (see `haloguard attacks list`)"


def get_attack(name: str, options: AttackOptions | None = None) -> Attack:
    """Instantiate one attack by name.

    ``chain:a+b+c`` builds an ad-hoc chain of registered attacks, applied left to right.
    """
    _ensure_loaded()
    name = name.strip()
    if name.startswith("chain:"):
        from haloguard.attacks.chain import Chain

        parts = [p for p in name[len("chain:"):].split("+") if p]
        return Chain([get_attack(p, options) for p in parts], options=options)
    return attack_class_of(name)(options)


def resolve_attacks(spec: str | list[str] | None, options: AttackOptions | None = None,
                    *, exclude_classes: tuple[str, ...] = ()) -> list[Attack]:
    """Attacks for a CLI spec: ``all``, or a comma list of names and/or attack classes."""
    _ensure_loaded()
    items = spec if isinstance(spec, list) else [s for s in (spec or "all").split(",")]
    items = [s.strip() for s in items if s and s.strip()]
    names: list[str] = []
    for item in items:
        if item == "all":
            names.extend(attack_names())
        elif item in ATTACK_CLASSES or item == "baseline":
            names.extend(n for n in attack_names(include_identity=True)
                         if _REGISTRY[n].attack_class == item)
        else:
            attack_class_of(item)  # validates (with a suggestion)
            names.append(item)
    out = [get_attack(n, options) for n in dict.fromkeys(names)]
    if exclude_classes:
        out = [a for a in out if not set(a.classes) & set(exclude_classes)]
    return out


def derive_seed(base_seed: int, *parts: object) -> int:
    """A stable 63-bit seed from a base seed and identifying parts (attack, record id)."""
    h = hashlib.sha256(repr((int(base_seed), *map(str, parts))).encode()).digest()
    return int.from_bytes(h[:8], "big") >> 1


def apply_seeded(attack: Attack, text: str, seed: int) -> str:
    """``attack.apply`` with a fresh ``random.Random(seed)`` (replayable)."""
    return attack.apply(text, random.Random(seed))
