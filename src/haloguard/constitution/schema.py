"""Pydantic schema of the constitution: policies → categories → subcategories."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

Severity = Literal["Safe", "Controversial", "Unsafe"]
Scope = Literal["input", "output", "both"]

RUNTIME_CATEGORIES: tuple[str, ...] = (
    "chemical_weapons",
    "biological_weapons",
    "radiological_nuclear",
    "violence",
    "terrorism_and_extremism",
    "offensive_cyber",
    "csam",
    "non_consensual_sexual_content",
    "sexual_content_general",
    "self_harm_and_suicide",
    "eating_disorders",
    "hate_speech",
    "harassment_and_bullying",
    "bias_and_stereotyping",
    "general",
    "defamation_and_reputational_harm",
    "property_crime_and_theft",
    "non_violent_illegal",
    "animal_cruelty",
    "fraud_and_social_engineering",
    "disinformation",
    "privacy_violations",
    "illegal_drugs",
    "weapons_and_firearms",
    "human_trafficking",
    "regulated_professional_advice",
    "copyright_infringement",
    "unethical_acts",
    "politically_sensitive",
)

DEFAULT_SAFE_TEXT = (
    "The query does not request, promote, or enable real-world harm. Includes benign questions, "
    "legitimate educational and professional queries, creative fiction that depicts but does not "
    "instruct harmful acts, dual-use topics in a clearly academic or defensive framing, and "
    "sensitive discussions that provide no actionable real-world uplift for harm."
)
DEFAULT_UNSAFE_TEXT = (
    "The query requests, facilitates, or provides operational assistance for real-world harm in "
    "one of the categories below."
)

_SLUG = re.compile(r"^[a-z0-9]+(?:_[a-z0-9]+)*$")


class ConstitutionError(Exception):
    """A constitution could not be read or is invalid; ``str()`` is one line."""

    def __init__(self, problem: str, *, path: str = "", file: str | None = None) -> None:
        self.problem = " ".join(str(problem).split())
        self.path = path
        self.file = file
        parts = [p for p in (file, path) if p]
        super().__init__(": ".join([*parts, self.problem]))

    def with_file(self, file: str) -> ConstitutionError:
        """Return a copy of this error naming ``file``."""
        return ConstitutionError(self.problem, path=self.path, file=file)


def normalize_label(label: str) -> str:
    """Fold case, whitespace, '/', '-', '_', '&' and the word 'and' out of a label."""
    tokens = re.split(r"[^a-z0-9]+", str(label).lower().replace("&", " "))
    return "".join(t for t in tokens if t and t != "and")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Subcategory(_Model):
    """Fine-grained construction unit; drives harmful/benign example generation."""

    id: str
    name: str
    definition: str
    in_scope: list[str] = Field(default_factory=list)
    out_of_scope: list[str] = Field(default_factory=list)
    harmful_examples: list[str] = Field(min_length=1)
    benign_counterfactuals: list[str] = Field(min_length=1)
    boundary_framings: list[str] = Field(default_factory=list)
    severity: Severity
    scope: Scope


class Category(_Model):
    """One runtime category; subcategories inherit its severity and scope by default."""

    id: str
    name: str
    definition: str
    in_scope: list[str] = Field(default_factory=list)
    out_of_scope: list[str] = Field(default_factory=list)
    severity: Severity
    scope: Scope = "both"
    subcategories: list[Subcategory] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _inherit(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("subcategories"), list):
            return data
        subs = []
        for sub in data["subcategories"]:
            if isinstance(sub, dict):
                sub = dict(sub)
                if "severity" in data:
                    sub.setdefault("severity", data["severity"])
                sub.setdefault("scope", data.get("scope", "both"))
            subs.append(sub)
        return {**data, "subcategories": subs}


class Policy(_Model):
    """A group of related categories."""

    id: str
    name: str
    description: str = ""
    categories: list[Category] = Field(min_length=1)


class OverlayEntry(_Model):
    """An attack overlay (jailbreak, prompt injection): orthogonal to the harm category."""

    definition: str
    examples: list[str] = Field(default_factory=list)
    benign_counterfactuals: list[str] = Field(default_factory=list)


class Overlay(_Model):
    jailbreak: OverlayEntry
    prompt_injection: OverlayEntry


class Verdicts(_Model):
    """Definitions of the two verdicts, used in rendered guard prompts."""

    safe: str = DEFAULT_SAFE_TEXT
    unsafe: str = DEFAULT_UNSAFE_TEXT


class Mapping(_Model):
    """Mapping between runtime ids and one external label scheme.

    ``to``: runtime id → external label; ``from``: external label → runtime id (or null for
    "no runtime category"); ``tiers``: our severity → the scheme's tier name.
    """

    description: str = ""
    to: dict[str, str] = Field(default_factory=dict)
    from_: dict[str, str | None] = Field(default_factory=dict, alias="from")
    tiers: dict[Severity, str] = Field(default_factory=dict)


class Constitution(_Model):
    """A versioned safety constitution with lookups, mappings and renderers."""

    name: str
    version: str
    description: str = ""
    verdicts: Verdicts = Field(default_factory=Verdicts)
    policies: list[Policy] = Field(min_length=1)
    overlay: Overlay
    mappings: dict[str, Mapping] = Field(default_factory=dict)

    _index: dict[str, Category] = PrivateAttr(default_factory=dict)
    _from: dict[str, dict[str, str | None]] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> Constitution:
        _check_constitution(self)
        return self

    def model_post_init(self, __context: Any) -> None:
        self._index = {c.id: c for p in self.policies for c in p.categories}
        table: dict[str, dict[str, str | None]] = {}
        for scheme, m in self.mappings.items():
            inverse: dict[str, set[str]] = {}
            for cid, label in m.to.items():
                inverse.setdefault(normalize_label(label), set()).add(cid)
            lookup = {k: next(iter(v)) for k, v in inverse.items() if len(v) == 1}
            lookup.update({normalize_label(k): v for k, v in m.from_.items()})
            table[scheme] = lookup
        self._from = table

    # -- lookups ---------------------------------------------------------------------------
    @property
    def categories(self) -> list[Category]:
        """All categories in document order."""
        return list(self._index.values())

    @property
    def runtime_categories(self) -> list[str]:
        """Category ids in document order."""
        return list(self._index)

    @property
    def subcategories(self) -> list[Subcategory]:
        """All subcategories, flattened in document order."""
        return [s for c in self.categories for s in c.subcategories]

    @property
    def schemes(self) -> list[str]:
        """Names of the external label schemes in ``mappings``."""
        return list(self.mappings)

    def category(self, category_id: str) -> Category:
        """The category with this id; KeyError if unknown."""
        try:
            return self._index[category_id]
        except KeyError:
            raise KeyError(f"unknown category {category_id!r}") from None

    def severity_of(self, category_id: str) -> Severity:
        """Severity tier of a category."""
        return self.category(category_id).severity

    def _mapping(self, scheme: str) -> Mapping:
        try:
            return self.mappings[scheme]
        except KeyError:
            raise KeyError(f"unknown mapping scheme {scheme!r}; known: {self.schemes}") from None

    def map_to(self, scheme: str, category_id: str) -> str | None:
        """External label of a runtime category under ``scheme`` (None if unmapped)."""
        self.category(category_id)
        return self._mapping(scheme).to.get(category_id)

    def map_tier(self, scheme: str, category_id: str) -> str:
        """The scheme's severity tier for a category (defaults to our tier name)."""
        sev = self.severity_of(category_id)
        return self._mapping(scheme).tiers.get(sev, sev)

    def map_from(self, scheme: str, external_label: str) -> str | None:
        """Runtime id for an external label (forgiving spelling); None if unknown/safe."""
        self._mapping(scheme)
        return self._from[scheme].get(normalize_label(external_label))

    # -- output ----------------------------------------------------------------------------
    def render_prompt(self, style: str = "haloguard", content: str | None = None) -> str:
        """Guard prompt text; styles: ``haloguard`` (seed 001) and ``seed004``."""
        from .render import render_prompt

        return render_prompt(self, style=style, content=content)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-compatible dict (YAML key names)."""
        return self.model_dump(mode="json", by_alias=True)

    def to_json(self, indent: int | None = 2) -> str:
        """JSON text of the document."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def to_markdown(self) -> str:
        """Human-readable Markdown rendering."""
        from .render import render_markdown

        return render_markdown(self)

    @property
    def digest(self) -> str:
        """sha256 hex digest of the canonical JSON."""
        canon = json.dumps(
            self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        return hashlib.sha256(canon.encode("utf-8")).hexdigest()


def _check_constitution(c: Constitution) -> None:
    """Cross-field checks; raise ConstitutionError naming the offending path."""
    seen_policies: set[str] = set()
    where: dict[str, str] = {}
    for i, pol in enumerate(c.policies):
        if pol.id in seen_policies:
            raise ConstitutionError(f"duplicate policy id {pol.id!r}", path=f"policies[{i}].id")
        seen_policies.add(pol.id)
        for j, cat in enumerate(pol.categories):
            base = f"policies[{i}].categories[{j}]"
            if cat.id not in RUNTIME_CATEGORIES:
                raise ConstitutionError(
                    f"unknown category id {cat.id!r} (not a runtime category)", path=f"{base}.id"
                )
            if cat.id in where:
                raise ConstitutionError(
                    f"duplicate category id {cat.id!r} (first at {where[cat.id]})",
                    path=f"{base}.id",
                )
            where[cat.id] = base
            for k, sub in enumerate(cat.subcategories):
                spath = f"{base}.subcategories[{k}].id"
                prefix, _, slug = sub.id.partition(".")
                if prefix != cat.id:
                    raise ConstitutionError(
                        f"subcategory id {sub.id!r} must start with '{cat.id}.'", path=spath
                    )
                if not _SLUG.match(slug):
                    raise ConstitutionError(
                        f"subcategory id {sub.id!r}: slug must be lower_snake_case", path=spath
                    )
                if sub.id in where:
                    raise ConstitutionError(
                        f"duplicate subcategory id {sub.id!r} (first at {where[sub.id]})",
                        path=spath,
                    )
                where[sub.id] = spath
    missing = [cid for cid in RUNTIME_CATEGORIES if cid not in where]
    if missing:
        problem = f"missing runtime categories: {', '.join(missing)}"
        raise ConstitutionError(problem, path="policies")
    for scheme, m in c.mappings.items():
        base = f"mappings.{scheme}"
        for cid in m.to:
            if cid not in where:
                raise ConstitutionError(f"unknown category id {cid!r}", path=f"{base}.to.{cid}")
        targets: dict[str, tuple[str, str | None]] = {}
        for label, cid in m.from_.items():
            lpath = f"{base}.from[{label!r}]"
            if cid is not None and cid not in where:
                raise ConstitutionError(f"unknown category id {cid!r}", path=lpath)
            key = normalize_label(label)
            if not key:
                raise ConstitutionError("empty label after normalisation", path=lpath)
            if key in targets and targets[key][1] != cid:
                raise ConstitutionError(
                    f"label {label!r} clashes with {targets[key][0]!r} after normalisation",
                    path=lpath,
                )
            targets[key] = (label, cid)
