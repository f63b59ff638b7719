"""Text normalisation, exact and near-duplicate detection, and the train/eval leakage check."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .records import Record

_WS = re.compile(r"\s+")
NUM_PERM = 64
THRESHOLD = 0.8
SHINGLE = 3


def normalise_text(text: str) -> str:
    """NFKC, casefold, punctuation/symbols removed, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(" " if unicodedata.category(ch)[0] in "PSZC" else ch for ch in text)
    return _WS.sub(" ", text).strip()


def shingles(text: str, k: int = SHINGLE) -> set[str]:
    """Word k-shingles of the normalised text (the whole text when shorter than k words)."""
    words = normalise_text(text).split()
    if len(words) < k:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i:i + k]) for i in range(len(words) - k + 1)}


def dedup_exact(records: Iterable[Record]) -> tuple[list[Record], int]:
    """Keep the first record per normalised text; returns (kept, number dropped)."""
    seen: set[str] = set()
    kept: list[Record] = []
    dropped = 0
    for r in records:
        key = normalise_text(r.content)
        if key in seen:
            dropped += 1
            continue
        seen.add(key)
        kept.append(r)
    return kept, dropped


def jaccard(a: set[str], b: set[str]) -> float:
    """Exact Jaccard similarity of two sets."""
    return len(a & b) / len(a | b) if a or b else 1.0


class NearDupIndex:
    """MinHash LSH index over reference texts; query returns matches with Jaccard ≥ threshold."""

    def __init__(self, threshold: float = THRESHOLD, num_perm: int = NUM_PERM) -> None:
        from datasketch import MinHashLSH

        self.threshold = threshold
        self.num_perm = num_perm
        self._lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        self._shingles: dict[str, set[str]] = {}

    def _minhash(self, sh: set[str]):
        from datasketch import MinHash

        m = MinHash(num_perm=self.num_perm, seed=1)
        m.update_batch([s.encode("utf-8") for s in sorted(sh)])
        return m

    def add(self, key: str, text: str) -> None:
        sh = shingles(text)
        if not sh or key in self._shingles:
            return
        self._shingles[key] = sh
        self._lsh.insert(key, self._minhash(sh))

    def query(self, text: str) -> list[tuple[str, float]]:
        """Matching keys (sorted) with their exact Jaccard, confirmed after the LSH lookup."""
        sh = shingles(text)
        if not sh:
            return []
        out = [(k, jaccard(sh, self._shingles[k])) for k in self._lsh.query(self._minhash(sh))]
        return sorted((k, j) for k, j in out if j >= self.threshold)


def near_duplicates(records: Sequence[Record], threshold: float = THRESHOLD) -> list[tuple[str, str, float]]:
    """Pairs (earlier id, later id, Jaccard) of near-duplicates within one list."""
    index = NearDupIndex(threshold)
    pairs: list[tuple[str, str, float]] = []
    for r in records:
        pairs.extend((k, r.id, j) for k, j in index.query(r.content) if k != r.id)
        index.add(r.id, r.content)
    return pairs


@dataclass(frozen=True)
class Collision:
    """One training record that overlaps an evaluation record."""

    train_id: str
    train_source: str
    eval_id: str
    eval_source: str
    kind: str  # "exact" | "near"
    similarity: float
    train_text: str = ""
    eval_text: str = ""


@dataclass(frozen=True)
class LeakageReport:
    """Overlap between a training list and evaluation sets."""

    n_train: int
    n_eval: int
    exact: int
    near: int
    by_pair: dict[str, int] = field(default_factory=dict)  # "train_source -> eval_source": n
    examples: tuple[Collision, ...] = ()
    colliding_train_ids: frozenset[str] = frozenset()

    @property
    def ok(self) -> bool:
        return not self.colliding_train_ids

    def to_dict(self) -> dict:
        return {
            "ok": self.ok, "n_train": self.n_train, "n_eval": self.n_eval,
            "exact": self.exact, "near": self.near, "colliding_train_rows": len(self.colliding_train_ids),
            "by_pair": dict(sorted(self.by_pair.items())),
            "examples": [c.__dict__ for c in self.examples],
        }

    def summary(self) -> str:
        head = (f"leakage: {'OK' if self.ok else 'OVERLAP'} — {len(self.colliding_train_ids)} of "
                f"{self.n_train} training rows collide with {self.n_eval} evaluation rows "
                f"({self.exact} exact, {self.near} near-duplicate)")
        lines = [head] + [f"  {k}: {v}" for k, v in sorted(self.by_pair.items())]
        for c in self.examples[:10]:
            lines.append(f"  e.g. [{c.kind} {c.similarity:.2f}] {c.train_id} ~ {c.eval_id}: "
                         f"{c.train_text[:70]!r}")
        return "\n".join(lines)


def check_leakage(train: Iterable[Record], eval_: Iterable[Record], threshold: float = THRESHOLD,
                  max_examples: int = 20) -> LeakageReport:
    """Exact (normalised) and MinHash near-duplicate overlap of ``train`` against ``eval_``."""
    eval_rows = list(eval_)
    by_norm: dict[str, Record] = {}
    index = NearDupIndex(threshold)
    eval_by_id: dict[str, Record] = {}
    for r in eval_rows:
        by_norm.setdefault(normalise_text(r.content), r)
        eval_by_id.setdefault(r.id, r)
        index.add(r.id, r.content)
    n_train = exact = near = 0
    by_pair: dict[str, int] = {}
    examples: list[Collision] = []
    ids: set[str] = set()
    for t in train:
        n_train += 1
        hit = by_norm.get(normalise_text(t.content))
        kind, sim = "exact", 1.0
        if hit is None:
            matches = index.query(t.content)
            if not matches:
                continue
            key, sim = max(matches, key=lambda m: (m[1], m[0]))
            hit, kind = eval_by_id[key], "near"
        exact += kind == "exact"
        near += kind == "near"
        ids.add(t.id)
        pair = f"{t.source} -> {hit.source}"
        by_pair[pair] = by_pair.get(pair, 0) + 1
        if len(examples) < max_examples:
            examples.append(Collision(t.id, t.source, hit.id, hit.source, kind, round(sim, 4),
                                      t.content[:200], hit.content[:200]))
    return LeakageReport(n_train, len(eval_rows), exact, near, by_pair, tuple(examples),
                         frozenset(ids))
