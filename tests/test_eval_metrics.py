"""Metrics agree with scikit-learn; bootstrap CIs cover the truth at the stated rate."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from haloguard.eval import metrics as M

sk = pytest.importorskip("sklearn.metrics")
from sklearn.calibration import calibration_curve  # noqa: E402


@st.composite
def labelled_scores(draw, min_size=2, both=True):
    n = draw(st.integers(min_size, 120))
    y = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
    if both and len(set(y)) < 2:
        y[0], y[-1] = 0, 1
    coarse = draw(st.booleans())  # coarse scores create many ties
    elems = st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0]) if coarse else st.floats(0, 1)
    p = draw(st.lists(elems, min_size=n, max_size=n))
    return np.array(y), np.array(p, dtype=float)


@settings(max_examples=150, deadline=None)
@given(labelled_scores(), st.sampled_from([0.3, 0.5, 0.65]))
def test_count_metrics_match_sklearn(data, thr):
    y, p = data
    pred = (p >= thr).astype(int)
    m = M.evaluate(y, p, threshold=thr, n_boot=0)
    assert m.get("accuracy") == pytest.approx(sk.accuracy_score(y, pred), abs=1e-9)
    assert m.get("precision") == pytest.approx(sk.precision_score(y, pred, zero_division=0), abs=1e-9)
    assert m.get("recall") == pytest.approx(sk.recall_score(y, pred), abs=1e-9)
    assert m.get("f1") == pytest.approx(sk.f1_score(y, pred, zero_division=0), abs=1e-9)
    tn, fp, fn, tp = sk.confusion_matrix(y, pred, labels=[0, 1]).ravel()
    assert m.get("fpr") == pytest.approx(fp / (fp + tn), abs=1e-9)
    assert m.get("fnr") == pytest.approx(fn / (fn + tp), abs=1e-9)


@settings(max_examples=150, deadline=None)
@given(labelled_scores())
def test_ranking_metrics_match_sklearn(data):
    y, p = data
    assert M.auroc(y, p) == pytest.approx(sk.roc_auc_score(y, p), abs=1e-9)
    assert M.auprc(y, p) == pytest.approx(sk.average_precision_score(y, p), abs=1e-9)


@settings(max_examples=150, deadline=None)
@given(labelled_scores(), st.sampled_from(M.FPR_TARGETS + (0.2,)))
def test_tpr_at_fpr_matches_sklearn_roc_curve(data, target):
    y, p = data
    fpr, tpr, thr = sk.roc_curve(y, p, drop_intermediate=False)
    ok = fpr <= target + 1e-12
    got = M.tpr_at_fpr(y, p, target)
    assert got["tpr"] == pytest.approx(float(tpr[ok].max()), abs=1e-9)
    assert got["fpr"] <= target + 1e-12
    # the reported threshold reproduces the reported TPR/FPR
    pred = p >= got["threshold"]
    assert pred[y == 1].mean() == pytest.approx(got["tpr"], abs=1e-9)
    assert pred[y == 0].mean() == pytest.approx(got["fpr"], abs=1e-9)


@settings(max_examples=100, deadline=None)
@given(labelled_scores(), st.sampled_from([5, 10, 15]))
def test_ece_and_reliability_match_calibration_curve(data, n_bins):
    y, p = data
    prob_true, prob_pred = calibration_curve(y, p, n_bins=n_bins, strategy="uniform")
    bins = M.reliability_bins(y, p, n_bins)
    assert [b["frac_unsafe"] for b in bins] == pytest.approx(list(prob_true), abs=1e-9)
    assert [b["mean_p"] for b in bins] == pytest.approx(list(prob_pred), abs=1e-9)
    edges = np.linspace(0, 1, n_bins + 1)
    ids = np.searchsorted(edges[1:-1], p)
    counts = np.bincount(ids, minlength=n_bins)
    counts = counts[counts > 0]
    expect = float(np.sum(counts / len(p) * np.abs(prob_true - prob_pred)))
    assert M.ece(y, p, n_bins) == pytest.approx(expect, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(labelled_scores())
def test_curves_match_sklearn(data):
    y, p = data
    roc = M.roc_points(y, p)
    fpr, tpr, _ = sk.roc_curve(y, p, drop_intermediate=False)
    assert roc["fpr"] == pytest.approx(list(fpr), abs=1e-9)
    assert roc["tpr"] == pytest.approx(list(tpr), abs=1e-9)
    pr = M.pr_points(y, p)
    prec, rec, _ = sk.precision_recall_curve(y, p, drop_intermediate=False)
    # sklearn lists them by increasing threshold, ending at (recall 0, precision 1)
    assert pr["precision"] == pytest.approx(list(prec[::-1]), abs=1e-9)
    assert pr["recall"] == pytest.approx(list(rec[::-1]), abs=1e-9)


def test_single_class_sets_report_only_defined_metrics():
    harmful = M.evaluate([1, 1, 1, 1], [0.9, 0.8, 0.2, 0.7], n_boot=200)
    assert harmful.kind == "harmful-only"
    assert harmful.get("recall") == 0.75 and harmful.get("fnr") == 0.25
    for name in ("f1", "precision", "fpr", "auroc", "auprc", "accuracy"):
        assert harmful.get(name) is None
    assert "f1" not in harmful.ci95 and "recall" in harmful.ci95
    benign = M.evaluate([0, 0, 0, 0, 0], [0.1, 0.6, 0.2, 0.0, 0.3], n_boot=200)
    assert benign.kind == "benign-only"
    assert benign.get("fpr") == 0.2 and benign.get("specificity") == 0.8
    for name in ("f1", "precision", "recall", "auroc"):
        assert benign.get(name) is None
    assert benign.tpr_at_fpr == ()


def test_errors_count_as_wrong_and_are_counted():
    m = M.evaluate([1, 1, 0, 0], [0.9, None, 0.1, None], errors=[False, True, False, True],
                   n_boot=0)
    assert m.errors == 2
    assert m.get("recall") == 0.5 and m.get("fpr") == 0.5
    assert m.get("error_rate") == 0.5
    assert m.get("auroc") == pytest.approx(0.25)  # errored items ranked worst


def test_category_and_language_breakdowns():
    m = M.evaluate([1, 1, 1, 0], [0.9, 0.9, 0.1, 0.7], n_boot=0,
                   gold_categories=["violence", "violence", "hate_speech", None],
                   top_categories=["violence", "hate_speech", "hate_speech", "violence"],
                   languages=["en", "en", "ru", None])
    assert m.per_category["violence"]["recall"] == 1.0
    assert m.per_category["hate_speech"]["recall"] == 0.0
    assert m.category_confusion["violence"] == {"violence": 1, "hate_speech": 1}
    assert m.category_accuracy == pytest.approx(2 / 3)
    assert m.per_language["en"]["recall"] == 1.0 and m.per_language["und"]["fpr"] == 1.0
    assert m.per_language["ru"]["f1"] is None
    assert m.category_accuracy_scheme is None and m.category_scheme is None


def test_category_accuracy_in_the_sets_own_taxonomy():
    """Gold and top category are both projected through the constitution's mapping: a
    HarmBench `illegal` item whose top category is fraud is right in HarmBench's terms."""
    from haloguard.eval.report import _scheme

    scheme = _scheme("harmbench")
    project = scheme[1]
    assert project("fraud_and_social_engineering") == project("non_violent_illegal") == "illegal"
    assert project("chemical_weapons") == project("biological_weapons") == "chemical_biological"
    assert project("not_a_category") is None
    m = M.evaluate([1, 1, 1, 1, 0], [0.9] * 5, n_boot=0, category_scheme=scheme,
                   gold_categories=["non_violent_illegal", "chemical_weapons", "disinformation",
                                    "non_violent_illegal", None],
                   top_categories=["fraud_and_social_engineering", "biological_weapons",
                                   "hate_speech", "none", "violence"])
    assert m.category_accuracy == 0.0  # no exact runtime-id hit
    assert m.category_accuracy_scheme == pytest.approx(2 / 4)  # illegal, chem-bio right
    assert m.category_scheme == "harmbench"
    with pytest.raises(ValueError, match="unknown category_scheme 'nope'"):
        _scheme("nope")


def test_bootstrap_ci_covers_true_f1_and_recall():
    """Percentile-bootstrap 95% intervals cover the population value ~95% of the time."""
    rng = np.random.default_rng(1234)
    n, prev, tpr, fpr = 400, 0.4, 0.8, 0.1
    # population values for the generating process
    tp, fn, fp = prev * tpr, prev * (1 - tpr), (1 - prev) * fpr
    true = {"recall": tpr, "f1": 2 * tp / (2 * tp + fp + fn), "fpr": fpr}
    hits = {k: 0 for k in true}
    sims = 200
    for s in range(sims):
        y = rng.random(n) < prev
        pred = np.where(y, rng.random(n) < tpr, rng.random(n) < fpr)
        ci = M.bootstrap_ci(y, pred, n_boot=400, seed=s, metrics=tuple(true))
        for k, v in true.items():
            hits[k] += ci[k][0] <= v <= ci[k][1]
    for k in true:
        assert 0.90 <= hits[k] / sims <= 0.99, (k, hits[k] / sims)


def test_unknown_category_scheme_fails_when_the_suite_loads(tmp_path):
    from haloguard.eval import suites

    p = tmp_path / "s.yaml"
    p.write_text("name: s\nsets:\n  - {name: a, source: offline, category_scheme: harmbenhc}\n")
    with pytest.raises(ValueError, match="unknown category_scheme 'harmbenhc'; known: .*harmbench"):
        suites.load_suite(str(p))
