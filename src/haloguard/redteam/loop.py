"""``redteam loop``: attack -> collect bypasses (with benign twins) and false positives
(attacked benign prompts the guard flags) -> add them to a corpus overlay -> rebuild
training data -> retrain the embedded model -> re-evaluate.

Bypasses and false positives are mined on *training* prompts only (AdvBench + the
authored corpus by default); robustness is measured on an *evaluation* set (HarmBench by default) that never
feeds training.  Attack classes in ``holdout_classes`` are never mined, so their bypass
rate on the evaluation set measures generalisation rather than memorisation.

The heavy steps are injectable (``builder``, ``trainer``, ``guard_factory``,
``suite_runner``) so tests run the whole loop with the keyword guard and a fake trainer.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from haloguard.attacks.base import AttackOptions, resolve_attacks
from haloguard.errors import InputError
from haloguard.redteam.export import (
    bypass_records,
    canonicalizer_gaps,
    false_positive_records,
    write_records,
)
from haloguard.redteam.report import write_report
from haloguard.redteam.runner import Prompt, RedteamResult, read_prompts, run_redteam

#: builder(overlay_dir, out_dir) -> dir with train.jsonl / val.jsonl
Builder = Callable[[Path, Path], Path]
#: trainer(data_dir, out_dir) -> model dir
Trainer = Callable[[Path, Path], Path]
#: guard_factory(model_dir or None for the starting guard) -> Guard
GuardFactory = Callable[[Path | None], Any]
#: suite_runner(guard_spec, out_dir) -> {"recall": .., "fpr": .., ...}
SuiteRunner = Callable[[str, Path], dict[str, Any]]

CORPUS_DIR = Path(__file__).resolve().parents[1] / "data" / "corpus"


@dataclass
class LoopConfig:
    out_dir: str | Path
    rounds: int = 2
    sample: int = 200
    benign_sample: int = 200  # benign training prompts attacked per round (false-positive mining)
    seed: int = 0
    attacks: str | list[str] = "all"
    holdout_classes: tuple[str, ...] = ("style_shift", "benign_tail")
    train_data: tuple[str, ...] = ("advbench", "corpus")
    eval_data: str = "harmbench"
    eval_benign: str | None = "nq_open"
    eval_limit: int | None = None
    eval_benign_limit: int | None = 300
    eval_suite: str | None = None
    eval_suite_max_per_set: int | None = None
    base_data: str | Path | None = None
    guard: str = "embedded"
    threshold: float | None = None
    options: AttackOptions = field(default_factory=AttackOptions)
    progress: bool = False
    batch_size: int = 32
    train_options: dict[str, str] = field(default_factory=dict)
    train_cache: str | Path | None = None
    allow_eval_mining: bool = False  # only for tests/experiments; reported numbers must not


@dataclass
class LoopLog:
    rows: list[dict[str, Any]]
    out_dir: Path

    def markdown(self) -> str:
        return render_log_markdown(self.rows)


# -- prompt sets ---------------------------------------------------------------------------
def load_prompt_set(spec: str, *, default_label: str | None, role: str | None = None,
                    allow_eval: bool = True) -> list[Prompt]:
    """A JSONL path, ``corpus`` (the authored corpus) or a ``haloguard.data`` source name.

    With ``role="train"`` an evaluation-role source is refused unless ``allow_eval``.
    """
    p = Path(spec)
    if p.suffix in (".jsonl", ".json") or p.exists():
        return read_prompts(p, default_label=default_label)
    if spec == "corpus":
        out: list[Prompt] = []
        for f in sorted(CORPUS_DIR.glob("*.jsonl")):
            out.extend(read_prompts(f, default_label=default_label))
        return [Prompt(**{**_asdict(x), "source": "corpus"}) for x in out]
    try:
        from haloguard.data.sources import get_source

        src = get_source(spec)
    except (ImportError, KeyError) as exc:
        raise InputError(f"unknown prompt set {spec!r}: not a file, 'corpus' or a data source "
                         f"({exc})") from None
    if role == "train" and src.role == "eval" and not allow_eval:
        raise InputError(f"{spec} is an evaluation set: bypasses found on it must not be folded "
                         "into training (mine on training sources, e.g. advbench,corpus)")
    try:
        from haloguard.data.loaders import load_source  # type: ignore[import-not-found]
    except ImportError as exc:
        raise InputError(f"the data layer cannot load {spec!r} yet ({exc})") from None
    recs = [r for r in load_source(spec) if getattr(r, "label", None) in (None, "unsafe", "safe")]
    recs = [r for r in recs if (getattr(r, "label", None) or default_label) is not None]
    prompts = [_from_record(r, default_label, spec) for r in recs]
    if spec == "harmbench":
        prompts = with_harmbench_categories(prompts)
    return prompts


def with_harmbench_categories(prompts: list[Prompt]) -> list[Prompt]:
    """Fill missing categories of HarmBench prompts from llamator's English HarmBench rows
    (same behaviours, with categories), mapped to runtime ids through the constitution."""
    if all(p.category not in ("none", "", None) for p in prompts):
        return prompts
    try:
        import pyarrow.parquet as pq

        from haloguard.constitution import load_constitution
        from haloguard.data.fetch import source_dir
        from haloguard.data.sources import get_source

        root = source_dir(get_source("llamator_harmbench_ru"), None, False)
        rows = pq.read_table(root / "llamator/attack_data/harmbench_text.parquet").to_pylist()
    except Exception:  # noqa: BLE001 - optional enrichment: keep "none" categories
        return prompts
    cons = load_constitution()
    cats = {_norm(r["goal"]): r.get("category") for r in rows if r.get("language") == "en"}
    out = []
    for p in prompts:
        raw = cats.get(_norm(p.text))
        if p.category in ("none", "", None) and raw:
            cat = cons.map_from("harmbench", raw) or raw
            p = Prompt(**{**_asdict(p), "category": cat})
        out.append(p)
    return out


def _from_record(r: Any, default_label: str | None, source: str) -> Prompt:
    meta = dict(getattr(r, "meta", {}) or {})
    return Prompt(
        id=str(r.id), text=r.content if hasattr(r, "content") else r.text,
        label=r.label or default_label or "unsafe", category=r.category or "none",
        subcategory=meta.get("subcategory"), pair_id=meta.get("pair_id"),
        lang=r.lang or "en", source=r.source or source, kind=meta.get("kind"),
    )


def _asdict(p: Prompt) -> dict[str, Any]:
    return {k: getattr(p, k) for k in Prompt.__dataclass_fields__}


# -- default heavy steps --------------------------------------------------------------------
def _cli(*args: str) -> None:
    cmd = [sys.executable, "-m", "haloguard.cli.main", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"`haloguard {' '.join(args)}` failed: {' | '.join(tail)}")


def make_default_builder(base_data: str | Path | None, work: Path, seed: int = 0) -> Builder:
    """Rebuild the training corpus each round with the overlay rows added.

    With ``base_data`` (a built corpus dir): copy it and append the overlay rows to
    ``train.jsonl``.  Otherwise use the data layer: gather every source once, then per
    round ``build_corpus`` with the overlay rows added to the authored records, so they
    pass the same dedup, augmentation and leakage check as everything else.
    """
    state: dict[str, Any] = {}

    def build(overlay_dir: Path, out_dir: Path) -> Path:
        if base_data is not None:
            return merge_overlay(Path(base_data), overlay_dir, out_dir)
        try:
            from haloguard.data.corpus import build_corpus, gather_inputs
        except ImportError:  # data layer without a corpus builder: use the CLI
            base = work / "base_data"
            if not (base / "train.jsonl").exists():
                _cli("data", "build", "--out", str(base))
            return merge_overlay(base, overlay_dir, out_dir)
        import dataclasses

        if "inputs" not in state:
            state["inputs"] = gather_inputs()
        inputs = state["inputs"]
        extra = overlay_records(overlay_dir)
        build_corpus(out_dir, dataclasses.replace(inputs, authored=[*inputs.authored, *extra]),
                     seed)
        return out_dir

    return build


def overlay_records(overlay_dir: Path) -> list[Any]:
    """The overlay rows as data-layer Records (provenance kept in ``meta``)."""
    from haloguard.data.records import Record

    out = []
    for f in sorted(overlay_dir.glob("*.jsonl")):
        for line in f.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            meta = {k: row[k] for k in ("kind", "subcategory", "pair_id") if row.get(k)}
            meta.update(row.get("meta") or {})
            out.append(Record(id=row["id"], text=row["text"], label=row["label"],
                              category=row.get("category"),
                              source_category=row.get("subcategory"),
                              lang=row.get("lang") or "en", source=f"redteam:{f.stem}",
                              overlay=row.get("overlay") or "none", meta=meta))
    return out


def merge_overlay(base_dir: Path, overlay_dir: Path, out_dir: Path) -> Path:
    """Copy ``base_dir``'s files to ``out_dir`` and append overlay rows to train.jsonl
    (rows whose text is already in the base are dropped)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for f in base_dir.iterdir():
        if f.is_file():
            shutil.copy2(f, out_dir / f.name)
    train = out_dir / "train.jsonl"
    seen = set()
    if train.exists():
        with train.open(encoding="utf-8") as fh:
            for line in fh:
                try:
                    seen.add(json.loads(line).get("text"))
                except (ValueError, AttributeError):
                    continue
    added = 0
    with train.open("a", encoding="utf-8") as out:
        for f in sorted(overlay_dir.glob("*.jsonl")):
            for line in f.read_text(encoding="utf-8").splitlines():
                if not line.strip():
                    continue
                row = json.loads(line)
                if row.get("text") in seen:
                    continue
                seen.add(row.get("text"))
                row.setdefault("source", "redteam")
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
                added += 1
    (out_dir / "overlay.json").write_text(json.dumps(
        {"base": str(base_dir), "overlay": str(overlay_dir), "added": added}) + "\n")
    return out_dir


def make_default_trainer(overrides: dict[str, str] | None = None,
                         cache_dir: str | Path | None = None,
                         log: Callable[[str], None] | None = None) -> Trainer:
    """Retrain the embedded model through the trainer API
    (``haloguard.train.embedded.train``); ``overrides`` set ``TrainConfig`` fields by name
    (strings are converted to each field's type), ``cache_dir`` is its embedding cache."""
    overrides = dict(overrides or {})

    def train_(data_dir: Path, out_dir: Path) -> Path:
        from haloguard.train.embedded import TrainConfig, train

        cfg = TrainConfig(**_coerce(TrainConfig, overrides))
        train(data_dir, out_dir, cfg, cache_dir=cache_dir,
              log=log or (lambda m: print(f"haloguard train: {m}", file=sys.stderr)))
        return out_dir

    return train_


def _coerce(cls: Any, overrides: dict[str, str]) -> dict[str, Any]:
    import dataclasses

    fields = {f.name: f for f in dataclasses.fields(cls)}
    out: dict[str, Any] = {}
    for key, raw in overrides.items():
        if key not in fields:
            import difflib

            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise InputError(f"unknown training option {key!r}{hint}")
        default = getattr(cls(), key)
        if isinstance(default, bool):
            val: Any = str(raw).lower() in ("1", "true", "yes", "on")
        elif isinstance(default, int):
            val = int(raw)
        elif isinstance(default, float) or default is None:
            val = float(raw)
        else:
            val = raw
        out[key] = val
    return out


def make_default_guard_factory(guard: str, threshold: float | None) -> GuardFactory:
    def factory(model_dir: Path | None):
        from haloguard.redteam.runner import load_named_guard

        return load_named_guard(str(model_dir) if model_dir is not None else guard,
                                threshold=threshold)

    return factory


def default_suite_runner(suite: str, max_per_set: int | None = None) -> SuiteRunner:
    """``haloguard eval --suite SUITE --guard SPEC --out DIR`` and its headline metrics."""
    def run(guard_spec: str, out_dir: Path) -> dict[str, Any]:
        extra = ["--max-per-set", str(max_per_set)] if max_per_set else []
        _cli("eval", "--suite", suite, "--guard", guard_spec, "--out", str(out_dir),
             "--no-html", "--no-progress", "--n-boot", "100", *extra)
        return _suite_metrics(out_dir)

    return run


def _suite_metrics(out_dir: Path) -> dict[str, Any]:
    """Pooled recall/FPR/F1 and each set's headline figure from ``haloguard eval``'s
    results.json (``{"guards", "sets": {name: {"guards": {g: metrics}}}, "pooled"}``)."""
    f = out_dir / "results.json"
    try:
        data = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"file": None, "pooled": {}, "sets": {}}
    guards = list(data.get("guards") or {})
    g = guards[0] if guards else None
    keys = ("recall", "fpr", "f1")
    pooled = (data.get("pooled") or {}).get(g) or {}
    sets = {}
    for name, entry in (data.get("sets") or {}).items():
        m = (entry.get("guards") or {}).get(g) or {}
        sets[name] = {k: m[k] for k in keys if isinstance(m.get(k), (int, float))}
    return {"file": str(f), "pooled": {k: pooled.get(k) for k in keys}, "sets": sets}


# -- the loop -------------------------------------------------------------------------------
def run_loop(
    cfg: LoopConfig,
    *,
    builder: Builder | None = None,
    trainer: Trainer | None = None,
    guard_factory: GuardFactory | None = None,
    suite_runner: SuiteRunner | None = None,
    train_prompts: Sequence[Prompt] | None = None,
    eval_harmful: Sequence[Prompt] | None = None,
    eval_benign: Sequence[Prompt] | None = None,
    notify: Callable[[str], None] | None = None,
) -> LoopLog:
    """Run ``cfg.rounds`` rounds; returns (and writes) the per-round log.

    Row ``round=0`` measures the starting guard; row ``round=r`` the guard retrained on the
    bypasses mined in rounds ``1..r``.
    """
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    say = notify or (lambda m: print(f"haloguard redteam loop: {m}", file=sys.stderr))
    holdout = tuple(cfg.holdout_classes)
    attacks = resolve_attacks(cfg.attacks if cfg.attacks else "all", cfg.options)
    train_attacks = [a for a in attacks if not set(a.classes) & set(holdout)]
    if not train_attacks:
        raise InputError("every attack is held out: nothing left to mine bypasses with")
    allowed = {c for a in train_attacks for c in a.classes}

    # prompt sets
    if train_prompts is None:
        train_prompts = []
        for spec in cfg.train_data:
            train_prompts = [*train_prompts, *load_prompt_set(
                spec, default_label="unsafe", role="train", allow_eval=cfg.allow_eval_mining)]
    train_harm = [p for p in train_prompts if p.label == "unsafe"]
    twin_pool = [p for p in train_prompts if p.label == "safe"]
    if not train_harm:
        raise InputError("no harmful training prompts to mine bypasses from")
    if eval_harmful is None:
        eval_harmful = [p for p in load_prompt_set(cfg.eval_data, default_label="unsafe")
                        if p.label == "unsafe"]
    if eval_benign is None:
        eval_benign = ([p for p in load_prompt_set(cfg.eval_benign, default_label="safe")
                        if p.label == "safe"] if cfg.eval_benign else [])
    if cfg.eval_limit:
        eval_harmful, eval_benign = eval_harmful[:cfg.eval_limit], eval_benign[:cfg.eval_limit]
    if cfg.eval_benign_limit:
        eval_benign = eval_benign[:cfg.eval_benign_limit]
    overlap = {_norm(p.text) for p in train_harm} & {_norm(p.text) for p in eval_harmful}
    if overlap:
        say(f"{len(overlap)} training prompt(s) also in the evaluation set; dropped from mining")
        train_harm = [p for p in train_harm if _norm(p.text) not in overlap]

    builder = builder or make_default_builder(cfg.base_data, out, cfg.seed)
    trainer = trainer or make_default_trainer(cfg.train_options, cfg.train_cache)
    guard_factory = guard_factory or make_default_guard_factory(cfg.guard, cfg.threshold)
    if suite_runner is None and cfg.eval_suite:
        suite_runner = default_suite_runner(cfg.eval_suite, cfg.eval_suite_max_per_set)
    overlay_dir = out / "overlay"
    overlay_dir.mkdir(exist_ok=True)

    rows: list[dict[str, Any]] = []
    model_dir: Path | None = None
    rng = random.Random(cfg.seed)
    for rnd in range(cfg.rounds + 1):
        t0 = time.time()
        rdir = out / f"round_{rnd}"
        guard = guard_factory(model_dir)
        say(f"round {rnd}: evaluating {getattr(guard, 'model_id', guard)} on "
            f"{len(eval_harmful)} harmful / {len(eval_benign)} benign evaluation prompts")
        ev = run_redteam(guard, eval_harmful, attacks, benign=eval_benign, seed=cfg.seed,
                         batch_size=cfg.batch_size, progress=cfg.progress, notify=lambda m: None)
        ev_summary = write_report(ev, rdir / "eval", heldout_classes=holdout, attempts=False)
        row = _eval_row(rnd, ev, ev_summary, holdout, model_dir)
        if suite_runner is not None:
            spec = str(model_dir) if model_dir is not None else cfg.guard
            row["suite"] = suite_runner(spec, rdir / "suite")
            pooled = row["suite"].get("pooled") or {}
            row["suite_recall"], row["suite_fpr"] = pooled.get("recall"), pooled.get("fpr")
        if rnd < cfg.rounds:
            sample = rng.sample(train_harm, min(cfg.sample, len(train_harm)))
            bsample = rng.sample(twin_pool, min(cfg.benign_sample, len(twin_pool)))
            say(f"round {rnd}: mining bypasses on {len(sample)} harmful and false positives on "
                f"{len(bsample)} benign training prompts with {len(train_attacks)} attacks "
                f"(held out: {', '.join(holdout) or 'none'})")
            mine = run_redteam(guard, sample, train_attacks, benign=bsample,
                               seed=cfg.seed * 1000 + rnd + 1, batch_size=cfg.batch_size,
                               progress=cfg.progress, notify=lambda m: None)
            mine_summary = write_report(mine, rdir / "mine", attempts=False)
            recs = bypass_records(mine, benign_pool=twin_pool, options=cfg.options,
                                  round_=rnd + 1, allowed_classes=allowed)
            fps = false_positive_records(mine, options=cfg.options, round_=rnd + 1,
                                         allowed_classes=allowed)
            stats = write_records([*recs, *fps], overlay_dir / f"round_{rnd + 1}.jsonl")
            row["mined"] = {"prompts": len(sample), "benign_prompts": len(bsample),
                            "attempts": mine_summary["overall"]["attempts"],
                            "bypass_rate": mine_summary["overall"]["bypass_rate"],
                            "fpr": _fpr(mine),
                            "bypasses": stats.bypasses, "twins": stats.twins - len(fps),
                            "false_positives": len(fps),
                            "canonicalizer_gaps": canonicalizer_gaps(mine)}
            say(f"round {rnd}: {stats.bypasses} bypasses + {stats.twins - len(fps)} twins + "
                f"{len(fps)} false positives -> {stats.path}; rebuilding training data and "
                "retraining")
            data_dir = builder(overlay_dir, rdir / "data")
            model_dir = trainer(data_dir, out / "models" / f"round_{rnd + 1}")
        row["seconds"] = round(time.time() - t0, 1)
        rows.append(row)
        _write_log(rows, out)
    if rows:
        base, last = rows[0], rows[-1]
        for key in ("eval_fpr", "suite_fpr"):
            if base.get(key) is not None and last.get(key) is not None:
                delta = last[key] - base[key]
                if delta > 0.005:
                    say(f"warning: {key} rose by {100 * delta:.2f} points over the loop "
                        "(target: at most 0.5)")
    return LoopLog(rows, out)


def _fpr(result: RedteamResult) -> float | None:
    """Share of attacked benign prompts (identity excluded) the guard flagged."""
    ben = [a for a in result.attempts if a.label == "safe" and a.attack != "identity"
           and a.predicted != "error"]
    return sum(a.false_positive for a in ben) / len(ben) if ben else None


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def _eval_row(rnd: int, ev: RedteamResult, s: dict[str, Any], holdout: tuple[str, ...],
              model_dir: Path | None) -> dict[str, Any]:
    per = {r["attack"]: r for r in s["per_attack"]}
    ident = per.get("identity", {})
    info = {a["name"]: a for a in s["attacks"]}
    trained = [r for n, r in per.items()
               if n != "identity" and not set(info[n]["classes"]) & set(holdout)]
    n = sum(r["n"] for r in trained)
    nb = sum(r["n_benign"] for r in trained)
    return {
        "round": rnd,
        "model": str(model_dir) if model_dir is not None else ev.guard,
        "eval_recall": None if ident.get("bypass_rate") is None else 1 - ident["bypass_rate"],
        "eval_fpr": ident.get("fpr"),
        "bypass_rate": (sum(r["bypassed"] for r in trained) / n) if n else None,
        "heldout_bypass_rate": s["targets"].get("heldout", {}).get("measured"),
        "attacked_fpr": (sum(r["fp"] for r in trained) / nb) if nb else None,
        "worst_single": s["targets"].get("single", {}).get("measured"),
        "worst_chain": s["targets"].get("chain", {}).get("measured"),
        "per_attack": {r["attack"]: r["bypass_rate"] for r in s["per_attack"]},
    }


def _pct(x: Any) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def render_log_markdown(rows: Sequence[dict[str, Any]]) -> str:
    suite = any("suite" in r for r in rows)
    head = ["round", "eval recall", "eval FPR", "bypass (trained classes)", "bypass (held-out)",
            "worst single", "worst chain", "FPR under attack"]
    if suite:
        head += ["suite recall", "suite FPR"]
    head += ["mined bypasses", "s"]
    out = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    for r in rows:
        mined = r.get("mined")
        m = (f"{mined['bypasses']} (+{mined['twins']} twins, "
             f"+{mined.get('false_positives', 0)} false positives)" if mined else "—")
        cells = [str(r["round"]), _pct(r["eval_recall"]), _pct(r["eval_fpr"]),
                 _pct(r["bypass_rate"]), _pct(r["heldout_bypass_rate"]),
                 _pct(r["worst_single"]), _pct(r["worst_chain"]), _pct(r["attacked_fpr"])]
        if suite:
            cells += [_pct(r.get("suite_recall")), _pct(r.get("suite_fpr"))]
        cells += [m, str(r.get("seconds", ""))]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


def _write_log(rows: Sequence[dict[str, Any]], out: Path) -> None:
    with (out / "rounds.jsonl").open("w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    (out / "rounds.md").write_text("# Red-team loop\n\n" + render_log_markdown(rows),
                                   encoding="utf-8")
