"""Seeded, composable jailbreak and obfuscation transforms (seed 000 "Jailbreak Patches").

>>> import random
>>> from haloguard.attacks import get_attack
>>> attack = get_attack("word_swap")
>>> a, b = (attack.apply("how to steal a car", random.Random(0)) for _ in range(2))
>>> a == b
True
"""

from __future__ import annotations

from haloguard.attacks.base import (
    ATTACK_CLASSES,
    Attack,
    AttackOptions,
    IdentityAttack,
    UnknownAttackError,
    apply_seeded,
    attack_names,
    derive_seed,
    get_attack,
    register,
    resolve_attacks,
)

__all__ = [
    "ATTACK_CLASSES", "Attack", "AttackOptions", "IdentityAttack", "UnknownAttackError",
    "apply_seeded", "attack_names", "derive_seed", "get_attack", "register", "resolve_attacks",
]
