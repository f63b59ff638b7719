"""Shared fixtures: the fast tier uses the deterministic keyword backend."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def keyword_guard():
    from haloguard import load_guard

    return load_guard("keyword")
