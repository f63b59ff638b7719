"""Failure analysis: wrong predictions grouped by constitution category and kind of error.

Kinds (issue 4, seed 001):

* ``keyword false positive`` -- a benign prompt flagged while it contains sensitive
  vocabulary (the guard read words, not intent);
* ``false positive`` -- any other benign prompt flagged;
* ``obfuscation miss`` -- a harmful prompt missed whose canonical views differ from the
  original (encoded, leetspeak, homoglyphs...) or that looks encoded;
* ``language miss`` -- a harmful non-English prompt missed;
* ``intent miss`` -- any other harmful prompt missed (plain-language harmful intent);
* ``error`` -- the guard failed on the item (counted as wrong).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

KINDS = ("intent miss", "obfuscation miss", "language miss", "keyword false positive",
         "false positive", "error")

#: sensitive vocabulary whose presence makes a false positive a "keyword" one
SENSITIVE = re.compile(
    r"\b(kill\w*|murder\w*|bomb\w*|explosive\w*|weapon\w*|gun\w*|shoot\w*|knife|stab\w*|poison\w*|"
    r"drug\w*|overdos\w*|cocaine|heroin|meth\w*|fentanyl|suicid\w*|self[- ]harm|die|dying|death|"
    r"hack\w*|malware|virus\w*|exploit\w*|phish\w*|steal\w*|theft|fraud\w*|scam\w*|terror\w*|"
    r"attack\w*|hate|racis\w*|sex\w*|nude|porn\w*|abuse\w*|violen\w*|blood|torture\w*|"
    r"ignore (all )?(previous|prior) instructions|jailbreak\w*|system prompt|password\w*)\b",
    re.IGNORECASE,
)
_ENCODED = re.compile(r"[A-Za-z0-9+/]{24,}={0,2}|(?:[0-9a-fA-F]{2}\s?){12,}|(?:[.-]{1,5}[ /]){8,}")


@dataclass(frozen=True)
class Failure:
    id: str
    set: str
    guard: str
    label: str
    p_unsafe: float | None
    kind: str
    category: str
    text: str
    lang: str


def _obfuscated(text: str) -> bool:
    if _ENCODED.search(text):
        return True
    try:
        from haloguard.canonicalize import canonicalize
    except ImportError:  # pragma: no cover
        return False
    return any(v.name != "original" and v.text.strip() != text.strip() for v in canonicalize(text))


def classify_failure(row: Mapping[str, Any], text: str, threshold: float) -> str | None:
    """The kind of error of one prediction row, or None when it is right."""
    if row.get("error"):
        return "error"
    p = row.get("p_unsafe")
    pred = p is not None and p >= threshold
    unsafe = row.get("label") == "unsafe"
    if pred == unsafe:
        return None
    if not unsafe:
        return "keyword false positive" if SENSITIVE.search(text or "") else "false positive"
    if _obfuscated(text or ""):
        return "obfuscation miss"
    if (row.get("lang") or "en") not in ("en", "und"):
        return "language miss"
    return "intent miss"


def find_failures(rows: Iterable[Mapping[str, Any]], texts: Mapping[str, str],
                  threshold: float) -> list[Failure]:
    """Every wrong prediction among ``rows`` with its kind and category."""
    out = []
    for r in rows:
        text = texts.get(r["id"], "")
        kind = classify_failure(r, text, threshold)
        if kind is None:
            continue
        if r.get("label") == "unsafe":
            cat = r.get("gold_category") or "unknown"
        else:
            cat = r.get("top_category") or r.get("category") or "none"
            cat = cat if cat and cat != "none" else "unknown"
        out.append(Failure(r["id"], r["set"], r["guard"], r["label"], r.get("p_unsafe"), kind,
                           cat, text, r.get("lang") or "und"))
    return out


def summarise(failures: Iterable[Failure], examples: int = 3) -> dict[str, Any]:
    """Counts by kind, by category × kind, by set × kind, and a few examples per kind."""
    fs = list(failures)
    by_kind = Counter(f.kind for f in fs)
    by_cat: dict[str, Counter[str]] = defaultdict(Counter)
    by_set: dict[str, Counter[str]] = defaultdict(Counter)
    ex: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for f in fs:
        by_cat[f.category][f.kind] += 1
        by_set[f.set][f.kind] += 1
        if len(ex[f.kind]) < examples:
            ex[f.kind].append({"id": f.id, "set": f.set, "p_unsafe": f.p_unsafe,
                               "text": f.text[:200]})
    order = sorted(by_cat, key=lambda c: -sum(by_cat[c].values()))
    return {
        "total": len(fs),
        "by_kind": {k: by_kind.get(k, 0) for k in KINDS},
        "by_category": {c: dict(by_cat[c]) for c in order},
        "by_set": {s: dict(c) for s, c in sorted(by_set.items())},
        "examples": dict(ex),
    }


def summary_markdown(summary: Mapping[str, Any], guard: str, top: int = 15) -> str:
    """A Markdown table: category rows × error-kind columns (+ examples)."""
    kinds = [k for k in KINDS if summary["by_kind"].get(k)]
    if not kinds:
        return f"No failures for `{guard}`.\n"
    lines = [f"Failures of `{guard}`: {summary['total']} "
             "(" + ", ".join(f"{k}: {summary['by_kind'][k]}" for k in kinds) + ").", "",
             "| Category | " + " | ".join(kinds) + " | Total |",
             "|---|" + "---:|" * (len(kinds) + 1)]
    for cat, counts in list(summary["by_category"].items())[:top]:
        cells = [str(counts.get(k, 0)) for k in kinds]
        lines.append(f"| {cat} | " + " | ".join(cells) + f" | {sum(counts.values())} |")
    lines.append("")
    for kind, exs in summary["examples"].items():
        lines.append(f"*{kind}* e.g.: " + "; ".join(
            f"`{e['set']}` “{_short(e['text'])}” (p={_fmt_p(e['p_unsafe'])})" for e in exs))
        lines.append("")
    return "\n".join(lines)


def _short(text: str, n: int = 90) -> str:
    t = " ".join(str(text).split()).replace("|", "/").replace("`", "'")
    return t if len(t) <= n else t[: n - 1] + "…"


def _fmt_p(p: float | None) -> str:
    return "err" if p is None else f"{p:.2f}"
