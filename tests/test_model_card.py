"""``haloguard model-card``: MODEL_CARD.md generated from the artifact and an eval run."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from haloguard.cli.main import main
from haloguard.eval import model_card as MC

FIX = Path(__file__).parent / "fixtures" / "eval"


def _artifact(d: Path) -> dict:
    """A small embedded-style artifact: files + embedded.json with their sha256 and digest."""
    d.mkdir(parents=True)
    files = {}
    for key, name, data in (("weights", "weights.npz", b"w" * 1000),
                            ("tokenizer", "tokenizer.json", b'{"t": 1}'),
                            ("notice", "TOKENIZER_NOTICE.txt", b"notice\n")):
        (d / name).write_bytes(data)
        files[key] = {"path": name, "sha256": hashlib.sha256(data).hexdigest()}
    digest = hashlib.sha256(json.dumps({k: f["sha256"] for k, f in files.items()},
                                       sort_keys=True).encode()).hexdigest()
    meta = {
        "format": "haloguard-embedded", "version": "1", "model_id": "toy-embedded",
        "design": "toy MLP over toy features", "digest": digest, "threshold": 0.4321,
        "threshold_rule": "lowest threshold with benign FPR <= 0.02 on val.jsonl",
        "calibration": {"kind": "platt", "temperature": 0.8765, "bias": -1.2345, "fitted_on": "val.jsonl"},
        "categories": ["violence", "hate_speech"], "overlays": ["jailbreak"],
        "encoder": {"used": True, "package": "toy-encoder==9.9.9", "onnx_sha256": "ab" * 32,
                    "pooling": "mean", "normalize": True, "max_length": 64, "dtype": "int8"},
        "hash": {"bits": 11, "ngram_range": [2, 4], "features": "toy n-grams"},
        "tokenizer_source": {"package": "toy-tok==0.0.1", "file": "tok/tokenizer.json",
                             "model": "toy/base-model", "license": "MIT"},
        "files": files,
        "train_config": {"epochs": 3, "hash_bits": 11, "hidden": 32, "target_fpr": 0.02,
                         "seed": 77, "lr": 0.002, "dropout": 0.3},
        "training_data": {"files": {"train.jsonl": "1" * 64, "val.jsonl": "2" * 64}, "sha256": "3" * 64},
        "training_time": {"featurize_s": 12.3, "fit_s": 45.6, "total_s": 57.9},
        "metrics": {"train_rows": 1234, "val_rows": 567,
                    "val": {"auc": 0.9111, "f1": 0.7222, "fpr": 0.0199, "precision": 0.8333,
                            "recall": 0.6444, "n_pos": 45, "n_neg": 522, "jailbreak_auc": 0.9555,
                            "by_lang": {"en": {"n": 500, "recall": 0.7, "fpr": 0.02},
                                        "ja": {"n": 40, "n_pos": 4, "recall": 0.0, "fpr": 0.0},
                                        "de": {"n": 27, "fpr": 0.0}}}},
    }
    (d / "embedded.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return meta


def _gm(kind, metric, value, targets=(), ci=None):
    d = {"kind": kind, "n": 0, metric: value, "ci95": {metric: ci} if ci else {},
         "targets": [{"target": t, "value": v, "met": m} for t, v, m in targets], "errors": 0}
    return d


def _results(meta: dict) -> dict:
    model = f"{meta['model_id']}@{meta['digest'][:12]}"
    sets = {
        "harmbench": {"n": 50, "data_version": "pkg==1 sha256:aa", "binarise": "all unsafe",
                      "sample": {"max_per_set": 50, "full_size": 200}, "eval_only": True,
                      "targets": ["recall ≥ 0.97"],
                      "guards": {"embedded": _gm("harmful-only", "recall", 0.82,
                                                 [("recall ≥ 0.97", 0.82, False)], [0.7, 0.9]),
                                 "peer:toy": _gm("harmful-only", "recall", 0.31,
                                                 [("recall ≥ 0.97", 0.31, False)])}},
        "donotanswer": {"n": 40, "data_version": "pkg==1 sha256:bb", "binarise": "unsafe",
                        "sample": {"max_per_set": 50, "full_size": 40}, "eval_only": True,
                        "targets": [],
                        "guards": {"embedded": _gm("harmful-only", "recall", 0.555),
                                   "peer:toy": _gm("harmful-only", "recall", 0.125)}},
        "rho_overrefusal": {"n": 30, "data_version": "pkg==1 sha256:cc", "binarise": "all safe",
                            "sample": {"max_per_set": 50, "full_size": 30}, "eval_only": True,
                            "targets": ["fpr ≤ 0.05"],
                            "guards": {"embedded": _gm("benign-only", "fpr", 0.0333,
                                                       [("fpr ≤ 0.05", 0.0333, True)]),
                                       "peer:toy": _gm("benign-only", "fpr", 0.1,
                                                       [("fpr ≤ 0.05", 0.1, False)])}},
    }
    pooled = {"n": 120, "n_pos": 90, "n_neg": 30, "kind": "mixed", "f1": 0.6789, "recall": 0.7012,
              "precision": 0.9,  "fpr": 0.0333, "auroc": 0.8642, "ci95": {"f1": [0.6, 0.75]},
              "tpr_at_fpr": [{"target_fpr": 0.01, "tpr": 0.4, "fpr": 0.0, "threshold": 0.8}],
              "per_language": {"en": {"n": 110, "n_pos": 80, "n_neg": 30, "recall": 0.75, "fpr": 0.0333},
                               "ru": {"n": 10, "n_pos": 10, "n_neg": 0, "recall": 0.0, "fpr": None}}}
    return {
        "suite": "offline", "created": "2030-01-02T03:04:05+00:00", "host": "testhost",
        "baseline": "embedded",
        "guards": {"embedded": {"model": model, "threshold": meta["threshold"]},
                   "peer:toy": {"model": "toy-peer==1.0", "threshold": 0.5}},
        "sets": sets,
        "pooled": {"embedded": pooled, "peer:toy": {**pooled, "f1": 0.2}},
        "failures": {"embedded": {"total": 7, "by_kind": {"intent miss": 6, "false positive": 1},
                                  "by_category": {"violence": {"intent miss": 6},
                                                  "unknown": {"false positive": 1}},
                                  "by_set": {"harmbench": {"intent miss": 6},
                                             "rho_overrefusal": {"false positive": 1}},
                                  "examples": {"intent miss": [{"id": "h1", "set": "harmbench",
                                                                "p_unsafe": 0.12, "text": "toy miss"}]}}},
        "skipped": {"jbb_past_tense": "source not fetched"},
    }


@pytest.fixture
def run(tmp_path):
    meta = _artifact(tmp_path / "model")
    ev = tmp_path / "eval"
    ev.mkdir()
    (ev / "results.json").write_text(json.dumps(_results(meta)), encoding="utf-8")
    return tmp_path, meta


def test_card_content(run, capsys):
    tmp, meta = run
    out = tmp / "MODEL_CARD.md"
    rc = main(["model-card", "--eval", str(tmp / "eval"), "--model", str(tmp / "model"),
               "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    md = out.read_text(encoding="utf-8")
    # summary, provenance, artifact
    assert md.startswith("# Model card — `toy-embedded`")
    assert "run created 2030-01-02T03:04:05+00:00 on host `testhost`" in md
    assert meta["digest"] in md and "toy-encoder==9.9.9" in md and "ab" * 32 in md
    assert "`toy/base-model` via `toy-tok==0.0.1`" in md
    sizes = sum((tmp / "model" / n).stat().st_size for n in
                ("weights.npz", "tokenizer.json", "TOKENIZER_NOTICE.txt", "embedded.json"))
    assert f"Size {sizes:,} bytes" in md and "in 4 files" in md
    # training data and command, training time
    assert "1" * 64 in md and "3" * 64 in md and "1234 training rows" in md and "567 validation rows" in md
    flat = " ".join(md.replace("\\\n", " ").split())
    assert ("haloguard train embedded --data build/corpus --out " + str(tmp / "model")
            + " --epochs 3 --hash-bits 11 --hidden 32 --target-fpr 0.02 --seed 77") in flat
    assert "57.9 s in all (12.3 s features" in md and "45.6 s fitting" in md
    # a train_config setting without a flag that differs from TrainConfig's default
    note = [ln for ln in md.splitlines() if ln.startswith("- recorded settings without a flag")]
    assert len(note) == 1 and "dropout=0.3 (default 0.1)" in note[0] and "lr=" not in note[0]
    # a trainer setting the artifact does not record is named (its default would apply)
    note = [ln for ln in md.splitlines() if ln.startswith("- the trainer has settings")]
    assert len(note) == 1 and "batch_size (default 128)" in note[0]
    # calibration and threshold
    assert "temperature 0.8765, bias -1.2345" in md and "**0.4321**" in md
    assert "lowest threshold with benign FPR <= 0.02 on val.jsonl" in md
    assert "ran at this threshold (0.4321)" in md
    # validation overall and per language
    for v in ("| AUROC | 0.9111 |", "| Recall | 0.6444 |", "| harmful rows | 45 |",
              "| Jailbreak overlay AUROC | 0.9555 |", "| `en` | 500 | 0.7000 | 0.0200 |",
              "| `de` | 27 | — | 0.0000 |"):
        assert v in md, v
    # evaluation per set with targets, met/missed and gap
    assert "| harmbench | 50 of 200 | harmful-only | recall | 0.820 (0.700–0.900) | recall ≥ 0.97 | ✗ missed | 0.150 |" in md
    assert "| rho_overrefusal | 30 | benign-only | fpr | 0.033 | fpr ≤ 0.05 | ✓ met | — |" in md
    assert "| donotanswer | 40 | harmful-only | recall | 0.555 | — | — | — |" in md
    assert "meets 1 of 2 targets" in md and "misses 1" in md
    assert "| f1 | 0.679 (0.600–0.750) |" in md and "| `ru` | 10 | 0 | 0.000 | — |" in md
    # side by side with the peer (report's main table and peer line)
    assert "## Side by side" in md and "`toy-peer==1.0`" in md and "peer:toy" in md
    assert "`embedded` beats every peer (peer:toy) on 3 of 3 sets" in md
    # failure analysis
    assert "Failures of `embedded`: 7 (intent miss: 6, false positive: 1)" in md
    assert "| harmbench | 6 | intent miss 6 |" in md
    # limitations: every missed target with its gap, skipped sets, zero-recall languages
    lim = md.split("## Limitations", 1)[1].split("## Reproduce", 1)[0]
    assert "1 of 2 targets missed" in lim
    assert "- `harmbench`: missed recall ≥ 0.97 — measured 0.820, gap 0.150." in lim
    assert "rho_overrefusal" not in lim
    assert "not evaluated — jbb_past_tense: source not fetched" in lim
    assert "`ja` (4 harmful of 40 val rows)" in lim and "`ru` (10 items)" in lim
    # reproduce: the eval command rebuilt from results.json (subset of the suite, sample cap)
    rep = md.split("## Reproduce", 1)[1]
    flat = " ".join(rep.replace("\\\n", " ").split())
    assert ("haloguard eval --suite offline --sets harmbench,donotanswer,jbb_past_tense,"
            "rho_overrefusal --guard embedded --guard peer:toy --baseline embedded "
            "--max-per-set 50 --out runs/eval") in flat
    assert f"haloguard model-card --eval runs/eval --model {tmp / 'model'} --out MODEL_CARD.md" in rep
    assert "## Speed" not in md
    assert "wrote" in capsys.readouterr().out


def test_card_is_deterministic_and_has_speed(run):
    tmp, meta = run
    bench = tmp / "bench.json"
    bench.write_text(json.dumps({"cold_start_s": 1.234, "median_latency_ms": 3.456,
                                 "throughput_b32": 789.4, "canonicalizer_ratio": 1.0123,
                                 "model": f"toy-embedded@{meta['digest'][:12]}"}))
    a = MC.build(tmp / "eval", tmp / "model", bench=bench)
    b = MC.build(tmp / "eval", tmp / "model", bench=bench)
    assert a == b
    assert "| median latency, batch 1 | 3.46 ms |" in a and "| throughput, batch 32 | 789 prompts/s |" in a
    assert "| cold start (import + load + first call) | 1.23 s |" in a
    assert "python benchmarks/bench_classify.py --json bench.json" in a


def test_card_from_a_real_eval_run_of_the_packaged_guard(tmp_path):
    """End to end: `haloguard eval` on the tiny fixture, then the card of the real artifact."""
    from haloguard.backends.embedded import DEFAULT_MODEL_DIR

    ev = tmp_path / "run"
    assert main(["eval", "--data", str(FIX / "user_labelled.jsonl"), "--guard", "embedded",
                 "--guard", "keyword", "--out", str(ev), "--n-boot", "20", "--no-progress",
                 "--no-html"]) == 0
    out = tmp_path / "card.md"
    assert main(["model-card", "--eval", str(ev), "--out", str(out)]) == 0
    md = out.read_text()
    meta = json.loads((DEFAULT_MODEL_DIR / "embedded.json").read_text())
    res = json.loads((ev / "results.json").read_text())
    assert meta["digest"] in md and f"**{meta['threshold']:g}**" in md
    d = res["sets"]["user_labelled"]["guards"]["embedded"]
    assert f"| user_labelled | 4 | mixed | f1 | {d['f1']:.3f}" in md
    assert "--data PATH/TO/user_labelled.jsonl --guard embedded --guard keyword" in " ".join(
        md.replace("\\\n", " ").split())
    # the keyword guard of the same run is not this artifact
    assert main(["model-card", "--eval", str(ev), "--guard", "keyword", "--out", str(out)]) == 2
    # a blind review relabels one item: the card adds raw vs de-noised figures for that set
    blind = tmp_path / "blind.jsonl"
    assert main(["eval", "adjudicate", "export", "--run", str(ev), "--blind",
                 "--out", str(blind)]) == 0
    rows = [json.loads(line) for line in blind.read_text().splitlines()]
    unsafe = [r for r in rows if r["gold_label"] == "unsafe"]
    unsafe[0]["mislabel"] = "yes"
    blind.write_text("\n".join(json.dumps(r) for r in rows))
    assert main(["model-card", "--eval", str(ev), "--reviews", str(blind), "--out", str(out)]) == 0
    md2 = out.read_text()
    assert "## De-noised figures" in md2 and "| user_labelled | 1 → safe |" in md2
    # every guard of the run on the relabelled set, de-noised
    assert "| Set | `embedded` | `keyword` |" in md2
    assert f"--reviews {blind}" in md2 and "## De-noised figures" not in md
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "no id"}\n')
    assert main(["model-card", "--eval", str(ev), "--reviews", str(bad), "--out", str(out)]) == 2


def _one_line_error(capsys, argv, msg):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert msg in err and err.count("\n") == 1 and "Traceback" not in err, err


def test_errors(run, capsys):
    tmp, meta = run
    ev, model, out = str(tmp / "eval"), str(tmp / "model"), str(tmp / "c.md")
    base = ["model-card", "--model", model, "--out", out]
    _one_line_error(capsys, base + ["--eval", str(tmp / "nope")], "not a directory")
    (tmp / "empty").mkdir()
    _one_line_error(capsys, base + ["--eval", str(tmp / "empty")], "results.json not found")
    (tmp / "bad").mkdir()
    (tmp / "bad" / "results.json").write_text("{not json")
    _one_line_error(capsys, base + ["--eval", str(tmp / "bad")], "not valid JSON")
    (tmp / "bad" / "results.json").write_text(json.dumps({"suite": "x", "guards": {}, "sets": []}))
    _one_line_error(capsys, base + ["--eval", str(tmp / "bad")], "wrong type")
    res = _results(meta)
    del res["sets"]["harmbench"]["guards"]["embedded"]["kind"]
    (tmp / "bad" / "results.json").write_text(json.dumps(res))
    _one_line_error(capsys, base + ["--eval", str(tmp / "bad")], "has no 'kind'")
    res = _results(meta)
    res["sets"]["harmbench"]["guards"]["embedded"]["targets"][0]["target"] = "recall about 0.9"
    (tmp / "bad" / "results.json").write_text(json.dumps(res))
    _one_line_error(capsys, base + ["--eval", str(tmp / "bad")], "cannot read target")
    _one_line_error(capsys, base + ["--eval", ev, "--guard", "peer:toy"], "not this artifact")
    _one_line_error(capsys, base + ["--eval", ev, "--guard", "ghost"], "not in the run")
    bench = tmp / "b.json"
    bench.write_text(json.dumps({"speed": 1}))
    _one_line_error(capsys, base + ["--eval", ev, "--bench", str(bench)], "bench_classify")
    bench.write_text(json.dumps({"median_latency_ms": 1.0, "model": "other@123"}))
    _one_line_error(capsys, base + ["--eval", ev, "--bench", str(bench)], "not this artifact")
    _one_line_error(capsys, ["model-card", "--eval", ev, "--model", str(tmp / "nomodel"),
                             "--out", out], "not a directory")
    (tmp / "model" / "weights.npz").write_bytes(b"tampered")
    _one_line_error(capsys, base + ["--eval", ev], "does not match embedded.json")
    assert not Path(out).exists()


def test_val_rows_wording_without_n_pos():
    # artifacts trained before by_lang recorded n_pos: the count is every row of the language
    from haloguard.eval.model_card import _val_rows

    assert _val_rows({"n": 131, "recall": 0.0}) == "131 val rows in all, harmful and benign"
    assert _val_rows({"n": 131, "n_pos": 5, "recall": 0.0}) == "5 harmful of 131 val rows"


def test_training_data_check_compares_the_row_files(tmp_path):
    # manifest.json also hashes the coverage report, so a report-layout change alone moves its
    # hash: the reproduce check compares the .jsonl files the model was trained on
    meta = _artifact(tmp_path / "model")
    meta["training_data"]["files"]["manifest.json"] = "4" * 64
    card = MC._Card(_results(meta), meta, [], "embedded", None, "model")
    md = "\n".join(card.training_data())
    assert "| `manifest.json` | `" + "4" * 64 + "` |" in md
    assert "sha256sum build/corpus/{train.jsonl,val.jsonl}   # compare with the table" in md
    assert "`manifest.json` also holds the hashes of the build's coverage report" in md
    meta["training_data"]["files"] = {"train.jsonl": "1" * 64}
    md = "\n".join(MC._Card(_results(meta), meta, [], "embedded", None, "model").training_data())
    assert "sha256sum build/corpus/train.jsonl   # compare with the table" in md
    assert "also holds the hashes" not in md


def test_train_command_writes_a_list_setting_as_its_option_takes_it():
    from haloguard.eval.model_card import train_command

    cmd, _ = train_command({"train_config": {"seed": 7, "multilingual_encoders": ["e5", "use"]}},
                           "out")
    assert "--multilingual-encoders e5,use" in cmd and "[" not in cmd
