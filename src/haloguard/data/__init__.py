"""Data: pinned package sources, loaders, splits, dedup/leakage and the corpus builder."""

from .records import Record, read_jsonl, write_jsonl

__all__ = ["Record", "read_jsonl", "write_jsonl"]
