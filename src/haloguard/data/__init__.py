"""Data: pinned package sources, loaders, splits, dedup/leakage and the corpus builder.

Light to import; the heavier pieces load on first use::

    from haloguard.data import fetch, load_source, load_split, check_leakage, build
"""

from __future__ import annotations

import importlib
from typing import Any

from .records import Record, read_jsonl, write_jsonl

_LAZY = {
    "fetch": "fetch", "FetchError": "fetch",
    "load_source": "loaders", "fill_template": "loaders_train",
    "load_split": "splits", "train_val_split": "splits",
    "load_registry": "sources", "get_source": "sources", "SourceSpec": "sources",
    "normalise_text": "dedup", "check_leakage": "dedup", "LeakageReport": "dedup",
    "build": "corpus", "build_corpus": "corpus", "LeakageError": "corpus",
}

__all__ = ["Record", "read_jsonl", "write_jsonl", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
