"""Each generative template's parser on recorded outputs; parse failures fail closed."""

from __future__ import annotations

import pytest

from haloguard.backends.registry import UnknownNameError
from haloguard.backends.templates import get_template


@pytest.mark.parametrize(
    "template, text, p, category, tier, flags",
    [
        ("haloguard", "Safety: unsafe\nCategory: offensive_cyber", 1.0, "offensive_cyber", None, ()),
        ("haloguard", "Safety: safe\nCategory: none", 0.0, None, None, ()),
        ("haloguard", "Safety: unsafe\nCategory: made_up", 1.0, "made_up", None, ("unknown_category",)),
        ("haloguard", "I cannot help with that.", 1.0, None, "Unsafe", ("parse_error",)),
        ("qwen3guard", "Safety: Unsafe\nCategories: Violent", 1.0, "violence", "Unsafe", ()),
        ("qwen3guard", "Safety: Controversial\nCategories: Politically Sensitive Topics", 1.0,
         "politically_sensitive", "Controversial", ()),
        ("qwen3guard-loose", "Safety: Controversial\nCategories: Politically Sensitive Topics", 0.0,
         None, "Controversial", ()),
        ("qwen3guard", "Safety: Safe\nCategories: None", 0.0, None, "Safe", ()),
        ("qwen3guard", "Safety: Unsafe\nCategories: Jailbreak", 1.0, None, "Unsafe", ("jailbreak",)),
        ("qwen3guard", "garbage", 1.0, None, "Unsafe", ("parse_error",)),
        ("seed004", "unsafe", 1.0, None, None, ()),
        ("seed004", " safe", 0.0, None, None, ()),
        ("seed004", "maybe", 1.0, None, "Unsafe", ("parse_error",)),
        ("llamaguard", "unsafe\nS1,S10", 1.0, "violence", None, ()),
        ("llamaguard", "safe", 0.0, None, None, ()),
        ("llamaguard", "", 1.0, None, "Unsafe", ("parse_error",)),
    ],
)
def test_parsers(template, text, p, category, tier, flags):
    parsed = get_template(template).parse(text)
    assert parsed.p_unsafe == p
    assert parsed.category == category
    assert parsed.tier == tier
    assert parsed.flags == flags


def test_llamaguard_categories_map_through_constitution():
    parsed = get_template("llamaguard").parse("unsafe\nS1,S10")
    assert set(parsed.category_probs) == {"violence", "hate_speech"}


def test_messages():
    unit = ({"role": "system", "content": "app prompt"}, {"role": "user", "content": "hello"})
    hg = get_template("haloguard").messages(unit)
    assert hg[0]["role"] == "system" and "<BEGIN SAFETY POLICY>" in hg[0]["content"]
    assert hg[-1] == {"role": "user", "content": "hello"} and len(hg) == 2
    s4 = get_template("seed004").messages(unit)
    assert len(s4) == 1 and "USER: hello" in s4[0]["content"]
    lg = get_template("llamaguard", render=True).messages(unit)
    assert "S14: Code Interpreter Abuse." in lg[0]["content"] and "User: hello" in lg[0]["content"]


def test_unknown_template():
    with pytest.raises(UnknownNameError, match="did you mean 'haloguard'"):
        get_template("haloguardd")
