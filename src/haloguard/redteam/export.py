"""Confirmed bypasses -> training records (corpus row format) with provenance, plus a
benign twin for each: the same transform, same seed, on a paired benign record.

Row format (as ``src/haloguard/data/corpus/*.jsonl``, plus ``meta``)::

    {"id", "text", "label", "category", "subcategory", "kind", "pair_id", "lang",
     "overlay", "meta": {"provenance": {...}}}
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from haloguard.attacks.base import Attack, AttackOptions, apply_seeded, get_attack
from haloguard.redteam.runner import Attempt, Prompt, RedteamResult

GENERATOR = "haloguard.redteam"


@dataclass(frozen=True, slots=True)
class ExportStats:
    bypasses: int
    twins: int
    path: str


def _kind(overlay: str) -> str:
    return {"jailbreak": "jailbreak_wrapped", "prompt_injection": "injection"}.get(overlay,
                                                                                 "harmful")


def _short(*parts: object) -> str:
    return hashlib.sha1("\x1f".join(map(str, parts)).encode()).hexdigest()[:12]


class TwinFinder:
    """Pick the benign record paired with a harmful one.

    Order: the counterfactual with the same ``pair_id``; a benign record of the same
    category; any benign record (chosen by the attempt's seed, so it is reproducible).
    """

    def __init__(self, benign: Sequence[Prompt]) -> None:
        self.by_pair: dict[str, Prompt] = {}
        self.by_cat: dict[str, list[Prompt]] = defaultdict(list)
        self.all = [b for b in benign if b.label == "safe"]
        for b in self.all:
            if b.pair_id and b.pair_id not in self.by_pair:
                self.by_pair[b.pair_id] = b
            self.by_cat[b.category].append(b)

    def find(self, harmful: Prompt, seed: int) -> tuple[Prompt | None, str]:
        if harmful.pair_id and harmful.pair_id in self.by_pair:
            return self.by_pair[harmful.pair_id], "pair_id"
        rng = random.Random(seed)
        if self.by_cat.get(harmful.category):
            return rng.choice(self.by_cat[harmful.category]), "category"
        if self.all:
            return rng.choice(self.all), "random"
        return None, "none"


class _AttackLookup:
    """An attempt's attack (instantiated once per name) and every class it belongs to,
    including the steps a ``random_chain`` seed picked."""

    def __init__(self, result: RedteamResult, options: AttackOptions | None) -> None:
        self.options = options
        self.info = {a["name"]: a for a in result.attacks}
        self.cache: dict[str, Attack] = {}

    def __call__(self, att: Attempt) -> tuple[Attack, set[str]]:
        if att.attack not in self.cache:
            self.cache[att.attack] = get_attack(att.attack, self.options)
        attack = self.cache[att.attack]
        classes = set(self.info.get(att.attack, {}).get("classes", [att.attack_class]))
        classes |= {get_attack(n, self.options).attack_class
                    for n in _resolved_chain(att, attack)}
        return attack, classes


def bypass_records(
    result: RedteamResult,
    *,
    benign_pool: Sequence[Prompt] = (),
    options: AttackOptions | None = None,
    round_: int | None = None,
    allowed_classes: set[str] | None = None,
) -> list[dict[str, Any]]:
    """Training rows for every confirmed bypass (and its benign twin when one is found).

    ``allowed_classes``: only attacks whose classes all lie in this set are exported (the
    loop uses it to keep held-out attack classes out of training).  Rows carry the text of
    the canonical view the guard scored (see :func:`training_text`); encoding bypasses the
    canonicalizer did not decode are left out (canonicalizer gaps, listed by
    :func:`canonicalizer_gaps`).
    """
    finder = TwinFinder([*benign_pool, *(p for p in result.prompts.values() if p.label == "safe")])
    lookup = _AttackLookup(result, options)
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    gaps: list[Attempt] = []
    for att in result.bypasses():
        if att.text in seen:
            continue
        attack, classes = lookup(att)
        if allowed_classes is not None and not classes <= allowed_classes:
            continue
        seen.add(att.text)
        text, view = training_text(att, classes)
        if text is None:
            gaps.append(att)
            continue
        src = result.prompts.get(att.prompt_id)
        rows.extend(_rows_for(att, src, attack, finder, result.guard, round_, text, view))
    return rows


def false_positive_records(
    result: RedteamResult,
    *,
    options: AttackOptions | None = None,
    round_: int | None = None,
    allowed_classes: set[str] | None = None,
) -> list[dict[str, Any]]:
    """Training rows for every attacked *benign* prompt the guard flagged (label ``safe``).

    The mirror of :func:`bypass_records`: hardening on bypasses alone teaches "wrapper =
    unsafe" and buys robustness with over-refusal; these rows teach that a benign payload
    stays safe whatever the wrapper (the overlay may still name the wrapper).  The raw
    attacked text is kept even for encodings -- an opaque benign cipher labelled safe
    teaches the model to defer to the decoded view -- and, when a decoded view won, that
    view's text as well.  Held-out classes are filtered as in :func:`bypass_records`.
    """
    lookup = _AttackLookup(result, options)
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for att in result.attempts:
        if not att.false_positive or att.attack == "identity":
            continue
        attack, classes = lookup(att)
        if allowed_classes is not None and not classes <= allowed_classes:
            continue
        src = result.prompts.get(att.prompt_id)
        view = att.selected_view or "original"
        texts = [("original", att.text)]
        if view != "original":
            decoded = scored_view(att.text, view)
            if decoded and decoded != att.text:
                texts.append((view, decoded))
        rid = _short("fp", att.attack, att.seed, att.prompt_id)
        prov = _provenance(att, attack, src, result.guard, round_)
        for form, text in texts:
            if text in seen:
                continue
            seen.add(text)
            rows.append({
                "id": f"redteam-fp-{rid}" + ("" if form == "original" else f"-{form}"),
                "text": text, "label": "safe", "category": None,
                "subcategory": src.subcategory if src else None, "kind": "wrapped_benign",
                "pair_id": None, "lang": att.lang, "overlay": attack.overlay_for("safe"),
                "meta": {"provenance": {**prov, "view": form, "false_positive": True},
                         **_span(text, src.text if src else None)},
            })
    return rows


def canonicalizer_gaps(result: RedteamResult) -> dict[str, int]:
    """Per attack: encoding bypasses whose winning view was the raw text (not decoded)."""
    out: dict[str, int] = {}
    info = {a["name"]: a for a in result.attacks}
    for att in result.bypasses():
        classes = set(info.get(att.attack, {}).get("classes", [att.attack_class]))
        if "encoding" in classes and (att.selected_view or "original") == "original":
            out[att.attack] = out.get(att.attack, 0) + 1
    return out


def _resolved_chain(att: Attempt, attack: Attack) -> list[str]:
    pick = getattr(attack, "pick", None)  # random_chain: the steps this seed chose
    return list(pick(random.Random(att.seed)).chain) if callable(pick) else list(att.chain)


def _provenance(att: Attempt, attack: Attack, source: Prompt | None, guard: str,
                round_: int | None) -> dict[str, Any]:
    return {
        "generator": GENERATOR, "attack": att.attack, "attack_class": att.attack_class,
        "chain": _resolved_chain(att, attack), "seed": att.seed, "source_id": att.prompt_id,
        "source": source.source if source else "", "guard": guard,
        "p_unsafe": round(att.p_unsafe, 6), "round": round_,
        "replay": f"haloguard.attacks.apply_seeded(get_attack({att.attack!r}), text, {att.seed})",
    }


def scored_view(text: str, view: str) -> str | None:
    """The text of canonical view ``view`` of ``text`` (``None`` when it is not produced)."""
    if view in ("", "original"):
        return text
    from haloguard.canonicalize import canonicalize

    return next((v.text for v in canonicalize(text) if v.name == view), None)


def training_text(att: Attempt, classes: set[str]) -> tuple[str | None, str]:
    """What to train on for a bypass: the text of the view the guard scored.

    The model only ever scores canonical views, so a bypass the canonicalizer decoded is
    a model miss on the *decoded* text (train on that); an encoding bypass the
    canonicalizer did not decode is a canonicalizer gap -- training on the raw cipher text
    would teach the model the cipher's surface (it raises FPR on benign encodings), so it
    is not exported (``None``).
    """
    view = att.selected_view or "original"
    if view != "original":
        return scored_view(att.text, view), view
    if "encoding" in classes:
        return None, "original"
    return att.text, "original"


def _span(text: str, payload: str | None) -> dict[str, list[int]]:
    """``{"payload_span": ...}`` when the source prompt stands verbatim in ``text`` (the
    trainer then cuts a long wrapper into windows labelled by whether they hold it)."""
    from haloguard.data.corpus import payload_span

    span = payload_span(text, payload) if payload else None
    return {"payload_span": span} if span else {}


def _rows_for(att: Attempt, src: Prompt | None, attack: Attack, finder: TwinFinder,
              guard: str, round_: int | None, text: str, view: str) -> list[dict[str, Any]]:
    rid = _short(att.attack, att.seed, att.prompt_id)
    pair = f"redteam-p{rid}"
    ov = attack.overlay_for("unsafe")
    prov = _provenance(att, attack, src, guard, round_)
    prov["view"] = view
    harmful = {
        "id": f"redteam-{rid}", "text": text, "label": "unsafe",
        "category": att.category, "subcategory": src.subcategory if src else None,
        "kind": _kind(ov), "pair_id": pair, "lang": att.lang, "overlay": ov,
        "meta": {"provenance": prov, **_span(text, src.text if src else None)},
    }
    rows = [harmful]
    if src is None:
        return rows
    twin, how = finder.find(src, att.seed)
    if twin is None:
        harmful["pair_id"] = None
        return rows
    twin_text = apply_seeded(attack, twin.text, att.seed)
    twin_text = scored_view(twin_text, view) or twin_text
    rows.append({
        "id": f"redteam-{rid}-twin", "text": twin_text, "label": "safe",
        "category": src.category, "subcategory": src.subcategory, "kind": "counterfactual",
        "pair_id": pair, "lang": twin.lang, "overlay": attack.overlay_for("safe"),
        "meta": {"provenance": {**prov, "source_id": twin.id, "source": twin.source,
                                "twin_of": harmful["id"], "twin_match": how,
                                "p_unsafe": None}, **_span(twin_text, twin.text)},
    })
    return rows


def write_records(rows: Sequence[dict[str, Any]], path: str | Path) -> ExportStats:
    """Write rows as JSONL; returns counts."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    return ExportStats(bypasses=sum(r["label"] == "unsafe" for r in rows),
                       twins=sum(r["label"] == "safe" for r in rows), path=str(p))
