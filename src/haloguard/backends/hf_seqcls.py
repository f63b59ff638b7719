"""Sequence-classification guards (seed 000's Halo4B-guard-alpha: Qwen3Guard-4B with a
classification head, chat-template input, sigmoid of the harmful logit).  Extra ``hf``."""

from __future__ import annotations

import re
from typing import Any

from haloguard.backends.base import Backend, BackendInfo, Conversation, Score
from haloguard.backends.hf_loading import load_tokenizer, locate, resolve_device_dtype, token_offsets

_HARMFUL = re.compile(r"^(unsafe|harmful|toxic|jailbreak|injection|malicious|label_1|1|yes)$", re.I)
ACTIVATIONS = ("auto", "sigmoid", "softmax")


class HFSeqClsBackend(Backend):
    """``AutoModelForSequenceClassification`` guard.

    The harmful label index comes from ``config.id2label`` (unsafe/harmful/toxic/...,
    else index 1) or ``harmful_index``; labels that name runtime categories (directly or
    through the constitution's mappings) fill ``category_probs``.  ``activation``:
    ``sigmoid`` of the harmful logit (seed 000), ``softmax`` over labels, or ``auto``
    (sigmoid for one label or multi-label configs, softmax otherwise).
    """

    uses_context = True
    max_batch_size = 16

    def __init__(self, model: str, constitution: Any = None, device: str | None = None,
                 dtype: str | None = None, harmful_index: int | None = None,
                 activation: str = "auto", max_input_tokens: int | None = None,
                 use_chat_template: bool | None = None, threshold: float | None = None,
                 window_length: int | None = None, window_stride: int | None = None,
                 **_: Any) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification

        from haloguard.constitution import load_constitution

        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}")
        self.torch = torch
        self.device, self.dtype = resolve_device_dtype(device, dtype)
        path, _ = locate(model)
        self.model_name = model
        self.tokenizer = load_tokenizer(path, padding_side="left")
        self.tokenizer.truncation_side = "left"
        self.model = AutoModelForSequenceClassification.from_pretrained(path, dtype=self.dtype)
        self.model.to(self.device).eval()
        cfg = self.model.config
        if getattr(cfg, "pad_token_id", None) is None:
            cfg.pad_token_id = self.tokenizer.pad_token_id
        id2label = {int(k): str(v) for k, v in (getattr(cfg, "id2label", None) or {}).items()}
        n = int(cfg.num_labels)
        if harmful_index is None:
            hits = [i for i, name in id2label.items() if _HARMFUL.match(name)]
            harmful_index = hits[0] if hits else (0 if n == 1 else 1)
        if not 0 <= harmful_index < n:
            raise ValueError(f"harmful_index {harmful_index} out of range for {n} labels")
        self.harmful_index = harmful_index
        if activation == "auto":
            multi = getattr(cfg, "problem_type", None) == "multi_label_classification"
            activation = "sigmoid" if n == 1 or multi else "softmax"
        self.activation = activation
        cons = constitution or load_constitution()
        self.label_categories: dict[int, str] = {}
        for i, name in id2label.items():
            cid = name if name in cons.runtime_categories else None
            for scheme in ("qwen3guard", "llamaguard", "aegis2"):
                cid = cid or cons.map_from(scheme, name)
            if cid and i != harmful_index:
                self.label_categories[i] = cid
        limit = getattr(cfg, "max_position_embeddings", 4096) or 4096
        self.max_input_tokens = int(max_input_tokens or min(int(limit), 8192))
        self.window_length = int(window_length or min(1200, max(32, self.max_input_tokens // 2)))
        self.window_stride = int(window_stride or max(1, min(256, self.window_length // 4)))
        self.use_chat_template = (bool(getattr(self.tokenizer, "chat_template", None))
                                  if use_chat_template is None else use_chat_template)
        if threshold is not None:
            self.default_threshold = float(threshold)

    @property
    def info(self) -> BackendInfo:
        return BackendInfo(name="hf-seqcls", model_id=str(self.model_name), device=self.device,
                           dtype=str(self.dtype).replace("torch.", ""),
                           max_input_tokens=self.max_input_tokens,
                           extra={"activation": self.activation, "harmful_index": self.harmful_index})

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return token_offsets(self.tokenizer, text) or super().token_spans(text)

    def render(self, unit: Conversation) -> str:
        msgs = [dict(m) for m in unit]
        if self.use_chat_template:
            return self.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=False)
        return "\n".join(m["content"] for m in msgs if m["role"] == "user")

    def _score_batch(self, units: list[Conversation]) -> list[Score]:
        torch = self.torch
        texts = [self.render(u) for u in units]
        enc = self.tokenizer(texts, return_tensors="pt", padding=True, truncation=True,
                             max_length=self.max_input_tokens,
                             add_special_tokens=not self.use_chat_template)
        enc = {k: v.to(self.device) for k, v in enc.items()}
        with torch.inference_mode():
            logits = self.model(**enc).logits.float()
        if self.activation == "sigmoid":
            probs = torch.sigmoid(logits)
        else:
            probs = torch.softmax(logits, dim=-1)
        out = []
        for row in probs:
            p = float(row[self.harmful_index])
            cats = {cid: float(row[i]) for i, cid in self.label_categories.items()}
            out.append(Score(p, category_probs=cats))
        return out
