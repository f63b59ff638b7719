"""The HTTP service (extra ``server``): ``create_app(settings, guard)`` and ``Settings``."""

from __future__ import annotations

from typing import Any

__all__ = ["create_app", "Settings"]


def __getattr__(name: str) -> Any:  # lazy: importing the package needs no FastAPI
    if name == "create_app":
        from haloguard.server.app import create_app

        return create_app
    if name == "Settings":
        from haloguard.server.config import Settings

        return Settings
    raise AttributeError(name)
