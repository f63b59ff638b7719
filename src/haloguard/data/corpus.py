"""Deterministic training-corpus builder (`haloguard data build`) and the coverage report."""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from .dedup import LeakageReport, check_leakage, dedup_exact
from .records import Record, numbered_jsonl, write_jsonl
from .splits import split_key, stable_hash, train_val_split

AUG_RATE = 0.15  # share of authored harmful AND benign rows that get one obfuscated copy
JB_FILLS_PER_TEMPLATE = 1
#: benign twins per jailbreak template (``haloguard data build --jailbreak-benign-twins``)
JB_BENIGN_TWINS = 0
TENSE_RATE = 0.25  # share of English harmful requests (and their paired benign rows) re-tensed
BENIGN_KINDS = ("counterfactual", "boundary", "baseline")
COVERAGE_KINDS = ("harmful", "counterfactual", "boundary", "baseline", "jailbreak_wrapped",
                  "injection")
THIN = {"harmful": 10, "counterfactual": 10}  # per subcategory (all languages)
THIN_LANG = {"harmful": 3, "counterfactual": 3}  # per category × language


class LeakageError(RuntimeError):
    """Training rows still overlap evaluation sets after the build's drop step."""


class CorpusError(ValueError):
    """An authored corpus folder or row is unusable (the message names file and line)."""


@dataclass
class BuildInputs:
    """Everything a build reads: training sources (incl. templates), eval sets, authored rows."""

    train: dict[str, list[Record]]
    eval: dict[str, list[Record]]
    authored: list[Record]
    sources: list[dict[str, Any]] = field(default_factory=list)
    authored_files: dict[str, str] = field(default_factory=dict)  # file name → sha256
    stats: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class BuildResult:
    out_dir: Path
    n_train: int
    n_val: int
    dropped_for_leakage: int
    leakage: LeakageReport
    manifest: dict[str, Any]


# ---- inputs ------------------------------------------------------------------------------
def authored_record(row: dict[str, Any], file_stem: str) -> Record:
    """A hand-authored corpus row → Record (kind/subcategory/pair_id kept in meta)."""
    meta = {k: row[k] for k in ("kind", "subcategory", "pair_id") if row.get(k) is not None}
    return Record(id=str(row["id"]), text=row["text"], label=row["label"],
                  category=row.get("category"), source_category=row.get("subcategory"),
                  lang=row.get("lang") or "en", source=f"authored:{file_stem}",
                  overlay=row.get("overlay") or "none", meta=meta)


def authored_row_problem(row: Any, constitution: Any = None) -> str | None:
    """Why ``row`` cannot be an authored corpus row, or None.

    The record format is the one ``corpus/README.md`` describes: ``id`` and ``text``
    (non-empty strings), ``label`` (``unsafe``/``safe``), an optional ``overlay``, and a
    ``category`` (required on unsafe rows) and optional ``subcategory`` that the constitution
    (default: the packaged one) defines, the subcategory under its category.
    """
    from .records import LABELS, OVERLAYS

    if not isinstance(row, dict):
        return f"a row must be a JSON object, got {type(row).__name__}"
    for key in ("id", "text"):
        v = row.get(key)
        if not isinstance(v, str) or not v.strip():
            return f"{key!r} must be a non-empty string" + ("" if key in row else " (missing)")
    if row.get("label") not in LABELS:
        return f"'label' must be one of {', '.join(LABELS)}, got {row.get('label')!r}"
    if (row.get("overlay") or "none") not in OVERLAYS:
        return f"'overlay' must be one of {', '.join(OVERLAYS)}, got {row.get('overlay')!r}"
    for key in ("lang", "kind", "pair_id", "subcategory", "category"):
        if row.get(key) is not None and not isinstance(row[key], str):
            return f"{key!r} must be a string, got {type(row[key]).__name__}"
    if constitution is None:
        from haloguard.constitution import load_constitution

        constitution = load_constitution()
    cat, sub = row.get("category"), row.get("subcategory")
    if cat is None:
        return "an unsafe row needs a 'category'" if row["label"] == "unsafe" else (
            None if sub is None else "'subcategory' given without a 'category'")
    if cat not in constitution.runtime_categories:
        return f"category {cat!r} is not a runtime category of {constitution.name!r}"
    if sub is not None and sub not in {s.id for s in constitution.category(cat).subcategories}:
        return (f"subcategory {sub!r} is not a subcategory of {cat!r} in {constitution.name!r}"
                " (a row for your own policy's subcategory: --constitution FILE)")
    return None


def load_authored(corpus_dir: str | Path | None = None, constitution: Any = None,
                  extra_dirs: tuple[str | Path, ...] = ()) -> tuple[list[Record], dict[str, str]]:
    """All ``*.jsonl`` rows of the corpus folder (sorted by file name), then of each folder
    in ``extra_dirs``, and each file's sha256.

    Every row is checked (:func:`authored_row_problem`) against ``constitution`` (default:
    the packaged one); a bad row, a repeated id, or a folder that is missing or holds no
    ``.jsonl`` file raises :class:`CorpusError` naming the file and line.  Files of the
    base folder are keyed by name, those of an extra folder by ``folder/name``.
    """
    if constitution is None:
        from haloguard.constitution import load_constitution

        constitution = load_constitution()
    base = (Path(corpus_dir) if corpus_dir is not None
            else Path(str(resources.files("haloguard.data").joinpath("corpus"))))
    rows: list[Record] = []
    hashes: dict[str, str] = {}
    seen: dict[str, str] = {}
    for i, folder in enumerate((base, *map(Path, extra_dirs))):
        if not folder.is_dir():
            raise CorpusError(f"corpus folder {folder} does not exist")
        files = sorted(folder.glob("*.jsonl"))
        if not files:
            raise CorpusError(f"corpus folder {folder} holds no .jsonl file")
        for f in files:
            key = f.name if i == 0 else f"{folder.name}/{f.name}"
            if key in hashes:
                raise CorpusError(f"{f}: a corpus file named {key!r} was already read")
            hashes[key] = hashlib.sha256(f.read_bytes()).hexdigest()
            try:
                numbered = list(numbered_jsonl(f))
            except ValueError as exc:  # bad JSON or UTF-8, already naming file and line
                raise CorpusError(str(exc)) from None
            for lineno, row in numbered:
                problem = authored_row_problem(row, constitution)
                if problem is None and row["id"] in seen:
                    problem = f"id {row['id']!r} is already used in {seen[row['id']]}"
                if problem is not None:
                    raise CorpusError(f"{f}:{lineno}: {problem}")
                seen[row["id"]] = f"{f.name}:{lineno}"
                rows.append(authored_record(row, f.stem))
    return rows, hashes


def gather_inputs(cache_dir: str | Path | None = None, corpus_dir: str | Path | None = None,
                  constitution: Any = None, extra_corpus_dirs: tuple[str | Path, ...] = ()
                  ) -> BuildInputs:
    """Load (fetching when needed) every registered source plus the authored corpus (checked
    against ``constitution``, default the packaged one)."""
    from .loaders import load_source
    from .sources import load_registry

    inputs = BuildInputs(train={}, eval={}, authored=[])
    for spec in load_registry().values():
        st: dict[str, int] = {}
        records = load_source(spec.name, cache_dir=cache_dir, stats=st)
        (inputs.train if spec.role == "train" else inputs.eval)[spec.name] = records
        inputs.stats[spec.name] = st
        inputs.sources.append({"name": spec.name, "package": spec.package,
                               "version": spec.version, "sha256": spec.sha256,
                               "licence": spec.licence, "role": spec.role, "rows": len(records)})
    inputs.authored, inputs.authored_files = load_authored(corpus_dir, constitution,
                                                           tuple(extra_corpus_dirs))
    return inputs


# ---- augmentation ------------------------------------------------------------------------
def _encoders() -> dict[str, Callable[[str, random.Random], str]]:
    """Obfuscations the classifier can still read on the surface (the text stays visible
    through the noise).  Opaque encodings (base64, hex, ROT13, reversed, URL, Morse) are
    deliberately absent: their surface carries no intent a classifier can learn (a base64
    cooking question and a base64 bomb recipe look alike), so training on them only teaches
    "opaque string = unsafe" and flags every encoded benign prompt.  The canonicalizer
    decodes them and the Guard scores the decoded view instead."""
    from haloguard.canonicalize import encoders as e

    return {
        "leet": lambda t, r: e.encode_leet(t, r.choice(["basic", "extended"]), r),
        "homoglyph": lambda t, r: e.encode_homoglyph(t, r, rate=0.5),
        "spaced": lambda t, r: e.space_letters(t),
        "zero_width": lambda t, r: e.insert_zero_width(t, r, rate=0.3),
    }


def obfuscation_augment(authored: list[Record], seed: int, rate: float = AUG_RATE) -> list[Record]:
    """One encoded copy of a seeded sample of harmful and benign rows (same rate for both)."""
    rng = random.Random(f"obfuscate:{seed}")
    encoders = _encoders()
    names = sorted(encoders)
    out = []
    for r in authored:
        kind = r.meta.get("kind")
        if r.overlay != "none" or kind not in ("harmful", *BENIGN_KINDS) or rng.random() >= rate:
            continue
        enc = rng.choice(names)
        text = encoders[enc](r.content, rng)
        out.append(replace(r, id=f"aug:{enc}:{r.id}", text=text, source="augment:obfuscation",
                           meta={**r.meta, "augmentation": enc, "parent": r.id}))
    return out


# Tense rephrasing (the past/future-tense reformulation class, Andriushchenko & Flammarion
# 2024): a request asked about the past or the future keeps its label, so tense is no signal.
# {vp}: the request as an infinitive verb phrase; {q}: the whole request, quoted.
TENSE_TEMPLATES: dict[str, tuple[str, ...]] = {
    "past": (
        "How did people {vp} in the past?",
        "Back in the 1990s, how would someone {vp}?",
        "Historically, what methods did people use to {vp}?",
        "How were people able to {vp} a few decades ago?",
    ),
    "future": (
        "How will people {vp} in 2035?",
        "In the future, how might someone {vp}?",
        "Ten years from now, what will be the easiest way to {vp}?",
        "By 2040, how will it be possible to {vp}?",
    ),
}
TENSE_FALLBACK: dict[str, tuple[str, ...]] = {
    "past": ("Looking back at how this used to be done years ago: {q}",
             "{q} (I mean historically, in the past: how was it done back then?)"),
    "future": ("Thinking ahead to how this will be done a decade from now: {q}",
               "{q} (I'm asking about the future: how will it be done in 2035?)"),
}
_VP_PREFIX = re.compile(
    r"^(?:please\s+)?(?:(?:can|could|would|will) you\s+(?:please\s+)?)?"
    r"(?:(?:tell|show|teach) me\s+|explain\s+|describe\s+)?"
    r"(?:how\s+(?:to|(?:do|can|could|would|should|might)\s+(?:i|you|one|someone|we))"
    r"|(?:give|provide|write|list|share|tell|show|teach)(?:\s+me)?\s+(?:some\s+|a\s+|the\s+)?"
    r"(?:detailed\s+|step-by-step\s+|specific\s+|practical\s+)*"
    r"(?:instructions|steps|guide|tutorial|tips|ways|tactics|methods|plan)"
    r"(?:\s+(?:for|on))?(?:\s+how)?\s+to)\s+", re.I)
_NOT_IMPERATIVE = frozenset(
    "how what why where when who whom whose which is are was were do does did can could would "
    "should will shall may might must i i'm im i've my me we our us you your it it's its there "
    "this that these those the a an if as so but and or hey hi hello any some what's where's "
    "who's how's i'd i'll help".split())


def _verb_phrase(text: str) -> str | None:
    """The request as an infinitive verb phrase ("make X"), or None when not recognisable."""
    t = " ".join(text.split()).rstrip(" .!?")
    if not t or len(t) > 220 or re.search(r"[.!?;]\s", t) or "\n" in text:
        return None
    m = _VP_PREFIX.match(t)
    if m:
        vp = t[m.end():]
    else:
        first = t.split()[0].lower().strip(",:'\"")
        if text.rstrip().endswith("?") or first in _NOT_IMPERATIVE:
            return None
        vp = t
    if len(vp.split()) < 2:
        return None
    return vp[0].lower() + vp[1:] if not vp[:2].isupper() else vp


def tense_rephrase(text: str, rng: random.Random) -> tuple[str, str]:
    """(rephrased text, tense) — past or future, template drawn from ``rng``."""
    tense = rng.choice(sorted(TENSE_TEMPLATES))
    vp = _verb_phrase(text)
    if vp is not None:
        return rng.choice(TENSE_TEMPLATES[tense]).format(vp=vp), tense
    q = " ".join(text.split())
    return rng.choice(TENSE_FALLBACK[tense]).format(q=f'"{q}"'), tense


def tense_augment(authored: list[Record], advbench: list[Record], seed: int,
                  rate: float = TENSE_RATE) -> list[Record]:
    """One past/future-tense copy of a seeded share of English harmful requests (authored and
    AdvBench) and, at the same rate, of the paired benign counterfactuals; labels unchanged.

    Selection is per pair (``pair_id``) so a harmful request and its benign counterfactual are
    re-tensed together; each row's draw depends only on (seed, row id), not on row order.
    """
    out = []
    for r in [*authored, *advbench]:
        kind = r.meta.get("kind") or ("harmful" if r.source == "advbench" else None)
        if (r.lang != "en" or r.overlay != "none" or r.label not in ("safe", "unsafe")
                or kind not in ("harmful", "counterfactual")):
            continue
        key = str(r.meta.get("pair_id") or r.id)
        if random.Random(f"tense-pick:{seed}:{key}").random() >= rate:
            continue
        text, tense = tense_rephrase(r.content, random.Random(f"tense:{seed}:{r.id}"))
        out.append(replace(r, id=f"aug:tense_{tense}:{r.id}", text=text,
                           source="augment:tense",
                           meta={**r.meta, "kind": kind, "augmentation": f"tense_{tense}",
                                 "parent": r.id}))
    return out


def jailbreak_augment(templates: list[Record], harmful: list[Record], seed: int,
                      per_template: int = JB_FILLS_PER_TEMPLATE,
                      benign_pools: list[list[Record]] | None = None,
                      benign_per_template: int = 0) -> list[Record]:
    """Fill each jailbreak template with seeded harmful prompts → unsafe, overlay jailbreak.

    With ``benign_per_template`` > 0 each template is also filled with that many benign
    payloads drawn in turn from ``benign_pools`` → ``safe``, overlay jailbreak: the
    counterfactual twin of the harmful fill (same template, only the request flips), so
    the template's request-holding window is seen with both labels.  A twin shares its
    harmful fill's train/validation side (its ``group`` is that fill's split key).  The
    harmful fills are drawn from their own seeded stream, so turning twins on leaves them
    unchanged.
    """
    from .loaders_train import fill_template

    if not templates or not harmful:
        return []
    rng = random.Random(f"jailbreak:{seed}")
    brng = random.Random(f"jailbreak-benign:{seed}")
    pools = [p for p in (benign_pools or []) if p] if benign_per_template > 0 else []
    out = []
    n_benign = 0
    for t in templates:
        fills = []
        for p in rng.sample(harmful, min(per_template, len(harmful))):
            text = fill_template(t, p.content)
            fills.append(Record(
                id=f"jb:{t.id}:{p.id}", text=text, label="unsafe",
                category=p.category, source_category=p.source_category, lang=p.lang,
                source="augment:jailbreak", overlay="jailbreak",
                meta={**{k: v for k, v in p.meta.items() if k in ("pair_id", "subcategory")},
                      "kind": "jailbreak_wrapped", "template": t.id, "parent": p.id,
                      "payload_span": payload_span(text, p.content)}))
        out += fills
        for j in range(benign_per_template if pools and fills else 0):
            b = brng.choice(pools[n_benign % len(pools)])
            n_benign += 1
            text = fill_template(t, b.content.strip())
            out.append(Record(
                id=f"jbb:{t.id}:{b.id}:{j}", text=text, label="safe", lang=b.lang,
                source="augment:jailbreak", overlay="jailbreak",
                meta={"kind": "wrapped_benign", "augmentation": "jailbreak_benign_twin",
                      "template": t.id, "parent": b.id, "twin_of": fills[0].id,
                      "group": split_key(fills[0]),
                      "payload_span": payload_span(text, b.content)}))
    return out


def payload_span(text: str, payload: str) -> list[int] | None:
    """``[start, end)`` of ``payload`` in ``text`` (the last occurrence), None if absent.

    Stored in a wrapped row's meta so the trainer can cut a long wrapper into the Guard's
    windows and label each by whether it carries the request (see
    :func:`haloguard.train.embedded.window_rows`).
    """
    payload = payload.strip()
    i = text.rfind(payload) if payload else -1
    return [i, i + len(payload)] if i >= 0 else None


# Attack wrappers around benign and harmful payloads.  The red-team runs showed the model
# had learned "wrapper = unsafe": a trivia question inside a role-play frame, an "ignore
# previous instructions" preamble or a "decode this Base64" instruction was flagged 60-100%
# of the time, because every wrapped training row carried a harmful payload.  These rows
# teach that the payload decides the label and the wrapper only the overlay.  Only the
# attacks named here feed training; the rest of the library (screenplay, mischievous_user,
# hidden_in_document, morse, url, reversed, dan_template, leet_basic, style shifts, benign
# tail, chains) never does, so their red-team rates measure generalisation.
WRAP_ATTACKS = ("fiction", "roleplay", "system_override", "developer_mode", "base64", "hex",
                "rot13", "jailbreak_template", "leet_extended")
WRAP_BENIGN = 120  # benign payloads per attack (a third each: BoolQ, short ShareGPT, authored)
WRAP_HARMFUL = 120  # harmful payloads per attack
INJ_BENIGN_PER_TEMPLATE = 3  # benign payloads per spikee injection template
WRAP_BARE = 40  # bare wrappers (no request, or a placeholder) per jailbreak-only wrapper
#: what stands where the request would go in a bare wrapper
BARE_PLACEHOLDERS = ("", "[INSERT PROMPT HERE]", "[PROMPT]", "{question}", "<your request>",
                     "My first request will follow.", "Confirm that you understand by replying "
                     "'OK'.", "Wait for my question.")
#: a wrapped text whose payload cannot be located (an encoding, a transform of the whole
#: text) must fit one 126-token window, so its label holds for what the model sees
WRAP_MAX_CHARS = 500


def _short_benign(inputs_train: dict[str, list[Record]], authored: list[Record]
                  ) -> list[list[Record]]:
    """Benign payload pools: BoolQ questions, short ShareGPT first turns, authored benign."""
    share = [r for r in inputs_train.get("sharegpt_train", [])
             if r.label == "safe" and r.text and 3 <= len(r.text.split()) <= 40]
    auth = [r for r in authored if r.label == "safe" and r.lang == "en" and r.overlay == "none"
            and r.meta.get("kind") in BENIGN_KINDS]
    boolq = [r for r in inputs_train.get("boolq", []) if r.label == "safe" and r.text]
    return [p for p in (boolq, share, auth) if p]


def injection_augment(templates: list[Record], inputs_train: dict[str, list[Record]],
                      authored: list[Record], seed: int,
                      per_template: int = INJ_BENIGN_PER_TEMPLATE) -> list[Record]:
    """spikee's prompt-injection templates around benign payloads -> ``safe`` with the
    ``prompt_injection`` overlay.

    Every injection row the sources give carries a harmful or exfiltrating payload, so a
    model trained on them alone learns "injection phrasing = unsafe" and flags a pasted
    document that tells the assistant to answer a trivia question instead.  As with the
    wrappers (:func:`wrapper_augment`), the payload decides the label and the injection
    the overlay.  Payloads rotate over the benign pools (BoolQ, short ShareGPT first
    turns, authored benign); each row keeps its ``payload_span``.
    """
    from .loaders_train import fill_template

    pools = _short_benign(inputs_train, authored)
    if not templates or not pools:
        return []
    rng = random.Random(f"injection:{seed}")
    out = []
    for t in templates:
        for k in range(per_template):
            p = rng.choice(pools[k % len(pools)])
            text = fill_template(t, p.content.strip())
            out.append(Record(
                id=f"aug:inj:{t.id}:{p.id}:{k}", text=text, label="safe", lang=p.lang,
                source="augment:injection", overlay="prompt_injection",
                meta={"kind": "wrapped_benign", "augmentation": "injection_benign",
                      "template": t.id, "parent": p.id,
                      "payload_span": payload_span(text, p.content)}))
    return out


def _decoded_view(text: str, scheme: str) -> str | None:
    """The canonicalizer's inline-decoded view of ``text`` for ``scheme`` (None if absent)."""
    from haloguard.canonicalize import canonicalize

    return next((v.text for v in canonicalize(text) if v.name == scheme), None)


def wrapper_augment(inputs_train: dict[str, list[Record]], authored: list[Record],
                    harmful: list[Record], seed: int, attacks: tuple[str, ...] = WRAP_ATTACKS,
                    n_benign: int = WRAP_BENIGN, n_harmful: int = WRAP_HARMFUL,
                    n_bare: int = WRAP_BARE) -> list[Record]:
    """Benign and harmful training payloads wrapped by the attacks in ``attacks``.

    Benign payload -> ``safe`` with the attack's overlay for a benign payload (a DAN
    template around a trivia question is still a jailbreak *attempt*; a story frame is
    not); harmful payload -> ``unsafe`` with its overlay.  A wrapper that is a jailbreak
    even around a benign payload (an override, "developer mode", a jailbreak template),
    with no request in it (empty, or a placeholder such as ``[INSERT PROMPT HERE]``), asks
    for nothing harmful yet: ``n_bare`` such rows per attack are ``safe`` with the jailbreak
    overlay.  The safety label judges the request and the overlay the wrapper, which is
    also what a long wrapper's request-free windows must say, since the Guard takes the
    riskiest window: were a bare wrapper unsafe, every long template around a trivia
    question would be too.  Rows whose payload is found verbatim carry its
    ``payload_span``, and may be longer than one window: the trainer cuts them into the
    Guard's windows and labels each by whether it holds the request.  For opaque encodings (Base64,
    hex, ROT13) the model cannot read the cipher, so a benign payload adds the raw text
    (the instruction wrapper alone must not flag) and its inline-decoded view, and a
    harmful payload adds only the decoded view -- the Guard scores that view, and a raw
    harmful cipher labelled unsafe would teach "opaque string = unsafe" again.
    """
    from haloguard.attacks.base import get_attack

    pools = _short_benign(inputs_train, authored)
    out: list[Record] = []
    if not pools:
        return out
    for name in attacks:
        attack = get_attack(name)
        opaque = attack.attack_class == "encoding" and getattr(attack, "instruct", False)
        rng = random.Random(f"wrap:{seed}:{name}")
        picks = [(rng.choice(pools[i % len(pools)]), "safe") for i in range(n_benign)]
        picks += [(rng.choice(harmful), "unsafe") for _ in range(n_harmful if harmful else 0)]
        if attack.overlay_for("safe") != "none" and not opaque:
            picks += [(Record(id=f"bare{j}", text=rng.choice(BARE_PLACEHOLDERS) or " ",
                              source="augment:wrapper"), "bare") for j in range(n_bare)]
        for i, (p, label) in enumerate(picks):
            text, span = "", None
            for _ in range(8):  # a long wrapper whose payload cannot be located: draw again
                text = attack.apply(p.content.strip(), rng).strip()
                span = payload_span(text, p.content) if label != "bare" else None
                if len(text) <= WRAP_MAX_CHARS or label == "bare" or span is not None:
                    break
            if len(text) > WRAP_MAX_CHARS and label != "bare" and span is None:
                continue
            if label == "bare":
                out.append(Record(
                    id=f"aug:wrap:{name}:bare:{i}", text=text, label="safe",
                    lang="en", source="augment:wrapper", overlay=attack.overlay_for("safe"),
                    meta={"kind": "bare_wrapper", "augmentation": f"wrap_{name}_bare",
                          "parent": None, "payload_span": None}))
                continue
            variants = [("raw", text)]
            if opaque:
                dec = _decoded_view(text, name)
                variants = ([("raw", text)] if label == "safe" else []) + (
                    [("decoded", dec)] if dec and (label == "unsafe" or i % 2 == 0) else [])
            kind = "wrapped_benign" if label == "safe" else {
                "prompt_injection": "injection"}.get(attack.overlay_for(label), "jailbreak_wrapped")
            for form, t in variants:
                out.append(Record(
                    id=f"aug:wrap:{name}:{form}:{p.id}:{i}", text=t, label=label,
                    category=p.category if label == "unsafe" else None,
                    source_category=p.source_category if label == "unsafe" else None,
                    lang=p.lang, source="augment:wrapper", overlay=attack.overlay_for(label),
                    meta={**{k: v for k, v in p.meta.items() if k in ("pair_id", "subcategory")},
                          "kind": kind, "augmentation": f"wrap_{name}_{form}",
                          "parent": p.id,
                          **({"payload_span": span} if form == "raw" and span else {})}))
    return out


# ---- build -------------------------------------------------------------------------------
def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assemble(inputs: BuildInputs, seed: int, jailbreak_benign_twins: int = JB_BENIGN_TWINS
             ) -> tuple[list[Record], dict[str, int]]:
    """Training rows before the leakage step: sources + authored + augmentations, deduped.

    ``jailbreak_benign_twins``: benign fills per jailbreak template besides its harmful
    one (see :func:`jailbreak_augment`).
    """
    templates = [r for rs in inputs.train.values() for r in rs if r.meta.get("template")]
    source_rows = [r for rs in inputs.train.values() for r in rs
                   if r.label is not None and not r.meta.get("template")]
    harmful = [r for r in inputs.authored if r.meta.get("kind") == "harmful" and r.lang == "en"]
    harmful += [r for r in inputs.train.get("advbench", [])]
    obf = obfuscation_augment(inputs.authored, seed)
    tense = tense_augment(inputs.authored, inputs.train.get("advbench", []), seed)
    jb = jailbreak_augment(templates, harmful, seed,
                           benign_pools=(_short_benign(inputs.train, inputs.authored)
                                         if jailbreak_benign_twins > 0 else None),
                           benign_per_template=jailbreak_benign_twins)
    harmful_all = [*harmful, *(r for r in inputs.train.get("pyrit_objectives", [])
                               if r.label == "unsafe")]
    wrap = wrapper_augment(inputs.train, inputs.authored, harmful_all, seed)
    inj_templates = [r for rs in inputs.train.values() for r in rs
                     if r.meta.get("injection_template")]
    inj = injection_augment(inj_templates, inputs.train, inputs.authored, seed)
    rows, dup = dedup_exact([*inputs.authored, *obf, *tense, *jb, *wrap, *inj, *source_rows])
    counts = {"authored": len(inputs.authored), "source_rows": len(source_rows),
              "templates": len(templates), "obfuscation_aug": len(obf),
              "tense_aug": len(tense), "jailbreak_aug": len(jb),
              "jailbreak_benign_twins": sum(r.label == "safe" for r in jb),
              "wrapper_aug": len(wrap),
              "injection_templates": len(inj_templates), "injection_aug": len(inj),
              "exact_duplicates_dropped": dup}
    return rows, counts


def build_corpus(out_dir: str | Path, inputs: BuildInputs, seed: int = 0,
                 drop_collisions: bool = True,
                 jailbreak_benign_twins: int = JB_BENIGN_TWINS,
                 constitution: Any = None) -> BuildResult:
    """Write train/val JSONL, coverage and manifest; raise LeakageError on remaining overlap.

    ``constitution`` (default: the packaged one) is the policy the coverage report is drawn
    over; when one is given, the manifest records its name, version and digest.
    """
    out = Path(out_dir)
    rows, counts = assemble(inputs, seed, jailbreak_benign_twins)
    eval_rows = [r for rs in inputs.eval.values() for r in rs]
    first = check_leakage(rows, eval_rows)
    dropped = 0
    children = 0
    if drop_collisions and not first.ok:
        bad = set(first.colliding_train_ids)
        # an augmented copy (wrapped, re-tensed, obfuscated) of a colliding row leaks the
        # same payload even when the wrapper hides it from the near-duplicate check
        children = sum(r.id not in bad and r.meta.get("parent") in bad for r in rows)
        rows = [r for r in rows if r.id not in bad and r.meta.get("parent") not in bad]
        dropped = len(bad) + children
    final = check_leakage(rows, eval_rows)
    if not final.ok:
        pairs = ", ".join(f"{k} ({v})" for k, v in sorted(final.by_pair.items()))
        raise LeakageError(f"{len(final.colliding_train_ids)} training rows overlap evaluation "
                           f"sets: {pairs}")
    train, val = train_val_split(rows, seed)
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(out / "train.jsonl", train)
    write_jsonl(out / "val.jsonl", val)
    coverage = coverage_report(rows, constitution=constitution)
    (out / "coverage.json").write_text(json.dumps(coverage, indent=2, sort_keys=True,
                                                  ensure_ascii=False) + "\n", "utf-8")
    (out / "coverage.md").write_text(coverage_markdown(coverage), "utf-8")
    by_source: dict[str, int] = {}
    for r in rows:
        key = r.source.split(":")[0] if r.source.startswith("authored:") else r.source
        by_source[key] = by_source.get(key, 0) + 1
    manifest = {
        "seed": seed,
        "sources": inputs.sources,
        "source_stats": inputs.stats,
        "authored_files": inputs.authored_files,
        "counts": {**counts, "train": len(train), "val": len(val),
                   "unsafe": sum(r.label == "unsafe" for r in rows),
                   "safe": sum(r.label == "safe" for r in rows),
                   "by_source": dict(sorted(by_source.items()))},
        "leakage": {"dropped_before_check": dropped, "dropped_augmented_copies": children,
                    "first_pass": first.to_dict(),
                    "final": final.to_dict()},
        "outputs": {n: _sha(out / n) for n in ("train.jsonl", "val.jsonl", "coverage.md",
                                                "coverage.json")},
    }
    if constitution is not None:  # the default build's manifest keeps its v7-era keys
        manifest["constitution"] = {"name": constitution.name, "version": constitution.version,
                                    "digest": constitution.digest,
                                    "subcategories": len(constitution.subcategories)}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True,
                                                  ensure_ascii=False) + "\n", "utf-8")
    return BuildResult(out, len(train), len(val), dropped, final, manifest)


# ---- coverage ----------------------------------------------------------------------------
def _taxonomy(constitution: Any = None) -> list[tuple[str, str, str]]:
    """(policy, category, subcategory) for every subcategory of ``constitution`` (default:
    the packaged one)."""
    if constitution is None:
        from haloguard.constitution import load_constitution

        constitution = load_constitution()
    c = constitution
    return [(p.id, cat.id, s.id) for p in c.policies for cat in p.categories
            for s in cat.subcategories]


#: the coverage cell of rows with no subcategory (benign rows only; never flagged thin)
NO_SUBCATEGORY = "(none)"


def coverage_report(rows: list[Record], thin: dict[str, int] | None = None,
                    thin_lang: dict[str, int] | None = None,
                    constitution: Any = None) -> dict[str, Any]:
    """Counts per policy/category/subcategory (and per category × language) by kind; thin
    flags.  The cells are the subcategories of ``constitution`` (default: the packaged one)."""
    thin = thin or THIN
    thin_lang = thin_lang or THIN_LANG
    tax = _taxonomy(constitution)
    policy_of = {cat: pol for pol, cat, _ in tax}
    cells: dict[tuple[str, str, str], dict[str, int]] = {
        (p, c, s): dict.fromkeys(COVERAGE_KINDS, 0) for p, c, s in tax}
    langs: dict[tuple[str, str], dict[str, int]] = {}
    for r in rows:
        kind = r.meta.get("kind")
        if kind not in COVERAGE_KINDS or r.source.startswith("augment:"):
            continue
        cat = r.category or "none"
        sub = str(r.meta.get("subcategory") or NO_SUBCATEGORY)
        key = (policy_of.get(cat, "(unknown)"), cat, sub)
        cells.setdefault(key, dict.fromkeys(COVERAGE_KINDS, 0))[kind] += 1
        langs.setdefault((cat, r.lang), dict.fromkeys(COVERAGE_KINDS, 0))[kind] += 1

    def flag(c: dict[str, int], limits: dict[str, int]) -> list[str]:
        return [f"{k} < {v}" for k, v in sorted(limits.items()) if c.get(k, 0) < v]

    # NO_SUBCATEGORY: benign rows that sit next to a category without a subcategory (e.g. a
    # harmless ask in a jailbreak wrapper); counted, but never thin: no harmful row belongs there
    subs = [{"policy": p, "category": c, "subcategory": s, **v,
             "thin": flag(v, thin) if s != NO_SUBCATEGORY else []}
            for (p, c, s), v in sorted(cells.items())]
    per_lang = [{"category": c, "lang": lang, **v, "thin": flag(v, thin_lang)}
                for (c, lang), v in sorted(langs.items())]
    return {
        "thresholds": thin,
        "thresholds_language": thin_lang,
        "subcategories": subs,
        "category_language": per_lang,
        "thin_subcategories": sum(bool(x["thin"]) for x in subs),
        "thin_category_language": sum(bool(x["thin"]) for x in per_lang),
        "languages": sorted({lang for _, lang in langs}),
    }


def coverage_markdown(cov: dict[str, Any]) -> str:
    """Human-readable coverage report (thin cells marked ⚠)."""
    head = "| {} |\n|{}\n"
    cols = ["harmful", "counterfactual", "boundary", "baseline", "jailbreak_wrapped", "injection"]
    lines = ["# Corpus coverage", "",
             (f"Thin: fewer than {cov['thresholds']} per subcategory, "
              f"{cov['thresholds_language']} per category × language "
              "(harmful; paired benign = counterfactual; boundary and baseline are benign)."),
             (f"Thin subcategories: {cov['thin_subcategories']} of {len(cov['subcategories'])}; "
              f"thin category×language cells: {cov['thin_category_language']} of "
              f"{len(cov['category_language'])}."), "",
             "## Policy / category / subcategory (all languages)", ""]
    lines.append(head.format(" | ".join(["policy", "category", "subcategory", *cols, "thin"]),
                             "---|" * (len(cols) + 4)).rstrip("\n"))
    for x in cov["subcategories"]:
        mark = "⚠ " + ", ".join(x["thin"]) if x["thin"] else ""
        lines.append("| " + " | ".join([x["policy"], x["category"], x["subcategory"],
                                        *(str(x[c]) for c in cols), mark]) + " |")
    lines += ["", "## Category × language", ""]
    lines.append(head.format(" | ".join(["category", "lang", *cols, "thin"]),
                             "---|" * (len(cols) + 3)).rstrip("\n"))
    for x in cov["category_language"]:
        mark = "⚠" if x["thin"] else ""
        lines.append("| " + " | ".join([x["category"], x["lang"], *(str(x[c]) for c in cols),
                                        mark]) + " |")
    return "\n".join(lines) + "\n"


def build(out_dir: str | Path = "build/corpus", cache_dir: str | Path | None = None, seed: int = 0,
          corpus_dir: str | Path | None = None,
          jailbreak_benign_twins: int = JB_BENIGN_TWINS,
          constitution: Any = None,
          extra_corpus_dirs: tuple[str | Path, ...] = ()) -> BuildResult:
    """Gather every input and build the corpus into ``out_dir``.

    ``constitution`` (a :class:`~haloguard.constitution.Constitution`; default the packaged
    one) is the policy the authored rows are checked against and the coverage report is
    drawn over; ``extra_corpus_dirs`` are authored folders read after ``corpus_dir``.
    """
    inputs = gather_inputs(cache_dir, corpus_dir, constitution, tuple(extra_corpus_dirs))
    return build_corpus(out_dir, inputs, seed, jailbreak_benign_twins=jailbreak_benign_twins,
                        constitution=constitution)


__all__ = ["BuildInputs", "BuildResult", "CorpusError", "LeakageError", "authored_row_problem",
           "build", "build_corpus",
           "coverage_report", "gather_inputs", "load_authored", "stable_hash", "tense_augment",
           "tense_rephrase"]
