"""``MODEL_CARD.md`` of the embedded guard, generated from its artifact and an evaluation run.

Inputs: the artifact directory (``embedded.json`` plus the files it lists, whose sha256
and digest are verified), the ``results.json`` that ``haloguard eval`` wrote, and
optionally the JSON of ``benchmarks/bench_classify.py --json``.  Every figure in the card
is read from those inputs; the only timestamp is the run's own ``created``.  The same
inputs give the same card byte for byte.

The card refuses (:class:`ModelCardError`) to describe an artifact with numbers of a
different model: the guard's ``model`` in ``results.json`` (``model_id@digest``, as
``haloguard eval`` records it) must be this artifact.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from haloguard.eval import failures as F
from haloguard.eval import report as R

_TARGET_RE = re.compile(r"^\s*(\S+)\s*(≥|≤|>=|<=)\s*([0-9.eE+-]+)\s*$")
#: options of `train embedded` / TrainConfig fields that are not recorded hyper-parameters
RUNTIME_ONLY = {"threads", "cache", "data", "out", "tokenizer"}
#: figures of benchmarks/bench_classify.py --json: key -> (label, unit, digits)
BENCH_KEYS = {
    "cold_start_s": ("cold start (import + load + first call)", "s", 2),
    "median_latency_ms": ("median latency, batch 1", "ms", 2),
    "throughput_b32": ("throughput, batch 32", "prompts/s", 0),
    "canonicalizer_ratio": ("canonicalizer overhead (on / off)", "×", 3),
}
VAL_LABELS = {"n_pos": "harmful rows", "n_neg": "benign rows", "precision": "Precision",
              "recall": "Recall", "f1": "F1", "fpr": "FPR", "auc": "AUROC",
              "category_top1": "Category top-1 (harmful rows)",
              "jailbreak_auc": "Jailbreak overlay AUROC",
              "prompt_injection_auc": "Prompt-injection overlay AUROC"}
#: how the card names the packaged artifact directory (relative to the repository)
DEFAULT_LABEL = "src/haloguard/models/embedded"
POOLED_METRICS = ("precision", "recall", "f1", "fpr", "auroc", "auprc", "ece")


class ModelCardError(Exception):
    """Missing or malformed input; the message is one line for the CLI."""


# -- reading ----------------------------------------------------------------------------
def _read_json(path: Path, what: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelCardError(f"{what} not found: {path}") from None
    except OSError as exc:
        raise ModelCardError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelCardError(f"{what} {path} is not valid JSON: {exc.msg} "
                             f"at line {exc.lineno}") from None


def _need(d: Any, keys: Sequence[str], where: str, types: type | tuple[type, ...] = object) -> None:
    if not isinstance(d, Mapping):
        raise ModelCardError(f"{where} is not an object")
    for k in keys:
        if k not in d:
            raise ModelCardError(f"{where} has no {k!r}")
        if not isinstance(d[k], types):
            raise ModelCardError(f"{where}: {k!r} has the wrong type")


def load_results(eval_dir: str | Path) -> dict[str, Any]:
    """``results.json`` of an ``haloguard eval`` run, checked for what the card reads."""
    d = Path(eval_dir)
    if not d.is_dir():
        raise ModelCardError(f"--eval {d}: not a directory (an `haloguard eval --out` folder)")
    res = _read_json(d / "results.json", "results.json")
    where = f"{d / 'results.json'}"
    _need(res, ("suite", "guards", "sets"), where)
    _need(res, ("guards", "sets"), where, dict)
    if not res["sets"] or not res["guards"]:
        raise ModelCardError(f"{where} has no sets or no guards")
    for g, info in res["guards"].items():
        _need(info, ("model", "threshold"), f"{where}: guards.{g}")
    for name, e in res["sets"].items():
        _need(e, ("n", "targets", "guards"), f"{where}: sets.{name}")
        for g in res["guards"]:
            _need(e["guards"], (g,), f"{where}: sets.{name}.guards")
            _need(e["guards"][g], ("kind", "targets"), f"{where}: sets.{name}.guards.{g}")
    return res


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_artifact(model_dir: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``embedded.json`` and its files (name, path, bytes, sha256), verified against it."""
    d = Path(model_dir)
    meta = _read_json(d / "embedded.json", "embedded.json")
    where = f"{d / 'embedded.json'}"
    _need(meta, ("model_id", "digest", "design", "threshold", "threshold_rule", "calibration",
                 "files", "train_config", "training_data", "metrics"), where)
    _need(meta["files"], (), f"{where}: files")
    own = d / "embedded.json"
    files = [{"name": "embedded.json", "path": "embedded.json", "bytes": own.stat().st_size,
              "sha256": _sha256(own)}]
    recorded = {}
    for name, f in sorted(meta["files"].items()):
        _need(f, ("path", "sha256"), f"{where}: files.{name}")
        p = d / f["path"]
        if not p.is_file():
            raise ModelCardError(f"artifact file {p} listed in embedded.json is missing")
        sha = _sha256(p)
        if sha != f["sha256"]:
            raise ModelCardError(f"{p} does not match embedded.json (sha256 {sha[:12]}…, "
                                 f"recorded {str(f['sha256'])[:12]}…)")
        recorded[name] = sha
        files.append({"name": name, "path": f["path"], "bytes": p.stat().st_size, "sha256": sha})
    digest = hashlib.sha256(json.dumps(recorded, sort_keys=True).encode()).hexdigest()
    if digest != meta["digest"]:
        raise ModelCardError(f"{where}: digest {str(meta['digest'])[:12]}… does not match its "
                             f"files ({digest[:12]}…)")
    return meta, files


def load_bench(path: str | Path) -> dict[str, Any]:
    """The JSON ``benchmarks/bench_classify.py --json FILE`` writes."""
    b = _read_json(Path(path), "benchmark JSON")
    if not isinstance(b, Mapping) or not any(k in b for k in BENCH_KEYS):
        raise ModelCardError(f"{path}: not a bench_classify.py --json file "
                             f"(expected keys {', '.join(BENCH_KEYS)})")
    for k in BENCH_KEYS:
        if k in b and (isinstance(b[k], bool) or not isinstance(b[k], (int, float))):
            raise ModelCardError(f"{path}: {k!r} is not a number")
    return dict(b)


def artifact_model(meta: Mapping[str, Any]) -> str:
    """The model string ``haloguard eval`` records for this artifact."""
    return f"{meta['model_id']}@{str(meta['digest'])[:12]}"


def pick_guard(results: Mapping[str, Any], meta: Mapping[str, Any], guard: str | None) -> str:
    """The run's guard that is this artifact (``--guard`` or the one whose model matches)."""
    want = artifact_model(meta)
    guards = results["guards"]
    if guard is None:
        match = [g for g, info in guards.items() if info["model"] == want]
        if not match:
            raise ModelCardError(f"no guard of the run is this artifact ({want}); guards: "
                                 + ", ".join(f"{g} = {i['model']}" for g, i in guards.items()))
        guard = match[0]
    if guard not in guards:
        raise ModelCardError(f"--guard {guard!r} is not in the run (guards: {', '.join(guards)})")
    if guards[guard]["model"] != want:
        raise ModelCardError(f"guard {guard!r} of the run is {guards[guard]['model']}, not this "
                             f"artifact ({want}); pass the matching --model or --guard")
    return guard


# -- formatting helpers -----------------------------------------------------------------
def _num(v: Any, digits: int = 3) -> str:
    if v is None or isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return "—"
    return str(v) if isinstance(v, int) else f"{v:.{digits}f}"


def _ci(d: Mapping[str, Any], metric: str) -> str:
    ci = (d.get("ci95") or {}).get(metric)
    return f" ({ci[0]:.3f}–{ci[1]:.3f})" if ci and None not in ci else ""


def _g(v: Any) -> str:
    return json.dumps(v) if not isinstance(v, str) else v


def parse_target(s: str) -> tuple[str, str, float]:
    m = _TARGET_RE.match(str(s))
    if not m:
        raise ModelCardError(f"results.json: cannot read target {s!r}")
    op = {">=": "≥", "<=": "≤"}.get(m.group(2), m.group(2))
    return m.group(1), op, float(m.group(3))


def target_gap(target: str, value: Any) -> float | None:
    """How far ``value`` is from ``target`` (positive = missed by that much)."""
    if value is None:
        return None
    _, op, goal = parse_target(target)
    return goal - float(value) if op == "≥" else float(value) - goal


def _mark(met: Any) -> str:
    return "—" if met is None else ("✓ met" if met else "✗ missed")


def _eval_only_line(results: Mapping[str, Any]) -> str:
    not_eval = [n for n, e in results["sets"].items() if e.get("eval_only") is not True]
    if not not_eval:
        return "Every set is marked evaluation-only in its suite (never trained or tuned on). "
    return "Not marked evaluation-only: " + ", ".join(f"`{n}`" for n in not_eval) + ". "


def _val_rows(ent: Mapping[str, Any]) -> str:
    """'5 harmful of 131 val rows' (artifacts before n_pos: '131 val rows in all')."""
    if ent.get("n_pos") is not None:
        return f"{ent['n_pos']} harmful of {ent.get('n')} val rows"
    return f"{ent.get('n')} val rows in all, harmful and benign"


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> list[str]:
    align = align or "|" + "---|" * len(head)
    return ["| " + " | ".join(head) + " |", align] + ["| " + " | ".join(r) + " |" for r in rows]


# -- the eval command -------------------------------------------------------------------
def eval_command(results: Mapping[str, Any], meta: Mapping[str, Any], guard: str,
                 out: str = "runs/eval") -> tuple[str, list[str]]:
    """The ``haloguard eval`` command line of the run, rebuilt from results.json.

    results.json records no command line; this rebuilds it from the suite, the sets
    (evaluated and skipped), the guards, the baseline, the sample cap and the thresholds.
    Returns the command and notes on what results.json cannot tell.
    """
    if isinstance(results.get("command"), str):
        return results["command"], []
    from haloguard.eval import suites

    notes: list[str] = []
    skipped = results.get("skipped") or {}
    sets = list(results["sets"]) + [k for k in skipped if not k.startswith("guard ")]
    args: list[tuple[str, ...]] = [("haloguard", "eval")]
    try:
        suite = suites.load_suite(str(results["suite"]))
        args.append(("--suite", str(results["suite"])))
        if sorted(sets) != sorted(s.name for s in suite.sets):
            order = [s.name for s in suite.sets if s.name in sets]
            args.append(("--sets", ",".join(order + [s for s in sets if s not in order])))
    except (KeyError, ValueError, OSError):
        args.append(("--data", f"PATH/TO/{results['suite']}.jsonl"))
        versions = ", ".join(str(e.get("data_version")) for e in results["sets"].values())
        notes.append(f"`--data`: the labelled file of the run (data version {versions}).")
    guards = list(results["guards"])
    args += [("--guard", g) for g in guards]
    base = results.get("baseline")
    if len(guards) > 1 and base in guards:
        args.append(("--baseline", base))
    caps = {(e.get("sample") or {}).get("max_per_set") for e in results["sets"].values()}
    caps.discard(None)
    if len(caps) == 1:
        args.append(("--max-per-set", str(caps.pop())))
    elif caps:
        notes.append("the sets were sampled with different caps: "
                     + ", ".join(map(str, sorted(caps))))
    thr = {float(i["threshold"]) for i in results["guards"].values()}
    own = float(results["guards"][guard]["threshold"])
    if own != float(meta["threshold"]):
        if len(thr) == 1:
            args.append(("--threshold", _g(own)))
        else:
            notes.append(f"`{guard}` ran at threshold {own:g}, not the artifact's "
                         f"{float(meta['threshold']):g} (a `--calibration` file whose path "
                         "results.json does not record).")
    args.append(("--out", out))
    n_boot = _subparser("eval").get_default("n_boot")
    notes.append("results.json does not record `--n-boot`; the 95% CIs depend on it "
                 f"(default {n_boot}).")
    lines, cur = [], ""
    for group in args:
        tok = " ".join(a if re.fullmatch(r"[A-Za-z0-9_./:,=@+-]+", a) else json.dumps(a)
                       for a in group)
        if cur.strip() and len(cur) + len(tok) > 84:
            lines.append(cur)
            cur = "    "
        cur = f"{cur} {tok}" if cur.strip() else cur + tok
    lines.append(cur)
    return " \\\n".join(lines), notes


def _subparser(*names: str) -> argparse.ArgumentParser:
    """The parser of ``haloguard NAME [NAME ...]`` (options and defaults as the CLI has them)."""
    from haloguard.cli.main import build_parser

    p = build_parser()
    for name in names:
        # argparse keeps its subparsers among the actions
        acts = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
        if not acts or name not in acts[0].choices:
            raise KeyError(f"no `{name}` subcommand")
        p = acts[0].choices[name]
    return p


def train_flags() -> dict[str, str]:
    """``train_config`` key -> option of ``haloguard train embedded``, read from its parser."""
    p = _subparser("train", "embedded")
    return {a.dest: a.option_strings[-1] for a in p._actions
            if a.option_strings and a.dest not in RUNTIME_ONLY}


def _flag_value(v: Any) -> str:
    """A recorded setting as its option takes it (a list is comma-separated: ``e5,use``)."""
    return ",".join(map(str, v)) if isinstance(v, (list, tuple)) else _g(v)


def train_command(meta: Mapping[str, Any], model_dir_label: str) -> tuple[str, list[str]]:
    """``haloguard train embedded`` with the recorded hyper-parameters that have a flag.

    Notes say what the command cannot pin: recorded settings without a flag that differ
    from the trainer's defaults, and settings the trainer has that the artifact does not
    record (a newer trainer's default would apply).
    """
    from dataclasses import asdict

    cfg = meta["train_config"]
    if not isinstance(cfg, Mapping):
        raise ModelCardError("embedded.json: train_config is not an object")
    args = ["haloguard train embedded --data build/corpus", f"--out {model_dir_label}"]
    try:
        from haloguard.train.embedded import TrainConfig

        flags = train_flags()
        defaults = {k: (list(v) if isinstance(v, tuple) else v)
                    for k, v in asdict(TrainConfig()).items() if k not in RUNTIME_ONLY}
    except (ImportError, KeyError) as exc:  # the trainer cannot be inspected here
        note = f"could not read the trainer's options ({exc}); set the train_config by hand"
        return " ".join(args), [note]
    args += [f"{flag} {_flag_value(cfg[k])}" for k, flag in flags.items() if k in cfg]
    notes = []
    differ = [k for k in sorted(cfg) if k not in flags and k in defaults and cfg[k] != defaults[k]]
    if differ:
        notes.append("recorded settings without a flag that differ from the trainer's defaults "
                     "(set them in `TrainConfig` to reproduce): "
                     + ", ".join(f"{k}={_g(cfg[k])} (default {_g(defaults[k])})"
                                 for k in differ))
    unrecorded = [k for k in defaults if k not in cfg]
    if unrecorded:
        notes.append("the trainer has settings this artifact's train_config does not record "
                     "(it was trained before they existed; the command above would apply "
                     "today's defaults): "
                     + ", ".join(f"{k} (default {_g(defaults[k])}"
                                 + (f", flag `{flags[k]}`" if k in flags else "") + ")"
                                 for k in unrecorded))
    unknown = [k for k in sorted(cfg) if k not in defaults]
    if unknown:
        notes.append("recorded settings the current trainer does not know: "
                     + ", ".join(f"{k}={_g(cfg[k])}" for k in unknown))
    return " \\\n    ".join(_wrap(args)), notes


def _wrap(groups: Sequence[str], width: int = 84) -> list[str]:
    lines, cur = [], ""
    for tok in groups:
        if cur and len(cur) + len(tok) > width:
            lines.append(cur)
            cur = ""
        cur = f"{cur} {tok}" if cur else tok
    return lines + [cur]


# -- the card ---------------------------------------------------------------------------
def render(results: Mapping[str, Any], meta: Mapping[str, Any],
           files: Sequence[Mapping[str, Any]], guard: str, *,
           bench: Mapping[str, Any] | None = None, model_dir_label: str = DEFAULT_LABEL,
           denoised: Mapping[str, Any] | None = None) -> str:
    """The card's Markdown (inputs already loaded and checked; ``denoised``: the
    :func:`haloguard.eval.adjudicate.denoised` figures of reviewed items plus ``files``)."""
    try:
        card = _Card(results, meta, files, guard, bench, model_dir_label)
        card.review_files = list((denoised or {}).get("files", []))
        parts = [card.summary(), card.architecture(), card.artifact(), card.training_data(),
                 card.training(), card.calibration(), card.validation(), card.evaluation(),
                 _denoised_section(denoised), card.side_by_side(), card.failures(),
                 card.speed(), card.limitations(), card.reproduce()]
    except ModelCardError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise ModelCardError(f"malformed input ({type(exc).__name__}: {exc})") from None
    return "\n".join(line for part in parts for line in part).rstrip() + "\n"


def _denoised_section(d: Mapping[str, Any] | None) -> list[str]:
    """Raw vs de-noised figures of the sets a review relabelled (none: no section); with
    ``d["others"]`` (the other guards' figures) a side-by-side of every guard on them."""
    if not d or not d.get("mislabels"):
        return []
    rows, sets = [], []
    for s, e in d["sets"].items():
        if not e.get("mislabels"):
            continue
        sets.append(s)
        r, dn = e["raw"], e["denoised"]
        moved = ", ".join(f"{n} → {k}" for k, n in (e.get("relabelled") or {}).items())
        rows.append((s, moved or str(e["mislabels"]), _num(r.get("recall")),
                     _num(dn.get("recall")), _num(r.get("fpr")), _num(dn.get("fpr")),
                     _num(r.get("f1")), _num(dn.get("f1"))))
    files = ", ".join(f"`{f}`" for f in d.get("files", []))
    out = ["## De-noised figures (reviewed benchmark labels)", "",
           (f"Items a review marked as benchmark mislabels ({files}) relabelled; every other "
            "item keeps its label. The targets above are judged on the raw labels. Recall and "
            "FPR are over the set's unsafe and safe items as labelled in each column, so a "
            "benign-only set with items moved to unsafe gains a recall, and a harmful-only set "
            "with items moved to safe gains an FPR."),
           "", *_table(["Set", "Relabelled", "Recall (raw)", "Recall (de-noised)", "FPR (raw)",
                        "FPR (de-noised)", "F1 (raw)", "F1 (de-noised)"], rows,
                       "|---|---|---:|---:|---:|---:|---:|---:|"), ""]
    others = d.get("others") or {}
    if others:
        guards = [d["guard"], *others]
        figs = {d["guard"]: d, **others}

        def cell(g: str, s: str) -> str:
            m = figs[g]["sets"].get(s, {}).get("denoised") or {}
            return f"{_num(m.get('recall'))} / {_num(m.get('fpr'))}"
        out += ["Every guard of the run on the relabelled sets, de-noised (recall / FPR):", "",
                *_table(["Set", *(f"`{g}`" for g in guards)],
                        [(s, *(cell(g, s) for g in guards)) for s in sets],
                        "|---|" + "---:|" * len(guards)), ""]
    return out


def _lang_order(d: Mapping[str, Mapping[str, Any]]) -> list[str]:
    return sorted(d, key=lambda lang: (-int(d[lang].get("n") or 0), lang))


class _Card:
    """One section per method, each a list of Markdown lines."""

    def __init__(self, results: Mapping[str, Any], meta: Mapping[str, Any],
                 files: Sequence[Mapping[str, Any]], guard: str,
                 bench: Mapping[str, Any] | None, model_dir_label: str) -> None:
        self.res, self.meta, self.files, self.guard = results, meta, files, guard
        self.bench, self.model_dir_label = bench, model_dir_label
        self.val = meta["metrics"].get("val") or {}
        self.by_lang = self.val.get("by_lang") or {}
        self.pooled = (results.get("pooled") or {}).get(guard) or {}
        self.fails = (results.get("failures") or {}).get(guard) or {}
        #: every target of the guard, in set order: (set, {"target", "value", "met"})
        self.targets = [(name, t) for name, e in results["sets"].items()
                        for t in e["guards"][guard].get("targets", [])]
        self.n_met = sum(1 for _, t in self.targets if t.get("met") is True)
        self.n_missed = sum(1 for _, t in self.targets if t.get("met") is False)
        self.train_cmd, self.train_notes = train_command(meta, model_dir_label)
        self.review_files: list[str] = []

    def summary(self) -> list[str]:
        m, r = self.meta, self.res
        cats, overlays = m.get("categories") or [], m.get("overlays") or []
        source = (f"suite `{r['suite']}`, run created {r.get('created', '—')} on host "
                  f"`{r.get('host', '—')}`")
        bench = ", and a `bench_classify.py --json` file" if self.bench else ""
        missed = f" and misses {self.n_missed}" if self.n_missed else ""
        return [
            f"# Model card — `{m['model_id']}` (digest `{str(m['digest'])[:12]}`)", "",
            (f"*Generated by `haloguard model-card` from the artifact's `embedded.json` and the "
             f"`results.json` of `haloguard eval` ({source}){bench}. Every figure is read from "
             "those files; regenerate rather than edit.*"), "",
            "## Summary", "",
            (f"- **What:** haloguard's embedded default guard (`{artifact_model(m)}`), a CPU "
             f"input-prompt safety classifier. Design: {m['design']}."),
            f"- **Output:** calibrated p(unsafe) (unsafe at ≥ {float(m['threshold']):g}), the "
            f"top of {len(cats)} constitution categories, and the overlays "
            + (", ".join(f"`{o}`" for o in overlays) or "—") + ".",
            ("- **Intended use:** screening *input prompts* (user turns) to an LLM application "
             "before they reach the model: block, route or log requests for harmful help."),
            ("- **Out of scope:** moderating model *outputs* or whole conversations as the sole "
             "check; legal or policy decisions without human review; languages and domains the "
             "evaluation below does not cover; adversarial settings beyond the sets below."),
            (f"- **Evaluation in one line:** `{self.guard}` meets {self.n_met} of "
             f"{len(self.targets)} targets of the `{r['suite']}` suite{missed} "
             "(see *Limitations*)."), ""]

    def architecture(self) -> list[str]:
        m = self.meta
        enc, hsh = m.get("encoder") or {}, m.get("hash") or {}
        tok, cats = m.get("tokenizer_source") or {}, m.get("categories") or []
        rows = [("Design", m["design"])]
        if enc:
            rows += [("Encoder", (f"`{enc.get('package', '—')}` (used: {_g(enc.get('used'))}), "
                                 f"{enc.get('dtype', '—')}, {enc.get('pooling', '—')} pooling, "
                                 f"normalize {_g(enc.get('normalize'))}, "
                                 f"max length {enc.get('max_length', '—')}")),
                     ("Encoder ONNX sha256", f"`{enc.get('onnx_sha256') or '—'}`")]
        if hsh:
            rows += [("Hashed features",
                      (f"{hsh.get('features', '—')}; 2^{hsh.get('bits', '—')} buckets, "
                       f"n-gram range {_g(hsh.get('ngram_range'))}"))]
        if tok:
            rows += [("Base model / tokenizer",
                      (f"`{tok.get('model', '—')}` via `{tok.get('package', '—')}` "
                       f"(`{tok.get('file', '—')}`); licence: {tok.get('license', '—')}"))]
        ml = m.get("multilingual") or {}
        if ml:
            shas = dict(ml.get("encoder_sha256") or {})
            if ml.get("model_sha256"):  # artifacts from before the branch named its encoders
                shas.setdefault("e5", ml["model_sha256"])
            sha_txt = ", ".join(f"{n} `{h}`" for n, h in sorted(shas.items())) or "—"
            rows += [("Multilingual branch",
                      (f"{ml.get('model', '—')} from `{ml.get('package', '—')}` (weights sha256 "
                       f"{sha_txt}; licence: {ml.get('license', '—')}); "
                       f"runs on windows whose letters are >= {ml.get('route_min_non_latin_share', '—')} "
                       f"non-Latin script; {ml.get('combine', '—')} (w_main {ml.get('w_main', '—')}, "
                       f"w_ml {ml.get('w_ml', '—')}, bias {ml.get('bias', '—')}; fitted on "
                       f"{ml.get('fitted_on', '—')})"))]
        rows += [("Categories", f"{len(cats)}: " + ", ".join(f"`{c}`" for c in cats)),
                 ("Artifact format",
                  f"`{m.get('format', '—')}` version {m.get('version', '—')}")]
        return ["## Architecture and provenance", "",
                *_table(["", ""], [(f"**{k}**", str(v)) for k, v in rows]), ""]

    def artifact(self) -> list[str]:
        total = sum(int(f["bytes"]) for f in self.files)
        pkg = (self.meta.get("encoder") or {}).get("package")
        ml_pkg = (self.meta.get("multilingual") or {}).get("package")
        rows = [(f"`{f['path']}`", f"{int(f['bytes']):,}", f"`{f['sha256']}`") for f in self.files]
        return ["## Artifact", "",
                f"Digest `{self.meta['digest']}` (sha256 over the files' sha256, verified against "
                f"the files). Size {total:,} bytes ({total / 2**20:.2f} MiB) in "
                f"{len(self.files)} files"
                + (f"; the encoder weights come from the pinned package `{pkg}`" if pkg else "")
                + (f", the multilingual branch's from `{ml_pkg}`." if ml_pkg else "."),
                "", *_table(["File", "Bytes", "sha256"], rows, "|---|---:|---|"), ""]

    def training_data(self) -> list[str]:
        td, mets = self.meta["training_data"], self.meta["metrics"]
        names = sorted(td.get("files") or {})
        data = [n for n in names if n.endswith(".jsonl")] or names
        rows = [(f"`{n}`", f"`{td['files'][n]}`") for n in names]
        rows.append(("combined", f"`{td.get('sha256', '—')}`"))
        return ["## Training data", "",
                ("Built by `haloguard data build` from the pinned sources in "
                 "`src/haloguard/data/sources.yaml`; rows colliding (exact or near-duplicate) with "
                 "any evaluation set are dropped at build time."), "",
                *_table(["File", "sha256"], rows), "",
                (f"Rows used: {_num(mets.get('train_rows'))} training rows (after the per-source "
                 f"cap and augmentation of `train_config`), {_num(mets.get('val_rows'))} "
                 f"validation rows ({_num(self.val.get('n_pos'))} harmful, "
                 f"{_num(self.val.get('n_neg'))} benign)."), "",
                "```bash", "haloguard data fetch", "haloguard data build --out build/corpus",
                ("sha256sum build/corpus/" + (f"{{{','.join(data)}}}" if len(data) > 1 else data[0])
                 + "   # compare with the table"),
                "```", "",
                *([("`manifest.json` also holds the hashes of the build's coverage report, so it "
                    "changes when the report's layout does even if the training rows do not; "
                    "the `.jsonl` files are what the model was trained and calibrated on."), ""]
                  if "manifest.json" in names else [])]

    def training(self) -> list[str]:
        tt, cfg = self.meta.get("training_time") or {}, self.meta["train_config"]
        out = ["## Training", "", "```bash", self.train_cmd, "```", ""]
        out += [f"- {n}" for n in self.train_notes]
        if tt:
            out.append(f"- Measured training time (recorded by the trainer): "
                       f"{_num(tt.get('total_s'), 1)} s in all ({_num(tt.get('featurize_s'), 1)} s "
                       f"features incl. the encoder pass, {_num(tt.get('fit_s'), 1)} s fitting "
                       "the heads). The record does not say whether an embedding `--cache` from "
                       "an earlier run shortened the feature step.")
        rows = [(f"`{k}`", f"`{_g(cfg[k])}`") for k in sorted(cfg)]
        return out + ["", "<details><summary>train_config</summary>", "",
                      *_table(["Setting", "Value"], rows), "", "</details>", ""]

    def calibration(self) -> list[str]:
        cal, thr = self.meta["calibration"], float(self.meta["threshold"])
        used = float(self.res["guards"][self.guard]["threshold"])
        ran = (f"this threshold ({used:g})." if used == thr
               else f"threshold {used:g}, **not** the artifact's.")
        return ["## Calibration and operating threshold", "",
                (f"- Calibration: {cal.get('kind', '—')} (temperature "
                 f"{_num(cal.get('temperature'), 4)}, bias {_num(cal.get('bias'), 4)}), fitted on "
                 f"`{cal.get('fitted_on', '—')}`."),
                (f"- Threshold: **{thr:g}** — {self.meta['threshold_rule']}. Chosen on the "
                 "validation split of the training build only; no evaluation set is used for "
                 "calibration or threshold choice."),
                f"- The evaluation below ran at {ran}", ""]

    def validation(self) -> list[str]:
        val, bl = self.val, self.by_lang
        fitted = self.meta["calibration"].get("fitted_on", "val")
        keys = [k for k in VAL_LABELS if k in val] + [k for k in val if k not in VAL_LABELS]
        rows = [(VAL_LABELS.get(k, k), _num(val[k], 4)) for k in keys
                if k != "by_lang" and isinstance(val[k], (int, float))]
        out = [f"## Validation metrics (`{fitted}`, at the threshold)", "",
               *_table(["Metric", "Value"], rows, "|---|---:|"), ""]
        if bl:
            rows = [(f"`{lang}`", _num(bl[lang].get("n")), _num(bl[lang].get("recall"), 4),
                     _num(bl[lang].get("fpr"), 4)) for lang in _lang_order(bl)]
            out += [("Per language (recall on harmful rows, FPR on benign rows; "
                    "— = no such rows):"), "",
                    *_table(["Language", "n", "Recall", "FPR"], rows, "|---|---:|---:|---:|"), ""]
        return out

    def evaluation(self) -> list[str]:
        rows = []
        for name, e in self.res["sets"].items():
            d = e["guards"][self.guard]
            n = str(e["n"])
            full = (e.get("sample") or {}).get("full_size")
            if full and full > e["n"]:
                n += f" of {full}"
            if not d.get("targets"):
                metric = R.headline(d["kind"])
                rows.append((name, n, d["kind"], metric, _num(d.get(metric)) + _ci(d, metric),
                             "—", "—", "—"))
            for t in d.get("targets") or []:
                metric = parse_target(t["target"])[0]
                gap = target_gap(t["target"], t.get("value"))
                rows.append((name, n, d["kind"], metric, _num(t.get("value")) + _ci(d, metric),
                             t["target"], _mark(t.get("met")),
                             f"{gap:.3f}" if gap is not None and t.get("met") is False else "—"))
            if d.get("positive"):
                rows.append((name, n, d["kind"], "recall, safety label alone",
                             _num(d.get("unsafe_label_recall")), "—", "—", "—"))
        attack_sets = [n for n, e in self.res["sets"].items()
                       if e["guards"][self.guard].get("positive") == "unsafe_or_attack"]
        note = (f" On {', '.join(f'`{n}`' for n in attack_sets)} (attacks, most with no "
                "harmful request in them) an item counts as caught when the verdict is Unsafe "
                "or names the attack (`attack_overlay`); the safety label's own recall is the "
                "row below it." if attack_sets else "")
        out = [f"## Evaluation — suite `{self.res['suite']}`", "",
               _eval_only_line(self.res) + "Single-class sets report recall (harmful-only) or "
               "FPR (benign-only); 95% bootstrap CIs in brackets." + note, "",
               *_table(["Set", "n", "Kind", "Metric", f"`{self.guard}`", "Target", "Met", "Gap"],
                       rows, "|---|---:|---|---|---:|---|---|---:|"), ""]
        p = self.pooled
        if p:
            rows = [(m, _num(p.get(m)) + _ci(p, m)) for m in POOLED_METRICS
                    if p.get(m) is not None]
            out += [(f"Pooled over the suite (n={p.get('n')}: {p.get('n_pos')} harmful, "
                    f"{p.get('n_neg')} benign; the mix follows the sets' sizes):"), "",
                    *_table(["Metric", "Value"], rows, "|---|---:|"), ""]
            if p.get("tpr_at_fpr"):
                out += ["Threshold sweep (pooled):", "", R.sweep_table(p), ""]
            pl = p.get("per_language") or {}
            if pl:
                rows = [(f"`{lang}`", _num(pl[lang].get("n_pos")), _num(pl[lang].get("n_neg")),
                         _num(pl[lang].get("recall")), _num(pl[lang].get("fpr")))
                        for lang in _lang_order(pl)]
                out += ["Per language (pooled):", "",
                        *_table(["Language", "n harmful", "n benign", "Recall", "FPR"], rows,
                                "|---|---:|---:|---:|---:|"), ""]
        return out

    def side_by_side(self) -> list[str]:
        guards = self.res["guards"]
        if len(guards) < 2:
            return []
        rows = [(f"`{g}`", f"`{i['model']}`", f"{float(i['threshold']):.4f}")
                for g, i in guards.items()]
        out = ["## Side by side with the other guards of the run", "",
               *_table(["Guard", "Model", "Threshold"], rows, "|---|---|---:|"), "",
               ("Headline figure per set (bold = best; ✓/✗ = target met/missed; [Δ vs "
                f"`{self.res.get('baseline')}`]):"), "", R.main_table(self.res), ""]
        line = R.peer_comparison(self.res)
        return out + ([line, ""] if line else [])

    def failures(self) -> list[str]:
        fa = self.fails
        if not fa:
            return []
        out = ["## Failure analysis", "", F.summary_markdown(fa, self.guard).rstrip(), ""]
        by_set = fa.get("by_set") or {}
        if by_set:
            rows = [(s, str(sum(c.values())), ", ".join(f"{k} {v}" for k, v in c.items()))
                    for s, c in by_set.items()]
            out += ["Failures per set:", "",
                    *_table(["Set", "Failures", "by kind"], rows, "|---|---:|---|"), ""]
        return out

    def speed(self) -> list[str]:
        b = self.bench
        if not b:
            return []
        rows = [(label, f"{_num(b[k], digits)} {unit}")
                for k, (label, unit, digits) in BENCH_KEYS.items() if k in b]
        return ["## Speed", "",
                (f"From `benchmarks/bench_classify.py --json` (model `{b.get('model', '—')}`; "
                 "the JSON does not record the machine; its targets are in the script):"), "",
                *_table(["Measurement", "Value"], rows, "|---|---:|"), ""]

    def limitations(self) -> list[str]:
        lim = []
        for name, t in self.targets:
            if t.get("met") is False:
                gap = target_gap(t["target"], t.get("value"))
                lim.append(f"- `{name}`: missed {t['target']} — measured {_num(t.get('value'))}, "
                           f"gap {gap:.3f}.")
            elif t.get("met") is None:
                lim.append(f"- `{name}`: {t['target']} could not be measured in this run.")
        for k, v in (self.res.get("skipped") or {}).items():
            lim.append(f"- not evaluated — {k}: {v}")
        bl = self.by_lang
        zero = [lang for lang in sorted(bl) if bl[lang].get("recall") == 0]
        if zero:
            lim.append("- Validation recall is 0 on the harmful rows of: "
                       + ", ".join(f"`{lang}` ({_val_rows(bl[lang])})" for lang in zero)
                       + ".")
        pl = self.pooled.get("per_language") or {}
        zero = [lang for lang in sorted(pl)
                if pl[lang].get("n_pos") and pl[lang].get("recall") == 0]
        if zero:
            lim.append("- Evaluation recall is 0 on the harmful items in: "
                       + ", ".join(f"`{lang}` ({pl[lang]['n_pos']} items)" for lang in zero) + ".")
        kinds = self.fails.get("by_kind") or {}
        if kinds and max(kinds.values()):
            kind, k = max(kinds.items(), key=lambda kv: kv[1])
            lim.append(f"- Most frequent failure kind in the run: {kind} "
                       f"({k} of {self.fails.get('total')}).")
        return ["## Limitations", "",
                f"Computed from the run: {self.n_missed} of {len(self.targets)} targets missed"
                + (":" if lim else "."), "", *lim, "",
                ("Figures hold for the sets above, at the stated threshold; other domains, "
                 "languages and attacks are unmeasured here."), ""]

    def reproduce(self) -> list[str]:
        ecmd, notes = eval_command(self.res, self.meta, self.guard)
        first = next(g for g, i in self.res["guards"].items()
                     if i["model"] == artifact_model(self.meta))
        card = ("haloguard model-card --eval runs/eval"
                + (" --bench bench.json" if self.bench else "")
                + (f" --model {self.model_dir_label}" if self.model_dir_label != DEFAULT_LABEL
                   else "")
                + (f" --guard {self.guard}" if self.guard != first else "")
                + "".join(f" --reviews {f}" for f in self.review_files)
                + " --out MODEL_CARD.md")
        out = ["## Reproduce", "", "```bash", "haloguard data fetch",
               "haloguard data build --out build/corpus", self.train_cmd, ecmd]
        if self.bench:
            out.append("python benchmarks/bench_classify.py --json bench.json")
        return out + [card, "```", ""] + [f"- {n}" for n in notes]


def build(eval_dir: str | Path, model_dir: str | Path | None = None, guard: str | None = None,
          bench: str | Path | None = None, reviews: Sequence[str | Path] = ()) -> str:
    """The card's Markdown for an eval run and an artifact directory (default: the embedded
    one); ``reviews``: reviewed-label files (``haloguard eval adjudicate``) for a de-noised
    section."""
    from haloguard.backends.embedded import DEFAULT_MODEL_DIR

    mdir = Path(model_dir) if model_dir else DEFAULT_MODEL_DIR
    if not mdir.is_dir():
        raise ModelCardError(f"--model {mdir}: not a directory")
    try:
        results = load_results(eval_dir)
        meta, files = load_artifact(mdir)
        g = pick_guard(results, meta, guard)
        b = load_bench(bench) if bench else None
    except (KeyError, TypeError, ValueError, AttributeError, OSError) as exc:
        raise ModelCardError(f"malformed input ({type(exc).__name__}: {exc})") from None
    if b is not None and b.get("model") not in (None, artifact_model(meta)):
        raise ModelCardError(f"--bench {bench} measured {b.get('model')}, not this artifact "
                             f"({artifact_model(meta)})")
    label = (DEFAULT_LABEL if mdir.resolve() == DEFAULT_MODEL_DIR.resolve()
             else str(model_dir))
    dn = None
    if reviews:
        from haloguard.eval.adjudicate import denoised

        try:
            dn = {**denoised(eval_dir, g, list(reviews)), "files": [str(f) for f in reviews],
                  "others": {o: denoised(eval_dir, o, list(reviews))
                             for o in results["guards"] if o != g}}
        except (OSError, ValueError, KeyError) as exc:
            raise ModelCardError(f"--reviews: {exc}") from None
    return render(results, meta, files, g, bench=b, model_dir_label=label, denoised=dn)
