"""Records -> supervised examples for generative (SFT) and sequence-classification guards.

A generative example is ``(prompt_ids, target_ids)``: the prompt is exactly what
``hf-generative`` renders at inference (chat template of the template's messages + cue),
the target is the label text the model must emit after the cue:

* ``haloguard`` (seed 001): ``safe\\nCategory: none`` / ``unsafe\\nCategory: <id>`` + eos
* ``seed004``: ``safe`` / ``unsafe`` + eos

The loss is taken on the target tokens only (prompt and padding are ``-100``).  Prompt and
target are tokenized separately and concatenated, so the first target token is exactly the
next token that ``hf-generative`` reads its label probabilities from.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from haloguard.data.records import Record

IGNORE_INDEX = -100
GENERATIVE_TEMPLATES = ("haloguard", "seed004")


@dataclass(slots=True)
class SFTExample:
    """One tokenized training/eval example."""

    prompt_ids: list[int]
    target_ids: list[int]
    label: int  # 1 = unsafe, 0 = safe
    id: str = ""
    truncated: bool = False

    @property
    def length(self) -> int:
        return len(self.prompt_ids) + len(self.target_ids)


def record_unit(rec: Record | dict[str, Any]) -> tuple[dict[str, str], ...]:
    """The conversation unit a record stands for (``messages`` or one user turn)."""
    if isinstance(rec, dict):
        rec = Record.from_dict(rec)
    if rec.messages:
        return tuple({"role": m["role"], "content": m.get("content", "")} for m in rec.messages)
    return ({"role": "user", "content": rec.text or ""},)


def render_prompt(tokenizer: Any, template: Any, unit: Sequence[dict[str, str]]) -> str:
    """Exactly :meth:`HFGenerativeBackend.render`: chat template + cue."""
    msgs = template.messages(tuple(unit))
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True,
                                             **template.chat_kwargs)
    else:
        text = "".join(f"{m['role']}: {m['content']}\n" for m in msgs) + "assistant: "
    return text + template.cue


def target_text(template: Any, label: str, category: str | None = None) -> str:
    """The label text the model is trained to emit after the cue."""
    if label not in ("safe", "unsafe"):
        raise ValueError(f"label must be safe or unsafe, got {label!r}")
    if template.name == "haloguard":
        if label == "safe":
            return "safe\nCategory: none"
        cat = category if category in template.categories else "general"
        return f"unsafe\nCategory: {cat}"
    if template.name == "seed004":
        return label
    raise ValueError(f"template {template.name!r} is not trainable here "
                     f"(choose one of {', '.join(GENERATIVE_TEMPLATES)})")


def label_token_ids(tokenizer: Any, words: Iterable[str]) -> set[int]:
    """First-token ids of the label words (the rule ``hf-generative`` uses)."""
    from haloguard.backends.templates import label_token_ids as rule

    return rule(tokenizer, tuple(words))


def label_id_sets(tokenizer: Any, template: Any) -> tuple[list[int], list[int]]:
    """(safe ids, unsafe ids) with shared ids removed, as ``hf-generative`` does."""
    safe = label_token_ids(tokenizer, template.safe_words)
    unsafe = label_token_ids(tokenizer, template.unsafe_words)
    shared = safe & unsafe
    safe, unsafe = sorted(safe - shared), sorted(unsafe - shared)
    if not safe or not unsafe:
        raise ValueError(f"template {template.name!r}: no distinct first tokens for safe/unsafe")
    return safe, unsafe


def _encode(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _truncate_unit(tokenizer: Any, unit: tuple[dict[str, str], ...], drop: int) -> tuple[dict[str, str], ...]:
    """Cut ``drop`` (+ a margin) tokens from the end of the last user turn's content."""
    idx = max((i for i, m in enumerate(unit) if m["role"] == "user"), default=len(unit) - 1)
    content = unit[idx]["content"]
    toks = _encode(tokenizer, content)
    keep = max(1, len(toks) - drop - 2)
    new = dict(unit[idx], content=tokenizer.decode(toks[:keep], skip_special_tokens=False))
    return (*unit[:idx], new, *unit[idx + 1:])


def build_example(rec: Record | dict[str, Any], tokenizer: Any, template: Any,
                  max_length: int | None = None, add_eos: bool = True) -> SFTExample:
    """Tokenize one record; an over-long user turn is cut at its end so that the system
    prompt and the cue always survive."""
    if isinstance(rec, dict):
        rec = Record.from_dict(rec)
    if rec.label not in ("safe", "unsafe"):
        raise ValueError(f"record {rec.id!r} has no safe/unsafe label")
    unit = record_unit(rec)
    target = _encode(tokenizer, target_text(template, rec.label, rec.category))
    if add_eos and tokenizer.eos_token_id is not None:
        target.append(int(tokenizer.eos_token_id))
    prompt = _encode(tokenizer, render_prompt(tokenizer, template, unit))
    truncated = False
    for _ in range(4):
        if max_length is None or len(prompt) + len(target) <= max_length:
            break
        unit = _truncate_unit(tokenizer, unit, len(prompt) + len(target) - max_length)
        prompt = _encode(tokenizer, render_prompt(tokenizer, template, unit))
        truncated = True
    return SFTExample(prompt, target, 1 if rec.label == "unsafe" else 0, rec.id, truncated)


def build_examples(records: Iterable[Record | dict[str, Any]], tokenizer: Any, template: Any,
                   max_length: int | None = None, add_eos: bool = True) -> list[SFTExample]:
    return [build_example(r, tokenizer, template, max_length, add_eos) for r in records]


def common_prefix_len(seqs: Sequence[Sequence[int]]) -> int:
    """Length of the token prefix every sequence shares (the rendered system prompt)."""
    if not seqs:
        return 0
    n = min(len(s) for s in seqs)
    first = seqs[0]
    for s in seqs[1:]:
        i = 0
        while i < n and s[i] == first[i]:
            i += 1
        n = i
        if n == 0:
            break
    return n


def collate(examples: Sequence[SFTExample], pad_id: int, prefix_len: int = 0,
            padding_side: str = "right", with_target: bool = True) -> dict[str, Any]:
    """Pad a batch; tokens ``[:prefix_len]`` (shared by all rows) are dropped, the caller
    supplies them as a KV cache.

    Returns ``input_ids``, ``attention_mask``, ``position_ids`` (counting from
    ``prefix_len``, pads excluded), ``labels`` (``-100`` outside the targets) and
    ``last_prompt`` (index of each row's last prompt token: the label position).
    """
    import torch

    if padding_side not in ("left", "right"):
        raise ValueError("padding_side must be left or right")
    rows, labs, lasts = [], [], []
    for ex in examples:
        p = ex.prompt_ids[prefix_len:]
        t = ex.target_ids if with_target else []
        if not p:
            raise ValueError("prefix_len must leave at least one prompt token per row")
        rows.append(p + t)
        labs.append([IGNORE_INDEX] * len(p) + list(t))
        lasts.append(len(p) - 1)
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    last = torch.zeros(len(rows), dtype=torch.long)
    for i, (r, lab, lp) in enumerate(zip(rows, labs, lasts)):
        off = 0 if padding_side == "right" else width - len(r)
        ids[i, off:off + len(r)] = torch.tensor(r)
        labels[i, off:off + len(r)] = torch.tensor(lab)
        mask[i, off:off + len(r)] = 1
        last[i] = off + lp
    pos = (mask.cumsum(-1) - 1).clamp(min=0) + prefix_len
    return {"input_ids": ids, "attention_mask": mask, "position_ids": pos, "labels": labels,
            "last_prompt": last,
            "label": torch.tensor([ex.label for ex in examples], dtype=torch.long)}


def length_grouped_batches(lengths: Sequence[int], batch_size: int, seed: int,
                           mega: int = 32) -> list[list[int]]:
    """Shuffle, sort by length inside mega-batches of ``mega * batch_size`` and cut into
    batches (little padding, still random); batch order shuffled.  Deterministic in seed."""
    rng = random.Random(seed)
    idx = list(range(len(lengths)))
    rng.shuffle(idx)
    out: list[list[int]] = []
    step = max(1, mega * batch_size)
    for s in range(0, len(idx), step):
        chunk = sorted(idx[s:s + step], key=lambda i: -lengths[i])
        out += [chunk[j:j + batch_size] for j in range(0, len(chunk), batch_size)]
    rng.shuffle(out)
    return out


def sample_records(records: Sequence[Record], n: int | None, seed: int,
                   balance: bool = True) -> list[Record]:
    """Up to ``n`` labelled records; ``balance`` takes safe and unsafe half and half where
    both have enough.  Deterministic in seed."""
    recs = [r for r in records if r.label in ("safe", "unsafe")]
    rng = random.Random(seed)
    rng.shuffle(recs)
    if n is None or n >= len(recs):
        return recs
    if not balance:
        return recs[:n]
    pos = [r for r in recs if r.label == "unsafe"]
    neg = [r for r in recs if r.label == "safe"]
    k = min(len(pos), max(n // 2, n - len(neg)))
    out = pos[:k] + neg[: n - k]
    rng.shuffle(out)
    return out
