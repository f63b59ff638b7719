"""Stable, data-independent split rules: hashing, held-out buckets, train/validation."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from .records import Record

#: ShareGPT: conversations whose id falls in these buckets (of 10,000) are evaluation-only
SHAREGPT_HELDOUT_BUCKETS = 1100
#: chatterbot: non-English files whose "<lang>/<file>" falls in these buckets (of 100) are held out
CHATTERBOT_HELDOUT_BUCKETS = 35
#: fraction of the training corpus kept for validation (by pair id)
VAL_BUCKETS = 10


def stable_hash(key: str) -> int:
    """A 64-bit integer from sha256 of ``key`` (stable across runs and machines)."""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big")


def bucket(key: str, n: int) -> int:
    """``stable_hash(key) % n``."""
    return stable_hash(key) % n


def sharegpt_is_heldout(conversation_id: str) -> bool:
    """ShareGPT conversation (base id, without the ``_N`` part suffix) is evaluation-only."""
    return bucket(f"sharegpt:{conversation_id}", 10_000) < SHAREGPT_HELDOUT_BUCKETS


def chatterbot_is_heldout(lang_folder: str, file_name: str) -> bool:
    """A chatterbot FILE is evaluation-only (English files always train)."""
    if lang_folder == "english":
        return False
    return bucket(f"chatterbot:{lang_folder}/{file_name}", 100) < CHATTERBOT_HELDOUT_BUCKETS


def split_key(record: Record | dict) -> str:
    """Grouping key for train/val: the pair id when present, else the record id."""
    meta = record.meta if isinstance(record, Record) else record
    rid = record.id if isinstance(record, Record) else record["id"]
    return str(meta.get("pair_id") or meta.get("group") or rid)


def is_validation(record: Record | dict, seed: int = 0) -> bool:
    """Stable ~10% validation membership; pairs stay on one side."""
    return bucket(f"val:{seed}:{split_key(record)}", 100) < VAL_BUCKETS


def train_val_split(records: Iterable[Record], seed: int = 0) -> tuple[list[Record], list[Record]]:
    """Split into (train, val) by :func:`is_validation`, keeping input order."""
    train: list[Record] = []
    val: list[Record] = []
    for r in records:
        (val if is_validation(r, seed) else train).append(r)
    return train, val


def capped(records: Iterable[Record], cap: int, salt: str) -> list[Record]:
    """At most ``cap`` records, chosen by smallest stable hash of ``salt:id``; order kept."""
    rows = list(records)
    if len(rows) <= cap:
        return rows
    keep = set(sorted(range(len(rows)), key=lambda i: stable_hash(f"{salt}:{rows[i].id}"))[:cap])
    return [r for i, r in enumerate(rows) if i in keep]


def load_split(role: str, cache_dir: str | Path | None = None,
               names: list[str] | None = None) -> dict[str, list[Record]]:
    """All sources of a role ("eval" or "train") → records, loading (and fetching) each."""
    from .loaders import load_source
    from .sources import sources_by_role

    specs = sources_by_role(role)
    if names is not None:
        specs = [s for s in specs if s.name in set(names)]
    return {s.name: load_source(s.name, cache_dir=cache_dir) for s in specs}
