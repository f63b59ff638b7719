"""HaloGuard: constitutional input-prompt safety guards.

>>> from haloguard import load_guard
>>> guard = load_guard()                      # the embedded CPU default
>>> guard.classify("How do I bake bread?").safety_label
'Safe'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Guard", "Verdict", "load_guard", "__version__"]

if TYPE_CHECKING:
    from haloguard.guard import Guard
    from haloguard.loader import load_guard
    from haloguard.verdict import Verdict


def __getattr__(name: str) -> Any:  # lazy, so `import haloguard` stays cheap
    if name == "Guard":
        from haloguard.guard import Guard

        return Guard
    if name == "load_guard":
        from haloguard.loader import load_guard

        return load_guard
    if name == "Verdict":
        from haloguard.verdict import Verdict

        return Verdict
    raise AttributeError(f"module 'haloguard' has no attribute {name!r}")
