"""Run harmful (and benign) prompts through attacks against any guard.

A *bypass* is an attacked harmful prompt the guard labels ``Safe``; a *false positive* is
an attacked benign prompt it labels ``Unsafe``.  Every attempt is seeded from
``(seed, attack, prompt id)`` so it can be replayed exactly.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from haloguard.attacks.base import Attack, IdentityAttack, apply_seeded, derive_seed
from haloguard.data.records import numbered_jsonl
from haloguard.errors import InputError

_UNSAFE = {"unsafe", "harmful", "1", "true", "yes", "jailbreak", "unsafe_request"}
_SAFE = {"safe", "benign", "harmless", "0", "false", "no"}


@dataclass(frozen=True, slots=True)
class Prompt:
    """One source prompt (a light view of a corpus/data-layer record)."""

    id: str
    text: str
    label: str  # "unsafe" | "safe"
    category: str = "none"
    subcategory: str | None = None
    pair_id: str | None = None
    lang: str = "en"
    source: str = ""
    kind: str | None = None

    @classmethod
    def from_obj(cls, obj: Any, *, index: int = 0, default_label: str | None = None,
                 source: str = "") -> Prompt:
        """From a JSON row, a ``haloguard.data`` Record or anything with those attributes."""
        get = obj.get if isinstance(obj, dict) else (lambda k, d=None: getattr(obj, k, d))
        text = get("text")
        if not text and get("messages"):
            users = [m.get("content", "") for m in get("messages") if m.get("role") == "user"]
            text = users[-1] if users else ""
        if not isinstance(text, str) or not text.strip():
            raise InputError(f"row {index}: no text")
        label = _norm_label(get("label"), default_label, index)
        cat = get("category") or "none"
        return cls(
            id=str(get("id") if get("id") is not None else f"{source or 'row'}-{index}"),
            text=text, label=label, category=str(cat), subcategory=get("subcategory"),
            pair_id=get("pair_id"), lang=str(get("lang") or "en"),
            source=str(get("source") or source), kind=get("kind"),
        )


def _norm_label(value: Any, default: str | None, index: int) -> str:
    if value is None or value == "":
        if default is None:
            raise InputError(f"row {index}: no label")
        return default
    v = str(value).strip().lower()
    if v in _UNSAFE:
        return "unsafe"
    if v in _SAFE:
        return "safe"
    raise InputError(f"row {index}: unknown label {value!r}")


def read_prompts(path: str | Path, *, default_label: str | None = None,
                 limit: int | None = None) -> list[Prompt]:
    """Read a JSONL file of ``{"text"|"messages", "id"?, "label"?, "category"?, ...}`` rows."""
    p = Path(path)
    try:
        numbered = list(numbered_jsonl(p))
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:  # bad JSON or UTF-8, naming file and line
        raise InputError(str(exc)) from None
    out: list[Prompt] = []
    for i, row in numbered:
        if isinstance(row, str):
            row = {"text": row}
        out.append(Prompt.from_obj(row, index=i, default_label=default_label, source=p.stem))
        if limit is not None and len(out) >= limit:
            break
    return out


@dataclass(frozen=True, slots=True)
class Attempt:
    """One attacked prompt and the guard's verdict on it."""

    attack: str
    attack_class: str
    chain: tuple[str, ...]
    seed: int
    prompt_id: str
    label: str
    category: str
    lang: str
    text: str
    predicted: str  # "Unsafe" | "Safe" | "error"
    p_unsafe: float
    overlay: str
    selected_view: str
    error: str | None = None

    @property
    def bypass(self) -> bool:
        return self.label == "unsafe" and self.predicted == "Safe"

    @property
    def false_positive(self) -> bool:
        return self.label == "safe" and self.predicted == "Unsafe"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["chain"] = list(self.chain)
        return d


@dataclass
class RedteamResult:
    """Every attempt, plus what was skipped and why."""

    guard: str
    seed: int
    attacks: list[dict[str, Any]]
    attempts: list[Attempt]
    prompts: dict[str, Prompt] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    # -- aggregation -----------------------------------------------------------------
    def _caught_at_baseline(self) -> set[str]:
        return {a.prompt_id for a in self.attempts
                if a.attack == "identity" and a.label == "unsafe" and a.predicted == "Unsafe"}

    def per_attack(self) -> list[dict[str, Any]]:
        """Rows per attack: bypass rate on harmful, FPR on benign, induced bypass rate."""
        caught = self._caught_at_baseline()
        rows: dict[str, dict[str, Any]] = {}
        for info in self.attacks:
            rows[info["name"]] = {
                "attack": info["name"], "attack_class": info["attack_class"], "n": 0,
                "bypassed": 0, "n_caught_base": 0, "induced": 0, "n_benign": 0, "fp": 0,
                "errors": 0, "overlay_flagged": 0,
            }
        for a in self.attempts:
            r = rows[a.attack]
            if a.predicted == "error":
                r["errors"] += 1
                continue
            if a.label == "unsafe":
                r["n"] += 1
                r["bypassed"] += a.bypass
                r["overlay_flagged"] += a.overlay != "none"
                if a.prompt_id in caught:
                    r["n_caught_base"] += 1
                    r["induced"] += a.bypass
            else:
                r["n_benign"] += 1
                r["fp"] += a.false_positive
        for r in rows.values():
            r["bypass_rate"] = _rate(r["bypassed"], r["n"])
            r["induced_rate"] = _rate(r["induced"], r["n_caught_base"])
            r["fpr"] = _rate(r["fp"], r["n_benign"])
            r["overlay_rate"] = _rate(r["overlay_flagged"], r["n"])
        return list(rows.values())

    def per_attack_category(self) -> dict[str, dict[str, dict[str, Any]]]:
        """``{attack: {category: {"n", "bypassed", "rate"}}}`` over harmful prompts."""
        out: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        for a in self.attempts:
            if a.label != "unsafe" or a.predicted == "error":
                continue
            cell = out[a.attack].setdefault(a.category, {"n": 0, "bypassed": 0})
            cell["n"] += 1
            cell["bypassed"] += a.bypass
        for cats in out.values():
            for cell in cats.values():
                cell["rate"] = _rate(cell["bypassed"], cell["n"])
        return dict(out)

    def per_class(self) -> list[dict[str, Any]]:
        """Bypass rate and FPR pooled per attack class."""
        agg: dict[str, dict[str, int]] = defaultdict(lambda: {"n": 0, "bypassed": 0,
                                                              "n_benign": 0, "fp": 0})
        for r in self.per_attack():
            c = agg[r["attack_class"]]
            for k in ("n", "bypassed", "n_benign", "fp"):
                c[k] += r[k]
        return [{"attack_class": k, **v, "bypass_rate": _rate(v["bypassed"], v["n"]),
                 "fpr": _rate(v["fp"], v["n_benign"])} for k, v in agg.items()]

    def bypasses(self, *, include_identity: bool = False) -> list[Attempt]:
        return [a for a in self.attempts
                if a.bypass and (include_identity or a.attack != "identity")]

    def examples(self, k: int = 3, max_chars: int = 400) -> dict[str, list[dict[str, Any]]]:
        """Up to ``k`` bypasses per attack (texts truncated)."""
        out: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for a in self.bypasses():
            if len(out[a.attack]) < k:
                text = a.text if len(a.text) <= max_chars else (
                    a.text[:max_chars // 3] + " … " + a.text[-(2 * max_chars) // 3:])
                out[a.attack].append({"prompt_id": a.prompt_id, "category": a.category,
                                      "p_unsafe": round(a.p_unsafe, 4), "seed": a.seed,
                                      "text": text})
        return dict(out)


def _rate(k: int, n: int) -> float | None:
    return None if n == 0 else k / n


def load_named_guard(name: str, *, threshold: float | None = None,
                     calibration: str | None = None, canonicalize: bool = True,
                     view_policy: str = "readable") -> Any:
    """A guard by registry name / path / hub id / URL, a bare backend name such as
    ``peer:securevector`` (peers run as they ship: no canonicalizer), or ``a,b`` cascade."""
    if "," in name:
        from haloguard.cascade import load_cascade

        return load_cascade(name, threshold=threshold, calibration=calibration)
    from haloguard.backends.registry import BACKENDS, MODELS
    from haloguard.loader import load_guard

    if name in BACKENDS and name not in MODELS:
        return load_guard(name, backend=name, threshold=threshold, calibration=calibration,
                          canonicalize=canonicalize and not name.startswith("peer:"),
                          view_policy=view_policy)
    return load_guard(name, threshold=threshold, calibration=calibration,
                      canonicalize=canonicalize, view_policy=view_policy)


def attack_info(attack: Attack) -> dict[str, Any]:
    return {"name": attack.name, "attack_class": attack.attack_class,
            "classes": list(attack.classes), "chain": list(attack.chain),
            "overlay": attack.overlay, "description": attack.description}


def run_redteam(
    guard: Any,
    harmful: Sequence[Prompt],
    attacks: Sequence[Attack],
    *,
    benign: Sequence[Prompt] = (),
    seed: int = 0,
    batch_size: int = 32,
    include_baseline: bool = True,
    progress: bool = False,
    notify: Callable[[str], None] | None = None,
) -> RedteamResult:
    """Attack every prompt with every available attack and classify the results.

    ``guard`` is anything with ``classify_batch(items, return_errors=True)`` (a
    :class:`haloguard.Guard`).  Attacks that are unavailable (e.g. paraphrase without an
    endpoint) are skipped and listed in ``result.skipped``; ``notify`` gets one line each.
    """
    notify = notify or (lambda msg: print(f"haloguard redteam: {msg}", file=sys.stderr))
    chosen: list[Attack] = [IdentityAttack()] if include_baseline else []
    skipped: dict[str, str] = {}
    for a in attacks:
        if a.name == "identity":
            continue
        reason = a.unavailable_reason()
        if reason:
            skipped[a.name] = reason
            notify(reason)
        else:
            chosen.append(a)
    jobs: list[tuple[Attack, Prompt, int, str]] = []
    failed: list[Attempt] = []
    prompts = [*harmful, *benign]
    for attack in chosen:
        for p in prompts:
            s = derive_seed(seed, attack.name, p.id)
            try:
                text = apply_seeded(attack, p.text, s)
            except Exception as exc:
                failed.append(_attempt(attack, p, s, p.text, None, f"{type(exc).__name__}: {exc}"))
                continue
            jobs.append((attack, p, s, text))
    attempts: list[Attempt] = []
    bar = _progress(len(jobs), progress)
    for start in range(0, len(jobs), batch_size):
        chunk = jobs[start:start + batch_size]
        verdicts = guard.classify_batch([t for _, _, _, t in chunk], return_errors=True)
        for (attack, p, s, text), v in zip(chunk, verdicts):
            if isinstance(v, Exception):
                attempts.append(_attempt(attack, p, s, text, None, str(v)))
            else:
                attempts.append(_attempt(attack, p, s, text, v, None))
        if bar is not None:
            bar.update(len(chunk))
    if bar is not None:
        bar.close()
    attempts.extend(failed)
    return RedteamResult(
        guard=str(getattr(guard, "model_id", type(guard).__name__)), seed=seed,
        attacks=[attack_info(a) for a in chosen], attempts=attempts,
        prompts={p.id: p for p in prompts}, skipped=skipped,
    )


def _attempt(attack: Attack, p: Prompt, seed: int, text: str, verdict: Any,
             error: str | None) -> Attempt:
    return Attempt(
        attack=attack.name, attack_class=attack.attack_class, chain=attack.chain, seed=seed,
        prompt_id=p.id, label=p.label, category=p.category, lang=p.lang, text=text,
        predicted="error" if verdict is None else str(verdict.safety_label),
        p_unsafe=0.0 if verdict is None else float(verdict.p_unsafe),
        overlay="none" if verdict is None else str(verdict.attack_overlay),
        selected_view="" if verdict is None else str(getattr(verdict, "selected_view", "")),
        error=error,
    )


def _progress(total: int, enabled: bool):
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        return None
    return tqdm(total=total, desc="redteam", unit="prompt", file=sys.stderr)


def iter_prompts(objs: Iterable[Any], *, default_label: str | None = None,
                 source: str = "") -> list[Prompt]:
    """Prompts from data-layer records or dict rows."""
    return [Prompt.from_obj(o, index=i, default_label=default_label, source=source)
            for i, o in enumerate(objs)]
