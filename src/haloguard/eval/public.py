"""Loaders for published safety benchmarks in their real formats, and for users' files.

Each loader reads rows from a local CSV / JSONL / JSON / parquet file (or a hub dataset
id when ``datasets`` is installed), checks the published columns and returns
:class:`~haloguard.data.records.Record` rows labelled ``unsafe``/``safe``.  A file that
lacks a column raises :class:`SchemaError` naming the column.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from haloguard.data.records import Record


class SchemaError(ValueError):
    """A benchmark file does not have the published columns."""


LOADERS: dict[str, Callable[..., list[Record]]] = {}

#: benchmark label sets the constitution does not map (yet) -> runtime category ids
LOCAL_CATEGORY_MAP: dict[str, str] = {
    # SimpleSafetyTests harm areas
    "suicide, self-harm, and eating disorders": "self_harm_and_suicide",
    "physical harm and violence": "violence", "physical harm": "violence",
    "illegal and highly regulated items": "non_violent_illegal",
    "scams and fraud": "fraud_and_social_engineering", "child abuse": "csam",
    # JailbreakBench categories
    "harassment/discrimination": "harassment_and_bullying", "malware/hacking": "offensive_cyber",
    "economic harm": "fraud_and_social_engineering", "fraud/deception": "fraud_and_social_engineering",
    "disinformation": "disinformation", "sexual/adult content": "sexual_content_general",
    "privacy": "privacy_violations", "expert advice": "regulated_professional_advice",
    "government decision-making": "politically_sensitive",
    # OR-Bench categories
    "deception": "fraud_and_social_engineering", "harassment": "harassment_and_bullying",
    "harmful": "general", "hate": "hate_speech", "illegal": "non_violent_illegal",
    "self-harm": "self_harm_and_suicide", "sexual": "sexual_content_general",
    "unethical": "unethical_acts", "violence": "violence",
    # BeaverTails categories
    "animal_abuse": "animal_cruelty", "child_abuse": "csam",
    "controversial_topics,politics": "politically_sensitive",
    "discrimination,stereotype,injustice": "bias_and_stereotyping",
    "drug_abuse,weapons,banned_substance": "illegal_drugs",
    "financial_crime,property_crime,theft": "property_crime_and_theft",
    "hate_speech,offensive_language": "hate_speech", "misinformation_regarding_ethics,laws_and_safety":
    "disinformation", "non_violent_unethical_behavior": "unethical_acts",
    "privacy_violation": "privacy_violations", "self_harm": "self_harm_and_suicide",
    "sexually_explicit,adult_content": "sexual_content_general",
    "terrorism,organized_crime": "terrorism_and_extremism",
    "violence,aiding_and_abetting,incitement": "violence",
}


def register(name: str) -> Callable[[Callable[..., list[Record]]], Callable[..., list[Record]]]:
    def deco(fn: Callable[..., list[Record]]) -> Callable[..., list[Record]]:
        LOADERS[name] = fn
        return fn
    return deco


def map_category(label: Any, schemes: Iterable[str] = ()) -> str | None:
    """Runtime category for a benchmark label via the constitution, then the local table."""
    if label is None or str(label).strip() == "":
        return None
    text = str(label).strip()
    if schemes:
        from haloguard.constitution import load_constitution

        cons = load_constitution()
        for s in schemes:
            try:
                hit = cons.map_from(s, text)
            except (KeyError, ValueError):
                hit = None
            if hit:
                return hit
    return LOCAL_CATEGORY_MAP.get(text.lower())


# -- reading rows -----------------------------------------------------------------------
def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a CSV/TSV, JSONL, JSON array or parquet file as dicts."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"benchmark file not found: {p}")
    suffix = "".join(p.suffixes[-2:]).lower() if p.suffix == ".gz" else p.suffix.lower()
    if suffix.endswith(".parquet"):
        import pyarrow.parquet as pq

        return pq.read_table(p).to_pylist()
    if suffix.endswith((".csv", ".tsv")):
        with p.open(encoding="utf-8", newline="") as fh:
            return list(csv.DictReader(fh, delimiter="\t" if suffix.endswith(".tsv") else ","))
    text = p.read_text("utf-8")
    if suffix.endswith(".json") and text.lstrip().startswith("["):
        return list(json.loads(text))
    rows = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{p}:{lineno}: bad JSON ({exc.msg})") from None
    return rows


def read_hub(hub: str, config: str | None, split: str | None) -> list[dict[str, Any]]:
    """Rows of a hub dataset (needs the ``datasets`` package and hub access)."""
    try:
        import datasets
    except ImportError as exc:
        raise ImportError(f"loading {hub!r} from the hub needs `pip install datasets`") from exc
    ds = datasets.load_dataset(hub, config, split=split or "test")
    return [dict(r) for r in ds]


def require(rows: list[Mapping[str, Any]], columns: Iterable[str], bench: str) -> None:
    """Raise :class:`SchemaError` naming the first published column the rows lack."""
    if not rows:
        return
    have = set(rows[0].keys())
    for col in columns:
        if col not in have:
            raise SchemaError(f"{bench}: missing column {col!r} (found: {', '.join(sorted(have))})")


def _flag(value: Any) -> bool | None:
    """0/1, true/false, "1.0", "yes" -> bool; empty/None/NaN -> None."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return None if value != value else bool(value)  # NaN check
    s = str(value).strip().lower()
    if s in ("", "nan", "none", "null"):
        return None
    if s in ("1", "1.0", "true", "yes", "unsafe", "harmful"):
        return True
    if s in ("0", "0.0", "false", "no", "safe", "unharmful"):
        return False
    raise ValueError(f"cannot read {value!r} as a 0/1 flag")


def _label(flag: bool) -> str:
    return "unsafe" if flag else "safe"


def load_public(loader: str, path: str | Path | None = None, *, hub: str | None = None,
                hub_config: str | None = None, split: str | None = None,
                **options: Any) -> list[Record]:
    """Load a published benchmark from ``path`` (or the hub) with the named loader."""
    try:
        fn = LOADERS[loader]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(loader, list(LOADERS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise KeyError(f"unknown benchmark loader {loader!r}{hint}") from None
    rows = read_rows(path) if path is not None else read_hub(str(hub), hub_config, split)
    return fn(rows, **options)


def _rec(bench: str, i: int, text: str, label: str, *, rid: Any = None, **kw: Any) -> Record:
    return Record(id=f"{bench}:{rid if rid not in (None, '') else i}", text=text, label=label,
                  source=bench, **kw)


# -- the benchmarks ---------------------------------------------------------------------
@register("toxicchat")
def toxicchat(rows: list[dict[str, Any]], subset: str | None = None) -> list[Record]:
    """ToxicChat (toxicchat0124): ``toxicity`` 1 -> unsafe; ``subset="jailbreaking"``."""
    require(rows, ("conv_id", "user_input", "toxicity", "jailbreaking"), "toxicchat")
    out = []
    for i, r in enumerate(rows):
        jb = bool(_flag(r["jailbreaking"]))
        if subset == "jailbreaking" and not jb:
            continue
        tox = _flag(r["toxicity"])
        if tox is None:
            continue
        out.append(_rec("toxicchat", i, r["user_input"], _label(tox), rid=r["conv_id"],
                        overlay="jailbreak" if jb else "none",
                        meta={"human_annotation": r.get("human_annotation")}))
    return out


OPENAI_FLAGS = ("S", "H", "V", "HR", "SH", "S3", "H2", "V2")


@register("openai_moderation")
def openai_moderation(rows: list[dict[str, Any]]) -> list[Record]:
    """OpenAI Moderation eval: unsafe when any category flag is 1 (missing flags = 0)."""
    require(rows, ("prompt",), "openai_moderation")
    have = set().union(*(r.keys() for r in rows)) if rows else set()
    missing = [f for f in OPENAI_FLAGS if f not in have]
    if missing:
        raise SchemaError(f"openai_moderation: missing column {missing[0]!r}")
    out = []
    for i, r in enumerate(rows):
        flags = [f for f in OPENAI_FLAGS if _flag(r.get(f))]
        out.append(_rec("openai_moderation", i, r["prompt"], _label(bool(flags)),
                        category=map_category(flags[0], ["openai_moderation"]) if flags else None,
                        source_category=",".join(flags) or None))
    return out


@register("aegis1")
def aegis1(rows: list[dict[str, Any]], prompts_only: bool = True) -> list[Record]:
    """Aegis 1.0: majority of annotators' ``labels_0..4`` ("Safe" vs category) decides."""
    require(rows, ("text", "labels_0"), "aegis1")
    out = []
    for i, r in enumerate(rows):
        if prompts_only and r.get("text_type") not in (None, "", "user_message"):
            continue
        labels = [str(r[k]).strip() for k in (f"labels_{j}" for j in range(5))
                  if r.get(k) not in (None, "") and str(r.get(k)).strip().lower() not in ("nan", "none")]
        if not labels:
            continue
        unsafe_votes = [lab for lab in labels if lab.lower() != "safe"]
        unsafe = len(unsafe_votes) > len(labels) / 2
        cat = None
        if unsafe:
            top = Counter(c.strip() for lab in unsafe_votes for c in lab.split(",")).most_common(1)
            cat = top[0][0] if top else None
        out.append(_rec("aegis", i, r["text"], _label(unsafe), rid=r.get("id"),
                        category=map_category(cat, ["aegis2"]), source_category=cat,
                        meta={"votes": f"{len(unsafe_votes)}/{len(labels)}"}))
    return out


@register("aegis2")
def aegis2(rows: list[dict[str, Any]]) -> list[Record]:
    """Aegis 2.0 prompt-level: ``prompt_label`` safe/unsafe; redacted prompts skipped."""
    require(rows, ("prompt", "prompt_label", "violated_categories"), "aegis2")
    out = []
    for i, r in enumerate(rows):
        text = r["prompt"]
        if not text or str(text).strip().upper() == "REDACTED":
            continue
        flag = _flag(r["prompt_label"])
        if flag is None:
            continue
        cats = [c.strip() for c in str(r.get("violated_categories") or "").split(",") if c.strip()]
        out.append(_rec("aegis2", i, text, _label(flag), rid=r.get("id"),
                        category=map_category(cats[0], ["aegis2"]) if flag and cats else None,
                        source_category=",".join(cats) or None))
    return out


@register("simplesafetytests")
def simplesafetytests(rows: list[dict[str, Any]]) -> list[Record]:
    """SimpleSafetyTests: 100 clearly harmful prompts (all unsafe)."""
    require(rows, ("id", "harm_area", "category", "prompts_final"), "simplesafetytests")
    return [_rec("simplesafetytests", i, r["prompts_final"], "unsafe", rid=r["id"],
                 category=map_category(r["harm_area"], ["aegis2"]), source_category=r["harm_area"],
                 meta={"sst_category": r["category"]}) for i, r in enumerate(rows)]


@register("harmbench")
def harmbench(rows: list[dict[str, Any]], functional: str | None = None) -> list[Record]:
    """HarmBench behaviours CSV; contextual rows prefix their ContextString."""
    require(rows, ("Behavior", "FunctionalCategory", "SemanticCategory", "Tags", "ContextString",
                   "BehaviorID"), "harmbench")
    out = []
    for i, r in enumerate(rows):
        if functional and r["FunctionalCategory"] != functional:
            continue
        text = r["Behavior"]
        if r.get("ContextString"):
            text = f"{r['ContextString']}\n\n---\n\n{text}"
        out.append(_rec("harmbench", i, text, "unsafe", rid=r["BehaviorID"],
                        category=map_category(r["SemanticCategory"], ["harmbench"]),
                        source_category=r["SemanticCategory"],
                        meta={"functional": r["FunctionalCategory"]}))
    return out


@register("wildguardtest")
def wildguardtest(rows: list[dict[str, Any]]) -> list[Record]:
    """WildGuardTest: ``prompt_harm_label`` harmful/unharmful (rows without it skipped)."""
    require(rows, ("prompt", "adversarial", "prompt_harm_label"), "wildguardtest")
    out = []
    for i, r in enumerate(rows):
        flag = _flag(r["prompt_harm_label"])
        if flag is None:
            continue
        out.append(_rec("wildguardtest", i, r["prompt"], _label(flag),
                        meta={"adversarial": bool(_flag(r["adversarial"]))}))
    return out


@register("xstest")
def xstest(rows: list[dict[str, Any]]) -> list[Record]:
    """XSTest: 250 safe prompts and 200 unsafe contrasts (``label``)."""
    require(rows, ("id", "prompt", "type", "label"), "xstest")
    return [_rec("xstest", i, r["prompt"], _label(bool(_flag(r["label"]))), rid=r["id"],
                 source_category=r["type"]) for i, r in enumerate(rows)]


@register("orbench")
def orbench(rows: list[dict[str, Any]], variant: str = "hard-1k") -> list[Record]:
    """OR-Bench: ``hard-1k``/``80k`` are benign (over-refusal), ``toxic`` is harmful."""
    require(rows, ("prompt", "category"), "orbench")
    if variant not in ("hard-1k", "80k", "toxic"):
        raise ValueError(f"orbench variant must be hard-1k, 80k or toxic, got {variant!r}")
    label = "unsafe" if variant == "toxic" else "safe"
    return [_rec(f"orbench-{variant}", i, r["prompt"], label,
                 category=map_category(r["category"]) if label == "unsafe" else None,
                 source_category=r["category"]) for i, r in enumerate(rows)]


@register("jailbreakbench")
def jailbreakbench(rows: list[dict[str, Any]], variant: str = "harmful") -> list[Record]:
    """JailbreakBench behaviours (``Goal``); ``variant`` harmful or benign."""
    require(rows, ("Goal", "Target", "Behavior", "Category", "Source"), "jailbreakbench")
    if variant not in ("harmful", "benign"):
        raise ValueError(f"jailbreakbench variant must be harmful or benign, got {variant!r}")
    label = "unsafe" if variant == "harmful" else "safe"
    return [_rec(f"jbb-{variant}", i, r["Goal"], label, rid=r.get("Index"),
                 category=map_category(r["Category"]) if label == "unsafe" else None,
                 source_category=r["Category"], meta={"behavior": r["Behavior"]})
            for i, r in enumerate(rows)]


@register("polyguardprompts")
def polyguardprompts(rows: list[dict[str, Any]]) -> list[Record]:
    """PolyGuardPrompts: ``prompt_harm_label`` harmful/unharmful, per ``language``."""
    require(rows, ("prompt", "prompt_harm_label", "language"), "polyguardprompts")
    out = []
    for i, r in enumerate(rows):
        flag = _flag(r["prompt_harm_label"])
        if flag is None:
            continue
        out.append(_rec("polyguardprompts", i, r["prompt"], _label(flag), lang=r["language"] or "und"))
    return out


@register("beavertails")
def beavertails(rows: list[dict[str, Any]], with_response: bool = False) -> list[Record]:
    """BeaverTails: ``is_safe`` judges the QA pair; category is a dict of 14 flags."""
    require(rows, ("prompt", "response", "category", "is_safe"), "beavertails")
    out = []
    for i, r in enumerate(rows):
        cats = r["category"]
        if isinstance(cats, str):
            cats = json.loads(cats) if cats.strip() else {}
        on = [k for k, v in (cats or {}).items() if _flag(v)]
        unsafe = not _flag(r["is_safe"])
        kw: dict[str, Any] = {"category": map_category(on[0]) if unsafe and on else None,
                              "source_category": ",".join(on) or None}
        if with_response:
            msgs = ({"role": "user", "content": r["prompt"]},
                    {"role": "assistant", "content": r["response"]})
            out.append(Record(id=f"beavertails:{i}", messages=msgs, label=_label(unsafe),
                              source="beavertails", **kw))
        else:
            out.append(_rec("beavertails", i, r["prompt"], _label(unsafe), **kw))
    return out


# -- users' own labelled files ----------------------------------------------------------
_KNOWN = {"id", "text", "messages", "label", "category", "lang"}


def _user_label(value: Any, where: str) -> str:
    try:
        flag = _flag(value)
    except ValueError:
        flag = None
    if flag is None:
        raise ValueError(f"{where}: label must be safe/unsafe or 0/1, got {value!r}")
    return _label(flag)


def load_user_file(path: str | Path, source: str | None = None) -> list[Record]:
    """A user's labelled JSONL/CSV/parquet: ``text`` or ``messages``, ``label`` safe/unsafe
    or 0/1, optional ``category``, ``lang`` and ``id``; other fields are kept in ``meta``."""
    rows = read_rows(path)
    source = source or Path(path).stem
    out = []
    for i, r in enumerate(rows):
        where = f"{path}: row {i + 1}"
        if "label" not in r:
            raise SchemaError(f"{where}: missing column 'label'")
        text, msgs = r.get("text"), r.get("messages")
        if isinstance(msgs, str) and msgs.strip().startswith("["):
            msgs = json.loads(msgs)
        if not text and not msgs:
            raise SchemaError(f"{where}: missing column 'text' (or 'messages')")
        rid = r.get("id")
        out.append(Record(
            id=str(rid) if rid not in (None, "") else f"{source}:{i}",
            text=text if text else None, messages=tuple(msgs) if not text else None,
            label=_user_label(r["label"], where), category=r.get("category") or None,
            lang=r.get("lang") or "und", source=source,
            meta={k: v for k, v in r.items() if k not in _KNOWN},
        ))
    return out
