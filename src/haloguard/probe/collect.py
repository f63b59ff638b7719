"""Hidden states of an HF causal LM over prompt + response exchanges (``haloguard probe collect``).

An exchange is rendered the way guarded generation sees it: the chat template applied to the
user prompt *with the generation prompt* (``<|im_start|>assistant\\n`` ...), followed by the
response tokens (no end-of-turn marker).  So the state probed at the last response token is
the state the decoder is in while it is still generating.

Layers index ``output_hidden_states``: ``0`` is the embedding output, ``n_layers`` the last
block (after the final norm in most HF models); negative indices count from the end
(``-1`` = last).  Positions: ``last`` (last response token), ``mean`` (mean over response
tokens), ``all`` (one row per response token; ``row_exchange`` maps rows to exchanges).

Padding is on the left with explicit ``position_ids`` so a padded row sees the same
positions as the unpadded sequence during generation.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

POSITIONS = ("last", "mean", "all")


@dataclass
class LoadedLM:
    """A tokenizer + causal LM pair and where they came from."""

    tokenizer: Any
    model: Any
    model_id: str
    device: str
    dtype: str
    n_states: int  # len(hidden_states) = num_hidden_layers + 1

    def resolve_layer(self, layer: int) -> int:
        return resolve_layer(layer, self.n_states)


def resolve_layer(layer: int, n_states: int) -> int:
    """``layer`` (negative allowed) as an index into ``hidden_states`` of length ``n_states``."""
    idx = layer if layer >= 0 else n_states + layer
    if not 0 <= idx < n_states:
        raise ValueError(f"layer {layer} is out of range: the model has {n_states} hidden "
                         f"states (0..{n_states - 1}, or -{n_states}..-1)")
    return idx


def parse_layers(spec: str | Sequence[int] | None, n_states: int) -> list[int]:
    """``"all"``, ``"-1,-4,-8"``, ``"4:12"`` (python range) or a list -> resolved indices."""
    if spec is None or spec == "all":
        return list(range(n_states))
    if isinstance(spec, str):
        spec = spec.strip()
        if ":" in spec and "," not in spec:
            a, b = (int(x) if x else None for x in spec.split(":", 1))
            return list(range(n_states))[slice(a, b)]
        vals = [int(x) for x in spec.replace(" ", "").split(",") if x]
    else:
        vals = [int(x) for x in spec]
    out: list[int] = []
    for v in vals:
        i = resolve_layer(v, n_states)
        if i not in out:
            out.append(i)
    return out


def load_lm(model: str, device: str | None = None, dtype: str | None = None,
            gguf_file: str | None = None) -> LoadedLM:
    """Load any HF causal LM the backends can (``pkg:``, a directory, a ``.gguf``, a hub id)."""
    import torch

    from haloguard.backends.hf_loading import (
        load_causal_lm,
        load_tokenizer,
        locate,
        resolve_device_dtype,
    )

    path, gguf = locate(model, gguf_file)
    dev, dt = resolve_device_dtype(device, dtype)
    tok = load_tokenizer(path, gguf, padding_side="left")
    lm = load_causal_lm(path, gguf, dt, dev)
    cfg = lm.config
    n_layers = getattr(cfg, "num_hidden_layers", None)
    if n_layers is None and hasattr(cfg, "get_text_config"):
        n_layers = cfg.get_text_config().num_hidden_layers
    return LoadedLM(tok, lm, model, dev, str(dt).removeprefix("torch."), int(n_layers) + 1)


def prompt_ids(tok: Any, prompt: str | Sequence[dict[str, str]], chat_template: bool = True
               ) -> list[int]:
    """Token ids of the prompt as the model is asked to answer it."""
    msgs = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
    if chat_template and getattr(tok, "chat_template", None):
        text = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        return list(tok(text, add_special_tokens=False)["input_ids"])
    text = "\n".join(m["content"] for m in msgs) + "\n"
    return list(tok(text)["input_ids"])


def encode_exchange(tok: Any, prompt: str, response: str, chat_template: bool = True,
                    max_length: int = 512) -> tuple[list[int], int]:
    """(ids, index of the first response token); the response is cut at ``max_length``."""
    p = prompt_ids(tok, prompt, chat_template)
    r = list(tok(response, add_special_tokens=False)["input_ids"]) or [tok.eos_token_id]
    if len(p) >= max_length:
        p = p[-(max_length // 2):]
    ids = (p + r)[:max_length]
    return ids, len(p)


@dataclass
class Collection:
    """Collected features: ``features[layer]`` is (rows, hidden)."""

    features: dict[int, np.ndarray]
    labels: np.ndarray          # three-class labels per row (-1 if unknown)
    unsafe: np.ndarray          # binary target per row
    row_exchange: np.ndarray    # exchange index of each row
    groups: list[str]
    ids: list[str]
    position: str
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def layers(self) -> list[int]:
        return sorted(self.features)

    def save(self, path: str | Path) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        arrays = {f"layer_{k}": v.astype(np.float32) for k, v in self.features.items()}
        np.savez_compressed(p, labels=self.labels, unsafe=self.unsafe,
                            row_exchange=self.row_exchange, groups=np.array(self.groups),
                            ids=np.array(self.ids), position=np.array(self.position),
                            meta=np.array(json.dumps(self.meta)), **arrays)
        return p


def load_collection(path: str | Path) -> Collection:
    with np.load(path, allow_pickle=False) as z:
        feats = {int(k[6:]): z[k] for k in z.files if k.startswith("layer_")}
        return Collection(feats, z["labels"], z["unsafe"], z["row_exchange"],
                          [str(x) for x in z["groups"]], [str(x) for x in z["ids"]],
                          str(z["position"]), json.loads(str(z["meta"])))


def collect(lm: LoadedLM, exchanges: Sequence[dict[str, Any]], layers: str | Sequence[int] = "-1",
            position: str = "last", batch_size: int = 8, max_length: int = 512,
            chat_template: bool = True, progress: bool = False) -> Collection:
    """Run the model over the exchanges and gather features at ``layers`` / ``position``."""
    import torch

    if position not in POSITIONS:
        raise ValueError(f"position must be one of {', '.join(POSITIONS)}, got {position!r}")
    idx_layers = parse_layers(layers, lm.n_states)
    tok, model = lm.tokenizer, lm.model
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    enc = [encode_exchange(tok, e["prompt"], e["response"], chat_template, max_length)
           for e in exchanges]
    order = sorted(range(len(enc)), key=lambda i: len(enc[i][0]))  # less padding
    per_ex: list[dict[int, np.ndarray] | None] = [None] * len(enc)
    t0 = time.perf_counter()
    for b in range(0, len(order), batch_size):
        chunk = order[b:b + batch_size]
        width = max(len(enc[i][0]) for i in chunk)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for j, i in enumerate(chunk):
            row = enc[i][0]
            ids[j, width - len(row):] = torch.tensor(row)
            mask[j, width - len(row):] = 1
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        with torch.no_grad():
            out = model(input_ids=ids.to(lm.device), attention_mask=mask.to(lm.device),
                        position_ids=pos.to(lm.device), output_hidden_states=True,
                        use_cache=False)
        hs = out.hidden_states
        for j, i in enumerate(chunk):
            n, start = len(enc[i][0]), enc[i][1]
            lo, hi = width - n + start, width  # response tokens
            feats = {}
            for layer in idx_layers:
                h = hs[layer][j, lo:hi].float()
                if position == "last":
                    feats[layer] = h[-1:].cpu().numpy()
                elif position == "mean":
                    feats[layer] = h.mean(0, keepdim=True).cpu().numpy()
                else:
                    feats[layer] = h.cpu().numpy()
            per_ex[i] = feats
        if progress:
            print(f"\rcollected {min(b + batch_size, len(order))}/{len(order)}", end="",
                  flush=True)
    if progress:
        print()
    counts = [next(iter(f.values())).shape[0] for f in per_ex]  # type: ignore[union-attr]
    row_ex = np.repeat(np.arange(len(enc)), counts)
    features = {layer: np.concatenate([f[layer] for f in per_ex], 0)  # type: ignore[index]
                for layer in idx_layers}
    lab = np.array([e.get("label") if e.get("label") is not None else -1 for e in exchanges],
                   dtype=np.int64)
    uns = np.array([int(e.get("unsafe", int(e.get("label") == 2)) or 0) for e in exchanges],
                   dtype=np.int64)
    meta = {"model": lm.model_id, "n_states": lm.n_states, "device": lm.device,
            "dtype": lm.dtype, "chat_template": chat_template, "max_length": max_length,
            "hidden_size": int(next(iter(features.values())).shape[1]),
            "seconds": round(time.perf_counter() - t0, 3), "n_exchanges": len(enc)}
    return Collection(features, lab[row_ex], uns[row_ex], row_ex,
                      [str(e.get("group", e.get("id", i))) for i, e in enumerate(exchanges)],
                      [str(e.get("id", i)) for i, e in enumerate(exchanges)], position, meta)
