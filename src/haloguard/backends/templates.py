"""Prompt formats of generative guards, as pluggable templates.

A template turns a conversation unit into chat messages, names the cue appended after
the generation prompt, the label words whose next-token probabilities give ``p_unsafe``,
and parses the generated text.  Templates: ``haloguard`` (seed 001), ``qwen3guard``
(Qwen3Guard-Gen, strict or loose), ``seed004`` (constitution-plus-content) and
``llamaguard``.  A generation that cannot be parsed fails closed: ``p_unsafe = 1`` and the
flag ``parse_error``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from haloguard.backends.base import Conversation


@dataclass(frozen=True, slots=True)
class Parsed:
    """What a template read from a generated response."""

    p_unsafe: float
    category: str | None = None
    category_probs: Mapping[str, float] = field(default_factory=dict)
    tier: str | None = None
    flags: tuple[str, ...] = ()


def _fail_closed(text: str) -> Parsed:
    return Parsed(p_unsafe=1.0, tier="Unsafe", flags=("parse_error",))


class Template:
    """Base template; subclasses set the class attributes and override what differs."""

    name = "base"
    cue = ""
    safe_words: tuple[str, ...] = ("safe",)
    unsafe_words: tuple[str, ...] = ("unsafe",)
    #: extra label words counted as unsafe only in strict mode (Qwen3Guard "Controversial")
    controversial_words: tuple[str, ...] = ()
    chat_kwargs: Mapping[str, Any] = {"enable_thinking": False}

    def __init__(self, constitution: Any = None, strict: bool = True) -> None:
        from haloguard.constitution import load_constitution

        self.constitution = constitution or load_constitution()
        self.strict = strict
        self.categories = tuple(self.constitution.runtime_categories)

    def messages(self, unit: Conversation) -> list[dict[str, str]]:
        return [dict(m) for m in unit]

    def parse(self, text: str) -> Parsed:
        raise NotImplementedError

    def _cats(self, category: str | None, p: float) -> dict[str, float]:
        return {category: p} if category in self.categories else {}


class HaloGuardTemplate(Template):
    """Seed 001: guard system prompt from the constitution, ``Safety: `` cue,
    response ``Safety: <safe|unsafe>\\nCategory: <id|none>``."""

    name = "haloguard"
    cue = "Safety: "

    def messages(self, unit: Conversation) -> list[dict[str, str]]:
        system = self.constitution.render_prompt("haloguard")
        rest = [dict(m) for m in unit if m["role"] != "system"]
        return [{"role": "system", "content": system}, *rest]

    def parse(self, text: str) -> Parsed:
        m = re.search(r"Safety:\s*(safe|unsafe)\b", text, re.I)
        if not m:
            return _fail_closed(text)
        unsafe = m.group(1).lower() == "unsafe"
        c = re.search(r"Category:\s*([A-Za-z_]+)", text)
        cat = c.group(1).strip().lower() if c else None
        flags: tuple[str, ...] = ()
        if unsafe and cat not in self.categories:
            flags = ("unknown_category",)
        p = 1.0 if unsafe else 0.0
        return Parsed(p, cat if unsafe else None, self._cats(cat, p) if unsafe else {},
                      flags=flags)


# Qwen3Guard-Gen category names -> the scheme used by the constitution's mapping
QWEN3GUARD_CATEGORIES = (
    "Violent", "Non-violent Illegal Acts", "Sexual Content or Sexual Acts", "PII",
    "Suicide & Self-Harm", "Unethical Acts", "Politically Sensitive Topics",
    "Copyright Violation", "Jailbreak",
)


class Qwen3GuardTemplate(Template):
    """Qwen3Guard-Gen: the model's chat template carries the policy; response
    ``Safety: Safe|Unsafe|Controversial\\nCategories: ...``.  Strict mode counts
    Controversial as unsafe, loose mode as safe."""

    name = "qwen3guard"
    cue = "Safety: "
    safe_words = ("Safe",)
    unsafe_words = ("Unsafe",)
    controversial_words = ("Controversial",)

    def parse(self, text: str) -> Parsed:
        m = re.search(r"Safety:\s*(Safe|Unsafe|Controversial)\b", text, re.I)
        if not m:
            return _fail_closed(text)
        tier = m.group(1).capitalize()
        unsafe = tier == "Unsafe" or (tier == "Controversial" and self.strict)
        c = re.search(r"Categories:\s*(.+)", text)
        cats: dict[str, float] = {}
        flags: tuple[str, ...] = ()
        first = None
        if c and unsafe:
            for label in (s.strip() for s in c.group(1).split(",")):
                if not label or label.lower() == "none":
                    continue
                if label.lower() == "jailbreak":
                    flags = ("jailbreak",)
                cid = self.constitution.map_from("qwen3guard", label)
                if cid:
                    cats.setdefault(cid, 1.0)
                    first = first or cid
        return Parsed(1.0 if unsafe else 0.0, first, cats, tier=tier, flags=flags)


class Seed004Template(Template):
    """Seed 004: one user message with the constitution and the content; the next token
    is ``safe`` or ``unsafe``."""

    name = "seed004"

    def messages(self, unit: Conversation) -> list[dict[str, str]]:
        convo = "\n".join(f"{m['role'].upper()}: {m['content']}" for m in unit if m["role"] != "system")
        prompt = self.constitution.render_prompt("seed004")
        return [{"role": "user", "content": f"{prompt}\n\nContent to classify:\n{convo}\n\nLabel:"}]

    def parse(self, text: str) -> Parsed:
        m = re.match(r"\s*(?:label:\s*)?(safe|unsafe)\b", text, re.I)
        if not m:
            return _fail_closed(text)
        return Parsed(1.0 if m.group(1).lower() == "unsafe" else 0.0)


LLAMAGUARD_CATEGORIES = (
    ("S1", "Violent Crimes"), ("S2", "Non-Violent Crimes"), ("S3", "Sex-Related Crimes"),
    ("S4", "Child Sexual Exploitation"), ("S5", "Defamation"), ("S6", "Specialized Advice"),
    ("S7", "Privacy"), ("S8", "Intellectual Property"), ("S9", "Indiscriminate Weapons"),
    ("S10", "Hate"), ("S11", "Suicide & Self-Harm"), ("S12", "Sexual Content"),
    ("S13", "Elections"), ("S14", "Code Interpreter Abuse"),
)


class LlamaGuardTemplate(Template):
    """Llama Guard 3/4: response ``safe`` or ``unsafe\\nS1,S10``.  When the tokenizer's
    own chat template is Llama Guard's, the conversation is passed as is; otherwise
    (``render=True``) the Llama Guard task prompt is rendered here."""

    name = "llamaguard"
    chat_kwargs: Mapping[str, Any] = {}

    def __init__(self, constitution: Any = None, strict: bool = True, render: bool = False) -> None:
        super().__init__(constitution, strict)
        self.render = render

    def messages(self, unit: Conversation) -> list[dict[str, str]]:
        if not self.render:
            return [dict(m) for m in unit if m["role"] in ("user", "assistant")]
        cats = "\n".join(f"{code}: {name}." for code, name in LLAMAGUARD_CATEGORIES)
        convo = "\n\n".join(f"{'User' if m['role'] == 'user' else 'Agent'}: {m['content']}"
                            for m in unit if m["role"] in ("user", "assistant"))
        prompt = (
            "Task: Check if there is unsafe content in 'User' messages in conversations "
            "according our safety policy with the below categories.\n\n"
            f"<BEGIN UNSAFE CONTENT CATEGORIES>\n{cats}\n<END UNSAFE CONTENT CATEGORIES>\n\n"
            f"<BEGIN CONVERSATION>\n\n{convo}\n\n<END CONVERSATION>\n\n"
            "Provide your safety assessment for ONLY THE LAST User message in the above "
            "conversation:\n - First line must read 'safe' or 'unsafe'.\n - If unsafe, a "
            "second line must include a comma-separated list of violated categories."
        )
        return [{"role": "user", "content": prompt}]

    def parse(self, text: str) -> Parsed:
        m = re.match(r"\s*(safe|unsafe)\b", text, re.I)
        if not m:
            return _fail_closed(text)
        if m.group(1).lower() == "safe":
            return Parsed(0.0)
        cats: dict[str, float] = {}
        first = None
        for code in re.findall(r"S\d{1,2}", text[m.end():]):
            cid = self.constitution.map_from("llamaguard", code)
            if cid:
                cats.setdefault(cid, 1.0)
                first = first or cid
        return Parsed(1.0, first, cats)


def label_token_ids(tokenizer: Any, words: tuple[str, ...] | list[str]) -> set[int]:
    """First-token ids of the label words, with and without a leading space and in
    lower/capitalised forms (``unsafe`` may be ``uns``+``afe``, ``Unsafe`` ``Un``+``safe``).
    The one rule shared by ``hf-generative`` scoring and ``haloguard train generative``."""
    ids: set[int] = set()
    for w in words:
        for variant in {w, w.lower(), w.capitalize()}:
            for text in (variant, " " + variant):
                toks = tokenizer.encode(text, add_special_tokens=False)
                if toks:
                    ids.add(int(toks[0]))
    return ids


TEMPLATES: dict[str, type[Template]] = {
    t.name: t for t in (HaloGuardTemplate, Qwen3GuardTemplate, Seed004Template, LlamaGuardTemplate)
}


def get_template(name: str | Template, constitution: Any = None, **kwargs: Any) -> Template:
    """A template instance by name (``haloguard``, ``qwen3guard``, ``qwen3guard-loose``,
    ``seed004``, ``llamaguard``)."""
    if isinstance(name, Template):
        return name
    strict = True
    if name.endswith("-loose"):
        name, strict = name[: -len("-loose")], False
    elif name.endswith("-strict"):
        name = name[: -len("-strict")]
    if name not in TEMPLATES:
        from haloguard.backends.registry import UnknownNameError, suggest

        raise UnknownNameError(f"unknown template {name!r}{suggest(name, list(TEMPLATES))} "
                               f"(known: {', '.join(TEMPLATES)})")
    return TEMPLATES[name](constitution, strict=strict, **kwargs)
