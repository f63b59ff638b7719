"""Exceptions with one-line messages meant for users."""

from __future__ import annotations


class HaloGuardError(Exception):
    """Base class of haloguard's user-facing errors."""


class InputError(HaloGuardError, ValueError):
    """Bad input: empty text, a conversation without a user turn, a wrong type, ..."""
