"""Scoring backends: one small base class, a lazy registry, one backend per module."""

from haloguard.backends.base import Backend, BackendError, BackendInfo, Score

__all__ = ["Backend", "BackendError", "BackendInfo", "Score"]
