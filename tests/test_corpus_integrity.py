"""The shipped hand-authored corpus keeps its format: every later authoring round is checked
against the same rules (ids, labels per kind, pairs, constitution subcategories)."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from importlib import resources
from pathlib import Path

from haloguard.constitution import load_constitution

CORPUS = Path(str(resources.files("haloguard.data").joinpath("corpus")))
FIELDS = {"id", "text", "label", "category", "subcategory", "kind", "pair_id", "lang", "overlay"}
#: kind -> allowed (label, overlay); the corpus README's "Kinds" and "Attack overlay"
ALLOWED = {
    "harmful": {("unsafe", "none")},
    "counterfactual": {("safe", "none")},
    "boundary": {("safe", "none")},
    "baseline": {("safe", "none")},
    "jailbreak_wrapped": {("unsafe", "jailbreak"), ("safe", "none")},
    "injection": {("unsafe", "prompt_injection")},
}


def _rows() -> list[tuple[str, int, dict]]:
    out = []
    for f in sorted(CORPUS.glob("*.jsonl")):
        for i, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            out.append((f.name, i, json.loads(line)))
    return out


ROWS = _rows()


def test_corpus_is_large_and_multilingual() -> None:
    langs = Counter(r["lang"] for _, _, r in ROWS)
    assert len(ROWS) >= 3000
    assert sum(n for lang, n in langs.items() if lang != "en") >= 0.2 * len(ROWS)
    assert len(langs) >= 10


def test_every_row_is_well_formed() -> None:
    subs = {s.id: c.id for c in load_constitution().categories for s in c.subcategories}
    problems = []
    for name, i, r in ROWS:
        where = f"{name}:{i}"
        if set(r) != FIELDS:
            problems.append(f"{where}: fields {sorted(set(r) ^ FIELDS)}")
            continue
        if not r["text"].strip():
            problems.append(f"{where}: empty text")
        if (r["label"], r["overlay"]) not in ALLOWED.get(r["kind"], set()):
            problems.append(f"{where}: {r['kind']} with {r['label']}/{r['overlay']}")
        # a benign row may sit next to a category without a subcategory
        bare_benign = r["subcategory"] is None and r["label"] == "safe"
        if not bare_benign and subs.get(r["subcategory"]) != r["category"]:
            problems.append(f"{where}: subcategory {r['subcategory']} not in {r['category']}")
    assert not problems, "\n".join(problems[:20])


def test_ids_and_texts_are_unique() -> None:
    ids = Counter(r["id"] for _, _, r in ROWS)
    texts = Counter(r["text"].strip().lower() for _, _, r in ROWS)
    assert [k for k, n in ids.items() if n > 1] == []
    assert [k[:60] for k, n in texts.items() if n > 1] == []


def test_pairs_are_one_unsafe_ask_and_its_benign_twin() -> None:
    pairs: dict[str, list[dict]] = defaultdict(list)
    for _, _, r in ROWS:
        if r["pair_id"]:
            pairs[r["pair_id"]].append(r)
    bad = []
    for pid, members in pairs.items():
        k = sorted(m["kind"] for m in members)
        if len(members) != 2 or "counterfactual" not in k:
            bad.append(f"{pid}: {k}")
        elif len({(m["lang"], m["category"]) for m in members}) != 1:
            bad.append(f"{pid}: members differ in language or category")
    assert not bad, "\n".join(bad[:20])
    assert sum(1 for m in pairs.values() if sorted(x["kind"] for x in m)
               == ["counterfactual", "harmful"]) >= 29 * 40
