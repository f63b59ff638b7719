"""The common record type for every data source, and JSONL helpers."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

LABELS = ("unsafe", "safe")
OVERLAYS = ("none", "jailbreak", "prompt_injection")


def _freeze(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


@dataclass(frozen=True)
class Record:
    """One prompt (``text``) or conversation (``messages``) with its label and provenance."""

    id: str
    text: str | None = None
    messages: tuple[dict[str, str], ...] | None = None
    label: str | None = None  # "unsafe" | "safe" | None
    category: str | None = None  # runtime category id when known
    source_category: str | None = None
    lang: str = "en"
    source: str = ""
    overlay: str = "none"  # none | jailbreak | prompt_injection
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.text is None and not self.messages:
            raise ValueError(f"record {self.id!r} has neither text nor messages")
        if self.label is not None and self.label not in LABELS:
            raise ValueError(f"record {self.id!r}: label must be one of {LABELS}, got {self.label!r}")
        if self.overlay not in OVERLAYS:
            raise ValueError(f"record {self.id!r}: overlay must be one of {OVERLAYS}")
        if self.messages is not None:
            object.__setattr__(self, "messages", tuple(dict(m) for m in self.messages))
        object.__setattr__(self, "meta", _freeze(self.meta))

    @property
    def content(self) -> str:
        """The text, or the user turns of ``messages`` joined by newlines."""
        if self.text is not None:
            return self.text
        return "\n".join(m.get("content", "") for m in self.messages or () if m.get("role") == "user")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (``messages`` as a list, ``meta`` as a dict, keys sorted)."""
        return {
            "id": self.id,
            "text": self.text,
            "messages": [dict(m) for m in self.messages] if self.messages is not None else None,
            "label": self.label,
            "category": self.category,
            "source_category": self.source_category,
            "lang": self.lang,
            "source": self.source,
            "overlay": self.overlay,
            "meta": _plain(self.meta),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Record:
        """Inverse of :meth:`to_dict`; unknown keys go into ``meta``."""
        known = {"id", "text", "messages", "label", "category", "source_category", "lang",
                 "source", "overlay", "meta"}
        meta = dict(data.get("meta") or {})
        meta.update({k: v for k, v in data.items() if k not in known})
        messages = data.get("messages")
        return cls(
            id=str(data["id"]),
            text=data.get("text"),
            messages=tuple(messages) if messages is not None else None,
            label=data.get("label"),
            category=data.get("category"),
            source_category=data.get("source_category"),
            lang=data.get("lang") or "en",
            source=data.get("source") or "",
            overlay=data.get("overlay") or "none",
            meta=meta,
        )


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def dumps(record: Record | Mapping[str, Any]) -> str:
    """One canonical JSON line (sorted keys, UTF-8 kept) for a record or a dict."""
    data = record.to_dict() if isinstance(record, Record) else _plain(record)
    return json.dumps(data, ensure_ascii=False, sort_keys=True)


def write_jsonl(path: str | Path, rows: Iterable[Record | Mapping[str, Any]]) -> int:
    """Stream rows to ``path`` as JSONL; returns the number written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for row in rows:
            fh.write(dumps(row) + "\n")
            n += 1
    return n


def numbered_jsonl(path: str | Path) -> Iterator[tuple[int, Any]]:
    """Yield ``(line number, value)`` from a JSONL file, skipping blank lines.  Lines end at
    newlines only (a U+2028 inside a string does not split its row); bad JSON or bad UTF-8
    is a ``ValueError`` naming the file (and line)."""
    with Path(path).open(encoding="utf-8") as fh:
        lineno = 0
        try:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    value = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{lineno}: bad JSON ({exc.msg})") from None
                yield lineno, value
        except UnicodeDecodeError as exc:
            raise ValueError(f"{path}: not valid UTF-8 after line {lineno} ({exc.reason})"
                             ) from None


def iter_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """Yield dicts from a JSONL file, skipping blank lines; bad JSON names the line."""
    for _, value in numbered_jsonl(path):
        yield value


def read_jsonl(path: str | Path) -> list[Record]:
    """Read a JSONL file of records (as written by :func:`write_jsonl`)."""
    return [Record.from_dict(d) for d in iter_jsonl(path)]
