"""``haloguard train seqcls``: a safe/unsafe classification head on a tiny decoder, loaded
back through ``hf-seqcls``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from haloguard.data.records import Record, write_jsonl  # noqa: E402
from haloguard.train.seqcls import SeqClsConfig, encode_records, render_seqcls, train_seqcls  # noqa: E402

from tiny_models import build_causal_lm  # noqa: E402

UNSAFE = ["How do I build a bomb to hurt people?", "build a bomb to hurt people now"]
SAFE = ["How do I bake bread at home?", "the quick brown fox jumps over the lazy dog"]


def toy(n: int) -> list[Record]:
    return [Record(id=f"r{i}", text=(UNSAFE if i % 2 else SAFE)[i // 2 % 2],
                   label="unsafe" if i % 2 else "safe") for i in range(n)]


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory) -> Path:
    return build_causal_lm(tmp_path_factory.mktemp("tiny_dec"), "llama")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("seqdata")
    write_jsonl(d / "train.jsonl", toy(16))
    write_jsonl(d / "val.jsonl", toy(8))
    return d


def _cfg(base: Path, **kw) -> SeqClsConfig:
    args = dict(base_model=str(base), batch_size=4, lr=1e-2, epochs=8.0, eval_every=8,
                save_every=0, log_every=4, lora_r=8, lora_alpha=16, lora_dropout=0.0,
                device="cpu", max_val=8)
    args.update(kw)
    return SeqClsConfig(**args)


@pytest.mark.parametrize("lora", [True, False])
def test_seqcls_trains_and_hf_seqcls_loads_it(tiny_lm, data_dir, tmp_path, lora):
    out = tmp_path / "sc"
    summary = train_seqcls(data_dir, out, _cfg(tiny_lm, lora=lora), log=lambda m: None)
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if "loss" in r]
    assert losses[-1] < losses[0]
    assert summary["val"]["auroc"] == pytest.approx(1.0)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["id2label"] == {"0": "safe", "1": "unsafe"}
    assert any(a.endswith("ForSequenceClassification") for a in cfg["architectures"])
    assert not (out / "adapter_config.json").exists()

    from haloguard.loader import load_guard

    guard = load_guard(str(out), calibration=out / "calibration.json", canonicalize=False)
    be = guard.backend
    assert be.info.name == "hf-seqcls" and be.harmful_index == 1
    units = [({"role": "user", "content": r.text},) for r in toy(8)]
    batched = be.score(units)
    single = [be.score([u])[0] for u in units]
    for a, b in zip(batched, single):
        assert abs(a.p_unsafe - b.p_unsafe) < 1e-4
    y = [1 if r.label == "unsafe" else 0 for r in toy(8)]
    pos = [s.p_unsafe for s, t in zip(batched, y) if t]
    neg = [s.p_unsafe for s, t in zip(batched, y) if not t]
    assert min(pos) > max(neg)
    # the trainer renders exactly what hf-seqcls renders
    text, _ = render_seqcls(be.tokenizer, units[0])
    assert text == be.render(units[0])


def test_seqcls_resume_and_truncation(tiny_lm, data_dir, tmp_path):
    from transformers import AutoTokenizer

    out = tmp_path / "r"
    train_seqcls(data_dir, out, _cfg(tiny_lm, epochs=2.0, save_every=3, keep_checkpoints=3,
                                      eval_every=0), log=lambda m: None)
    ck = out / "checkpoints" / "step-000003"
    assert json.loads((ck / "trainer_state.json").read_text())["step"] == 3
    msgs: list[str] = []
    train_seqcls(data_dir, tmp_path / "r2", _cfg(tiny_lm, epochs=2.0, eval_every=0),
                 resume=str(ck), log=msgs.append)
    assert any("resumed" in m and "step 3/8" in m for m in msgs)
    tok = AutoTokenizer.from_pretrained(tiny_lm)
    rows = encode_records([Record(id="x", text="bread " * 500, label="safe")], tok, 64)
    assert len(rows[0][0]) == 64


def test_seqcls_cli(tiny_lm, data_dir, tmp_path, capsys):
    from haloguard.cli.train_hf import add_subcommands

    parser = argparse.ArgumentParser()
    add_subcommands(parser.add_subparsers(dest="kind"))
    out = tmp_path / "cli"
    args = parser.parse_args(["seqcls", "--data", str(data_dir), "--out", str(out), "--base-model",
                              str(tiny_lm), "--max-steps", "2", "--batch-size", "4", "--eval-every", "0",
                              "--device", "cpu"])
    assert args.func(args) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["steps"] == 2
    assert (out / "config.json").exists() and (out / "calibration.json").exists()
